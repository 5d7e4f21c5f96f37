"""Retention of raw readings and access events, scheduled by the hub's pipeline and audited.

Past the horizon (the hub's ``retention_days``, the same age ingest refuses), raw rows go a whole
partition (a month) at a time: a partition is dropped once all of its month is past the horizon, and
the DEFAULT partition's strays row by row. Daily rollups (``meter_daily``, ``unit_daily``), alerts,
cases and their evidence are other tables and are kept. On TimescaleDB the hypertables' own retention
jobs (``add_retention_policy``, set from the same horizon at hub start) drop whole chunks instead, so
this does nothing there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from anju.hub.audit.record import record_audit
from anju.hub.storage.timeseries import (
    PARTITION_LOCK_TIMEOUT_MS,
    PARTITION_LOCK_TRIES,
    TIME_TABLES,
    _with_lock_retries,
    drop_partitions_older_than,
    is_partitioned,
)

log = logging.getLogger(__name__)

RETENTION_INTERVAL = timedelta(days=1)  # how often the pipeline runs it


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one retention run dropped."""

    cutoff: datetime
    dropped: tuple[str, ...]


def apply_retention(
    conn: psycopg.Connection, *, horizon_days: int, now: datetime | None = None,
    lock_timeout_ms: int = PARTITION_LOCK_TIMEOUT_MS, tries: int = PARTITION_LOCK_TRIES,
) -> RetentionRun | None:
    """Drop raw rows past ``horizon_days`` on the partitioned form, audited; None on TimescaleDB.

    Dropping a partition needs its table to itself, so, as making one, each try waits at most
    ``lock_timeout_ms`` for open queries on it; after ``tries`` it gives up until the next run (None,
    nothing dropped, a warning logged), rather than queue every query on the table behind it.
    Commits (the drops and their audit row together).
    """
    tables = [t for t in TIME_TABLES if is_partitioned(conn, t)]
    if not tables:
        return None  # TimescaleDB: its retention jobs do this
    cutoff = (now or datetime.now(UTC)) - timedelta(days=horizon_days)

    def attempt() -> list[str]:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout_ms)}ms",))
            dropped = drop_partitions_older_than(conn, before=cutoff.date(), tables=tables)
            detail = {"horizon_days": horizon_days, "cutoff": cutoff.isoformat(), "dropped": dropped}
            record_audit(conn, actor="system:retention", action="retention", object_type="storage",
                         object_id=",".join(tables), detail=detail)
        return dropped

    try:
        dropped = _with_lock_retries(attempt, what="drop partitions past the retention horizon", tries=tries,
                                     lock_timeout_ms=lock_timeout_ms)
    except psycopg.errors.LockNotAvailable:
        conn.rollback()
        return None  # _with_lock_retries logged it; the next run tries again
    conn.commit()
    if dropped:
        log.info("retention dropped %s (before %s)", ", ".join(dropped), cutoff.date())
    return RetentionRun(cutoff=cutoff, dropped=tuple(dropped))
