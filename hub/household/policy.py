"""The household side's policy: code lifetimes and limits, the answer period, notices, photo limits.

From the environment (``ANJU_HOUSEHOLD_*``) so a city sets its own answer period and notice rules.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic_settings import BaseSettings, SettingsConfigDict


class HouseholdPolicy(BaseSettings):
    """``ANJU_HOUSEHOLD_ANSWER_DAYS``: how long a household may answer a notice (from its delivery);
    ``ANJU_HOUSEHOLD_NOTIFY_ON_CONFIRM``: notify again (and open a new answer period) on confirmation."""

    model_config = SettingsConfigDict(env_prefix="ANJU_HOUSEHOLD_", env_file=None, extra="ignore")

    code_digits: int = 6
    code_ttl_s: int = 600
    code_max_tries: int = 5  # wrong entries before a code is void
    codes_per_phone_hour: int = 5
    code_gap_s: int = 60  # between two codes to one number
    codes_per_address_hour: int = 30
    session_hours: int = 12
    answer_days: int = 14
    notify_on_confirm: bool = True
    max_photos: int = 3
    max_photo_bytes: int = 5 * 1024 * 1024
    max_answer_chars: int = 2000
    # Where households open the hub's pages (the link in a notice).
    public_url: str = "http://127.0.0.1:8000"

    @property
    def code_ttl(self) -> timedelta:
        """How long a sign-in code is good for."""
        return timedelta(seconds=self.code_ttl_s)

    @property
    def answer_period(self) -> timedelta:
        """How long a household may answer, from the delivery of the notice."""
        return timedelta(days=self.answer_days)

    @property
    def max_upload_bytes(self) -> int:
        """The largest answer form the hub reads (photos plus the form's other fields)."""
        return self.max_photos * self.max_photo_bytes + 64 * 1024
