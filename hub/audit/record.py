"""Append-only audit rows for every system and human action on units, alerts and cases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from anju.hub.audit.store import append

# Connections whose audit rows are being held back by ``deferred_audit``, by id (one thread uses a
# connection at a time, and the entry lives only while its block runs).
_deferred: dict[int, list[dict[str, Any]]] = {}


def record_audit(
    conn: psycopg.Connection, *, actor: str, action: str, object_type: str, object_id: str | int,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit row, chained with a keyed MAC, in the caller's transaction (the one entry point)."""
    row: dict[str, Any] = {"actor": actor, "action": action, "object_type": object_type,
                           "object_id": str(object_id), "detail": detail or {}}
    held = _deferred.get(id(conn))
    if held is not None:
        held.append({**row, "ts": datetime.now(UTC)})
        return
    append(conn, **row)


@contextmanager
def deferred_audit(conn: psycopg.Connection) -> Iterator[None]:
    """Hold this connection's audit rows back and append them when the block ends without error.

    Appending takes the chain's lock until commit, so a long transaction that audits as it goes (a
    detection run over every unit) would stall every person's action meanwhile. Inside this block the
    rows are kept in memory with the time of their action and written at the end, still in the caller's
    transaction: the lock is then held only from there to the commit. An exception discards them with
    the transaction that raised it. Nested blocks join the outer one.
    """
    key = id(conn)
    if key in _deferred:
        yield
        return
    held: list[dict[str, Any]] = []
    _deferred[key] = held
    try:
        yield
    finally:
        del _deferred[key]
    for row in held:
        append(conn, **row)
