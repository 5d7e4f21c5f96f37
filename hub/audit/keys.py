"""Where the audit MAC key comes from: ``ANJU_AUDIT_KEY``, a key file, or (development only) a generated file.

The key never enters the database: whoever can write the audit table must not be able to re-seal it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from anju.hub.audit.errors import AuditKeyError
from anju.hub.home import default_home

PLACEHOLDER = "changethis"
MIN_KEY_BYTES = 32


class AuditSettings(BaseSettings):
    """``ANJU_ENVIRONMENT`` (development | production), ``ANJU_AUDIT_KEY``, ``ANJU_AUDIT_KEY_FILE``,
    ``ANJU_AUDIT_CHECKPOINT_FILE``, ``ANJU_AUDIT_CHECKPOINT_INTERVAL_S``."""

    model_config = SettingsConfigDict(env_prefix="ANJU_", env_file=None, extra="ignore")

    environment: str = "development"
    audit_key: SecretStr | None = None
    audit_key_file: Path | None = None
    home: Path | None = None
    # Where the chain head's checkpoints go (default ``$ANJU_HOME/audit/checkpoints.log``) and how often.
    audit_checkpoint_file: Path | None = None
    audit_checkpoint_interval_s: float = 5.0

    def checkpoint_path(self) -> Path:
        """The checkpoint file of this hub."""
        return self.audit_checkpoint_file or (self.home or default_home()) / "audit" / "checkpoints.log"


def _check(raw: bytes, *, environment: str, source: str) -> bytes:
    if environment != "development":
        if raw.decode(errors="replace").strip() == PLACEHOLDER:
            raise AuditKeyError(f"{source} holds the placeholder key; set a real one outside development")
        if len(raw) < MIN_KEY_BYTES:
            raise AuditKeyError(f"{source} is shorter than {MIN_KEY_BYTES} bytes")
    return raw


def resolve_audit_key(settings: AuditSettings | None = None) -> bytes:
    """The MAC key: ANJU_AUDIT_KEY, else ANJU_AUDIT_KEY_FILE, else (development) a file under ANJU_HOME.

    In development a missing key file is created with 32 random bytes (mode 0600), so the demo and a
    developer's hub share one key without anything secret in the repository. Elsewhere a missing key is
    an error: a key generated on the fly would make yesterday's chain unverifiable after a redeploy.
    """
    s = settings or AuditSettings()
    if s.audit_key is not None:
        return _check(s.audit_key.get_secret_value().encode(), environment=s.environment,
                      source="ANJU_AUDIT_KEY")
    path = s.audit_key_file
    if path is None:
        if s.environment != "development":
            raise AuditKeyError("set ANJU_AUDIT_KEY or ANJU_AUDIT_KEY_FILE outside development")
        path = (s.home or default_home()) / "keys" / "audit.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    try:
        raw = path.read_bytes().strip()
    except OSError as err:
        raise AuditKeyError(f"cannot read audit key file {path}: {err}") from err
    return _check(raw, environment=s.environment, source=str(path))
