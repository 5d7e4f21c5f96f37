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

from hub.audit.record import record_audit
from hub.storage.timeseries import TIME_TABLES, drop_partitions_older_than, is_partitioned

log = logging.getLogger(__name__)

RETENTION_INTERVAL = timedelta(days=1)  # how often the pipeline runs it


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one retention run dropped."""

    cutoff: datetime
    dropped: tuple[str, ...]


def apply_retention(conn: psycopg.Connection, *, horizon_days: int, now: datetime | None = None
                    ) -> RetentionRun | None:
    """Drop raw rows past ``horizon_days`` on the partitioned form, audited; None on TimescaleDB.

    Commits (the drops and their audit row together).
    """
    tables = [t for t in TIME_TABLES if is_partitioned(conn, t)]
    if not tables:
        return None  # TimescaleDB: its retention jobs do this
    cutoff = (now or datetime.now(UTC)) - timedelta(days=horizon_days)
    with conn.transaction():
        dropped = drop_partitions_older_than(conn, before=cutoff.date(), tables=tables)
        record_audit(conn, actor="system:retention", action="retention", object_type="storage",
                     object_id=",".join(tables),
                     detail={"horizon_days": horizon_days, "cutoff": cutoff.isoformat(), "dropped": dropped})
    conn.commit()
    if dropped:
        log.info("retention dropped %s (before %s)", ", ".join(dropped), cutoff.date())
    return RetentionRun(cutoff=cutoff, dropped=tuple(dropped))
