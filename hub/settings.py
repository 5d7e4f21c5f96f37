"""Settings of the hub deployable, from environment (``ANJU_*``) or a settings file; built in main()."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from anju.hub.home import default_home
from anju_wire import TimeBounds
from anju_wire.clock import ESTATE_TZ

if TYPE_CHECKING:
    from anju.hub.cases.workflow import WorkflowPolicy
    from anju.hub.storage.timeseries import TimescalePolicy


HUB_ROLES = ("ingest", "pipeline", "api")


def parse_roles(text: str) -> frozenset[str]:
    """``"ingest,pipeline"`` as the set of roles a hub runs; ``"all"`` is every one (``anju hub --role``)."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = names - {*HUB_ROLES, "all"}
    if unknown or not names:
        raise ValueError(f"roles are a comma-separated list of {', '.join(HUB_ROLES)} or all, not {text!r}")
    return frozenset(HUB_ROLES) if "all" in names else frozenset(names)


class FileVariables(PydanticBaseSettingsSource):
    """``ANJU_<FIELD>_FILE=/path``: the field's value is that file's content, without its final newline
    (Docker secrets, systemd credentials). A plain ``ANJU_<FIELD>`` variable, when set too, wins."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"ANJU_{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").rstrip("\r\n"), field_name, False
        except OSError as err:
            raise ValueError(f"ANJU_{field_name.upper()}_FILE: cannot read {path}: {err.strerror}") from err

    def __call__(self) -> dict[str, Any]:
        found = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                found[key] = value
        return found


class HubSettings(BaseSettings):
    """Everything the hub needs to run; no value is read at import time."""

    model_config = SettingsConfigDict(env_prefix="ANJU_", env_file=None, extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str | None = None  # None: embedded PostgreSQL under ``home``
    # The password of database_url's user, kept out of the URL (ANJU_DATABASE_PASSWORD_FILE: a secret file)
    database_password: SecretStr | None = None
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    share_group: str = "anju-hub"
    hub_id: str = "hub-1"
    tenancy_url: str = "http://127.0.0.1:8090"
    tenancy_token: SecretStr | None = None
    # How long the pipeline waits for the tenancy system's answer to one request.
    tenancy_timeout_s: float = Field(default=10.0, gt=0)
    sms_url: str = "http://127.0.0.1:8091"  # the SMS gateway texting households (hub/household)
    # The case workflow's deadline of each step: a YAML file like hub/cases/workflow.yaml (None: that one).
    workflow_policy: Path | None = None
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
    # TimescaleDB (hub.storage.TimescalePolicy says how these were chosen): days of readings per chunk,
    # and the age at which a chunk is compressed. Retention is retention_days, as above.
    timescale_chunk_days: int = Field(default=7, ge=1)
    timescale_compress_after_days: int = Field(default=30, ge=1)
    # What this hub runs (docs/operator.md, "More than one hub"): any of ingest, pipeline, api, or all.
    role: str = "all"
    # The pipeline lease (hub/lease.py): a standby takes over at most this long after the active pipeline
    # hub died; the holder renews it every third of it. Every hub of one database should use the same.
    pipeline_lease_s: float = Field(default=15.0, gt=0)
    # Worker processes of the pipeline's detection runs (hub/detection/parallel.py); each fences its own
    # commit with the pipeline lease. 1: one process, in the pipeline's own transaction.
    detect_jobs: int = Field(default=1, ge=1)
    # Addresses of the reverse proxies whose X-Forwarded-For / -Proto the API trusts (uvicorn's
    # forwarded_allow_ips; "*" for any); None: uvicorn's default, 127.0.0.1 (or $FORWARDED_ALLOW_IPS).
    forwarded_allow_ips: str | None = None
    # The estates' civil time zone (an IANA name): where a day starts for the daily features, the
    # importer's stale days, detection's days and the times the pages show. The stored rollups are per
    # local day: after a change, a pipeline hub that starts rolls every day up again in the new zone.
    estate_tz: str = ESTATE_TZ

    @field_validator("role")
    @classmethod
    def _known_roles(cls, value: str) -> str:
        parse_roles(value)
        return value

    @field_validator("estate_tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:  # ValueError: not a zone's name at all
            raise ValueError(f"estate_tz: {value!r} is not a time zone name (e.g. Asia/Shanghai)") from err
        return value

    def roles(self) -> frozenset[str]:
        """The parts this hub runs."""
        return parse_roles(self.role)

    def timescale_policy(self) -> TimescalePolicy:
        """The hypertables' chunks, compression and retention (dropped past the ingest horizon)."""
        from anju.hub.storage.timeseries import TimescalePolicy

        return TimescalePolicy(chunk_days=self.timescale_chunk_days,
                               compress_after_days=self.timescale_compress_after_days,
                               retention_days=self.retention_days)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:  # fmt: skip
        """Arguments, then ANJU_* variables, then ANJU_*_FILE files."""
        files = FileVariables(settings_cls)
        return (init_settings, env_settings, files, dotenv_settings, file_secret_settings)

    @model_validator(mode="after")
    def _password_into_url(self) -> HubSettings:
        if self.database_password is not None and self.database_url:
            from psycopg.conninfo import make_conninfo

            password = self.database_password.get_secret_value()
            self.database_url = make_conninfo(self.database_url, password=password)
            self.database_password = None
        return self

    def workflow(self) -> WorkflowPolicy:
        """The case workflow's policy: ``workflow_policy``'s file, else the packaged one."""
        from anju.hub.cases.workflow import default_policy, load_policy

        return load_policy(self.workflow_policy) if self.workflow_policy else default_policy()

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
            if f"ANJU_{name.upper()}" in os.environ or f"ANJU_{name.upper()}_FILE" in os.environ:
                merged[name] = getattr(env, name)
        return cls.model_validate(merged)
