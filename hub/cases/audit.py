"""Append-only audit rows for every system and human action on units, alerts and cases."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def record_audit(
    conn: psycopg.Connection, *, actor: str, action: str, object_type: str, object_id: str | int,
    detail: dict[str, Any] | None = None,
) -> None:
    """Insert one audit row in the caller's transaction."""
    conn.execute(
        "INSERT INTO audit_log (actor, action, object_type, object_id, detail) VALUES (%s, %s, %s, %s, %s)",
        (actor, action, object_type, str(object_id), Jsonb(detail or {})),
    )
