"""Append-only audit rows for every system and human action on units, alerts and cases."""

from __future__ import annotations

from typing import Any

import psycopg

from hub.audit.store import append


def record_audit(
    conn: psycopg.Connection, *, actor: str, action: str, object_type: str, object_id: str | int,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit row, chained with a keyed MAC, in the caller's transaction (the one entry point)."""
    append(conn, actor=actor, action=action, object_type=object_type, object_id=str(object_id),
           detail=detail or {})
