"""Appending to and verifying the audit chain in PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from anju.hub.audit.chain import GENESIS, AuditRow, Checkpoint, Verification, row_mac, verify_rows
from anju.hub.audit.checkpoint import CheckpointLog, CheckpointOutcome
from anju.hub.audit.keys import resolve_audit_key

# Serialises appends: the chain needs each writer to see the previous row's MAC. A transaction-level
# advisory lock is released at commit or rollback, so a rolled-back append leaves no gap and no lock.
AUDIT_LOCK = 0x616E6A75617564  # "anjuaud"

_KEY_ENV = ("ANJU_AUDIT_KEY", "ANJU_AUDIT_KEY_FILE", "ANJU_HOME", "ANJU_ENVIRONMENT")
_key_cache: dict[tuple[str | None, ...], bytes] = {}


def current_key() -> bytes:
    """The MAC key from the environment (see ``anju.hub.audit.keys``), resolved once per configuration."""
    marker = tuple(os.environ.get(name) for name in _KEY_ENV)
    key = _key_cache.get(marker)
    if key is None:
        key = _key_cache[marker] = resolve_audit_key()
    return key


def append(
    conn: psycopg.Connection[Any], *, actor: str, action: str, object_type: str, object_id: str,
    detail: dict[str, Any], key: bytes | None = None, ts: datetime | None = None,
) -> int:
    """Append one row in the caller's transaction, chained to the last one; return its sequence number.

    ``ts``: when the action happened, if earlier than now (rows written late by ``deferred_audit``)."""
    key = key if key is not None else current_key()
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
    last = conn.execute("SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq = int(last[0]) + 1 if last else 1
    prev = (last[1] or GENESIS) if last else GENESIS
    normal = conn.execute("SELECT %s::jsonb::text", (Jsonb(detail),)).fetchone()
    assert normal is not None
    row = AuditRow(seq=seq, ts=ts or datetime.now(UTC), actor=actor, action=action, object_type=object_type,
                   object_id=object_id, detail_json=str(normal[0]))
    # The only way in: the runtime role may not INSERT into audit_log itself (80_audit_guard.sql).
    conn.execute(
        "SELECT anju_audit_insert(%s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
        (seq, row.ts, actor, action, object_type, object_id, row.detail_json, row_mac(key, prev, row)),
    )
    return seq


def _rows(conn: psycopg.Connection[Any], batch: int = 5000, *, after: int = 0) -> Iterator[AuditRow]:
    while True:
        rows = conn.execute(
            "SELECT seq, ts, actor, action, object_type, object_id, detail::text, mac FROM audit_log"
            " WHERE seq > %s ORDER BY seq LIMIT %s", (after, batch),
        ).fetchall()
        if not rows:
            return
        for r in rows:
            yield AuditRow(seq=r[0], ts=r[1], actor=r[2], action=r[3], object_type=r[4], object_id=r[5],
                           detail_json=r[6], mac=r[7])
        after = rows[-1][0]


def verify(
    conn: psycopg.Connection[Any], *, key: bytes | None = None, checkpoint: Checkpoint | None = None
) -> Verification:
    """Walk the whole chain from sequence number 1 (run it in a repeatable-read transaction); with a
    checkpoint, also report a tail deleted or a table truncated after it was taken."""
    return verify_rows(key if key is not None else current_key(), _rows(conn), checkpoint=checkpoint)


def head(conn: psycopg.Connection[Any]) -> tuple[int, str] | None:
    """The chain head as this transaction sees it: (seq, MAC) of the last row, or None when empty."""
    row = conn.execute("SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row and row[1] else None


def take_checkpoint(
    conn: psycopg.Connection[Any], log: CheckpointLog, *, key: bytes | None = None,
    now: datetime | None = None,
) -> CheckpointOutcome:
    """Check the rows written since the last checkpoint and, when they chain on from it, append the new
    head to ``log``. A chain that does not (a tail deleted, a truncation, an edit) writes nothing and
    says why: a checkpoint must never bless a damaged chain. Runs in its own snapshot; commits nothing."""
    key = key if key is not None else current_key()
    last = log.latest(key)
    start = last.seq if last else 0
    prev = GENESIS
    if last is not None:
        at = conn.execute("SELECT mac FROM audit_log WHERE seq = %s", (last.seq,)).fetchone()
        if at is None or at[0] != last.mac:
            result = verify_rows(key, _rows(conn), checkpoint=last)
            problem = result.problem or f"row {last.seq} differs from its checkpoint"
            return CheckpointOutcome(written=None, latest=last, problem=problem)
        prev = last.mac
    result = verify_rows(key, _rows(conn, after=start), start_seq=start + 1, prev_mac=prev, checkpoint=None)
    if not result.ok:
        return CheckpointOutcome(written=None, latest=last, problem=f"seq {result.bad_seq}: {result.problem}")
    if result.rows == 0:
        return CheckpointOutcome(written=None, latest=last)
    cp = Checkpoint(seq=result.head_seq, mac=result.head_mac, ts=now or datetime.now(UTC))
    log.append(cp, key=key)
    return CheckpointOutcome(written=cp, latest=cp)
