"""Settings of the hub deployable, from environment (``ANJU_*``) or a settings file; built in main()."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from anju_wire import TimeBounds


def default_home() -> Path:
    """Where anju keeps embedded state when ``ANJU_HOME`` is not set: a per-user data directory."""
    return Path(os.environ.get("ANJU_HOME") or user_data_dir("anju", appauthor=False))


class HubSettings(BaseSettings):
    """Everything the hub needs to run; no value is read at import time."""

    model_config = SettingsConfigDict(env_prefix="ANJU_", env_file=None, extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str | None = None  # None: embedded PostgreSQL under ``home``
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    share_group: str = "anju-hub"
    hub_id: str = "hub-1"
    tenancy_url: str = "http://127.0.0.1:8090"
    tenancy_token: SecretStr | None = None
    sms_url: str = "http://127.0.0.1:8091"  # the SMS gateway texting households (hub/household)
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    detect_interval_s: float = 5.0
    filing_interval_s: float = 1.0
    ingest_batch_max: int = 5000
    ingest_flush_s: float = 0.2
    # Time bounds of accepted records (ingest) and of the daily features refresh: a timestamp more than
    # max_clock_skew_s ahead of the hub's clock, or older than retention_days, is a dead letter.
    max_clock_skew_s: float = Field(default=86_400.0, ge=0)
    retention_days: int = Field(default=3660, ge=1)

    def time_bounds(self) -> TimeBounds:
        """The accepted window of record timestamps around the hub's clock."""
        return TimeBounds(
            max_future=timedelta(seconds=self.max_clock_skew_s), max_age=timedelta(days=self.retention_days)
        )

    @classmethod
    def load(cls, path: Path | None = None) -> HubSettings:
        """Read settings from a YAML file (keys as field names) overlaid by the environment."""
        if path is None:
            return cls()
        import yaml

        data = yaml.safe_load(path.read_text()) or {}
        env = cls()
        merged = {k: v for k, v in data.items()}
        for name in cls.model_fields:
            if f"ANJU_{name.upper()}" in os.environ:
                merged[name] = getattr(env, name)
        return cls.model_validate(merged)
