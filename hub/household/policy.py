"""The household side's policy: code lifetimes and limits, the answer period, notices, photo limits.

From the environment (``ANJU_HOUSEHOLD_*``) so a city sets its own answer period and notice rules.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic_settings import SettingsConfigDict

from anju.hub.tenancy.hold import AnswerPeriod


class HouseholdPolicy(AnswerPeriod):
    """``ANJU_HOUSEHOLD_*``: the answer period (``answer_days``, ``notify_on_confirm``, inherited from the
    filing hold's ``AnswerPeriod``, which reads the same variables), codes, sessions and photo limits."""

    model_config = SettingsConfigDict(env_prefix="ANJU_HOUSEHOLD_", env_file=None, extra="ignore")

    code_digits: int = 6
    code_ttl_s: int = 600
    code_max_tries: int = 5  # wrong entries before a code is void
    codes_per_phone_hour: int = 5
    code_gap_s: int = 60  # between two codes to one number
    codes_per_address_hour: int = 30
    session_hours: int = 12
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
    def max_upload_bytes(self) -> int:
        """The largest answer form the hub reads (photos plus the form's other fields)."""
        return self.max_photos * self.max_photo_bytes + 64 * 1024
