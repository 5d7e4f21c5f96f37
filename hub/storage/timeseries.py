"""The time-series tables in their two forms: TimescaleDB hypertables or monthly range partitions.

Both forms give the same table names, columns, keys and the ``meter_hourly`` view, so nothing above
this module needs to know which one is in use. The DDL is generated as text by pure functions.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)
_T = TypeVar("_T")

TIME_TABLES = ("meter_readings", "access_events")

COLUMNS: dict[str, str] = {
    "meter_readings": """
    ts          timestamptz      NOT NULL,
    unit_id     text             NOT NULL,
    meter       text             NOT NULL,
    value       double precision NULL,
    quality     text             NULL,
    device      text             NULL,
    agent_id    text             NULL,
    seq         bigint           NULL,
    received_at timestamptz      DEFAULT now(),
    PRIMARY KEY (unit_id, meter, ts)""",
    "access_events": """
    ts             timestamptz NOT NULL,
    estate_id      text        NOT NULL,
    device_id      text        NULL,
    event_id       text        NOT NULL,
    building       text        NULL,
    floor          int         NULL,
    method         text        NULL,
    person         text        NULL,
    unit_id        text        NULL,
    stranger_track text        NULL,
    agent_id       text        NULL,
    seq            bigint      NULL,
    received_at    timestamptz DEFAULT now(),
    PRIMARY KEY (estate_id, event_id, ts)""",
}

# Secondary indexes the detectors and the UI read by; the same in both forms.
INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS meter_readings_ts ON meter_readings (ts)",
    "CREATE INDEX IF NOT EXISTS access_events_unit_ts ON access_events (unit_id, ts)",
    "CREATE INDEX IF NOT EXISTS access_events_building_ts ON access_events (estate_id, building, ts)",
)

# How TimescaleDB compresses each table: segment by the series key, newest first inside a segment.
# Access events by gate (estate and building): on 200 simulated units x 90 days, 4.97x smaller against
# 4.61x by estate and 3.85x by unit (a unit has a few events a day, too few per segment); in that run a
# query of one unit's events took 2 ms against 7 and 5.
SEGMENT_BY = {"meter_readings": "unit_id, meter", "access_events": "estate_id, building"}

_PARTITION_NAME = re.compile(r"^(?P<table>[a-z_]+)_p(?P<year>\d{4})_(?P<month>\d{2})$")


@dataclass(frozen=True, slots=True)
class TimescalePolicy:
    """Chunking, compression and retention of the hypertables.

    Chunks: TimescaleDB's rule is that the chunks being written, with their indexes, fit in a quarter
    of memory. ``bench/backends.py`` measured 155 to 161 bytes a reading uncompressed with its two
    indexes (the key and ts), and 9.6 compressed (segments by unit and meter, 16.8x). A city of 20,000
    units x 3 meters polled hourly (the agent's default) writes 1.44M readings or 230 MB a day, so a
    7-day chunk is 1.6 GB: a quarter of a small 8 GB database host, and few chunks per query of a
    month. A province (500,000 units) should set ``chunk_days=1`` (5.8 GB a day). Access events are
    a twentieth as many rows in the simulated estates (a few gate events per flat a day), so their
    chunks span 28 days to hold enough rows per estate segment to compress. Compression after 30
    days: older readings are only read by whole days (the rollups; the hub refreshes recent days)
    and agents' outboxes replay at most days late, so inserts into compressed chunks stay rare
    (they work, just slower). A bulk import gives a month that has no chunk yet one month-long chunk
    (``anju.hub.storage.bulkload``): history is not written to afterwards, and compresses better so (22x).
    """

    chunk_days: int = 7
    access_chunk_days: int = 28
    compress_after_days: int = 30
    retention_days: int | None = None  # None: leave the retention policies as they are (none at first)
    hourly_refresh_days: int = 3

    def chunk_interval_days(self, table: str) -> int:
        """The chunk interval of ``table`` in days."""
        return self.access_chunk_days if table == "access_events" else self.chunk_days


def month_start(d: date | datetime) -> date:
    """The first day of the month ``d`` falls in (UTC for datetimes)."""
    if isinstance(d, datetime):
        d = d.astimezone(UTC).date()
    return date(d.year, d.month, 1)


def add_months(d: date, months: int) -> date:
    """The first of the month ``months`` after the month of ``d``."""
    index = d.year * 12 + (d.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the month starting at ``month``: a monthly partition's range."""
    nxt = add_months(month, 1)
    return datetime(month.year, month.month, 1, tzinfo=UTC), datetime(nxt.year, nxt.month, 1, tzinfo=UTC)


def partition_name(table: str, month: date) -> str:
    """Name of ``table``'s partition for the month starting at ``month``."""
    return f"{table}_p{month.year:04d}_{month.month:02d}"


def parse_partition_name(name: str) -> tuple[str, date] | None:
    """(table, month) of a monthly partition name, or None for other names (the default partition)."""
    m = _PARTITION_NAME.match(name)
    if m is None:
        return None
    return m["table"], date(int(m["year"]), int(m["month"]), 1)


def plain_table_sql(table: str) -> str:
    """DDL of the range-partitioned form of ``table`` with its DEFAULT partition (which rejects nothing)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ({COLUMNS[table]}\n) PARTITION BY RANGE (ts);\n"
        f"CREATE TABLE IF NOT EXISTS {table}_default PARTITION OF {table} DEFAULT;"
    )


# Last value per unit, meter and hour; the same columns as the TimescaleDB continuous aggregate.
PLAIN_HOURLY_SQL = """CREATE OR REPLACE VIEW meter_hourly AS
SELECT unit_id, meter, date_trunc('hour', ts, 'UTC') AS hour,
       (array_agg(value ORDER BY ts DESC))[1] AS value, count(*)::bigint AS readings
FROM meter_readings
WHERE value IS NOT NULL
GROUP BY unit_id, meter, date_trunc('hour', ts, 'UTC')"""


def timescale_sql(policy: TimescalePolicy) -> list[str]:
    """Every statement of the TimescaleDB form, in order; each may run again on an existing database."""
    return [*timescale_tables_sql(policy), *timescale_policy_sql(policy)]


def timescale_tables_sql(policy: TimescalePolicy) -> list[str]:
    """The TimescaleDB form's extension, hypertables, compression settings, indexes and hourly view."""
    out = ["CREATE EXTENSION IF NOT EXISTS timescaledb"]
    for table in TIME_TABLES:
        out.append(f"CREATE TABLE IF NOT EXISTS {table} ({COLUMNS[table]}\n)")
        # No default index on ts: INDEXES makes the one the plain form has, and two would cost space.
        out.append(
            f"SELECT create_hypertable('{table}', "
            f"by_range('ts', INTERVAL '{policy.chunk_interval_days(table)} days'), "
            "create_default_indexes => FALSE, if_not_exists => TRUE)"
        )
        # Changing compression settings fails once chunks are compressed, so set them only once.
        out.append(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
            f"WHERE hypertable_name = '{table}' AND compression_enabled) THEN "
            f"ALTER TABLE {table} SET (timescaledb.compress, "
            f"timescaledb.compress_segmentby = '{SEGMENT_BY[table]}', "
            "timescaledb.compress_orderby = 'ts DESC'); END IF; END $$"
        )
    out.extend(INDEXES)
    out.append(
        # Not materialized_only: like the plain view, it answers with the newest rows too.
        "CREATE MATERIALIZED VIEW IF NOT EXISTS meter_hourly "
        "WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS\n"
        "SELECT unit_id, meter, time_bucket(INTERVAL '1 hour', ts) AS hour,\n"
        "       last(value, ts) AS value, count(*)::bigint AS readings\n"
        "FROM meter_readings\nWHERE value IS NOT NULL\n"
        "GROUP BY unit_id, meter, time_bucket(INTERVAL '1 hour', ts)\nWITH NO DATA"
    )
    # Databases made before these were settled: one made materialized-only, and TimescaleDB's default
    # index on ts beside INDEXES' own.
    out.append("ALTER MATERIALIZED VIEW meter_hourly SET (timescaledb.materialized_only = false)")
    out.extend(f"DROP INDEX IF EXISTS {table}_ts_idx" for table in TIME_TABLES)
    return out


def timescale_policy_sql(policy: TimescalePolicy) -> list[str]:
    """The TimescaleDB form's chunk intervals and jobs (compression, retention, hourly refresh)."""
    out = []
    for table in TIME_TABLES:
        # For an existing table: applies to chunks made from now on.
        days = policy.chunk_interval_days(table)
        out.append(f"SELECT set_chunk_time_interval('{table}', INTERVAL '{days} days')")
        out.extend(_job_sql("compression", table, policy.compress_after_days))
        if policy.retention_days is not None:  # None leaves the table's retention policy as it is
            out.extend(_job_sql("retention", table, policy.retention_days))
    out.append(
        "SELECT add_continuous_aggregate_policy('meter_hourly', "
        f"start_offset => INTERVAL '{policy.hourly_refresh_days} days', "
        "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes', if_not_exists => TRUE)"
    )
    return out


_JOB_AGE = {"compression": "compress_after", "retention": "drop_after"}


def _job_sql(kind: str, table: str, days: int) -> list[str]:
    """Statements that give ``table`` a compression or retention job at an age of ``days``.

    add_*_policy keeps an existing job as it is, so one with another age is removed first.
    """
    return [
        f"SELECT remove_{kind}_policy(hypertable_name::regclass, if_exists => TRUE) "
        f"FROM timescaledb_information.jobs WHERE proc_name = 'policy_{kind}' "
        f"AND hypertable_name = '{table}' AND config->>'{_JOB_AGE[kind]}' <> '{days} days'",
        f"SELECT add_{kind}_policy('{table}', INTERVAL '{days} days', if_not_exists => TRUE)",
    ]


def plain_sql() -> list[str]:
    """Every statement of the plain-PostgreSQL form (partitions themselves are made separately)."""
    return [*(plain_table_sql(t) for t in TIME_TABLES), *INDEXES, PLAIN_HOURLY_SQL]


# Serialises partition changes between hub processes; the value is arbitrary but fixed.
_PARTITION_LOCK = 0x616E6A7570617274  # "anjupart"
PARTITION_LOCK_TIMEOUT_MS = 2000  # one try's wait for the table's locks when making a partition
PARTITION_LOCK_TRIES = 5


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    """Whether a table (or any relation) of that name exists."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def _create_partition(conn: psycopg.Connection, table: str, month: date) -> None:
    """Create one monthly partition, moving rows of that month out of the DEFAULT partition first."""
    name = partition_name(table, month)
    lo, hi = month_bounds(month)
    ident, parent, default = sql.Identifier(name), sql.Identifier(table), sql.Identifier(f"{table}_default")
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(ident, parent))
    # Rows that arrived before the partition existed sit in DEFAULT; attaching would fail on them.
    conn.execute(
        sql.SQL(
            "WITH moved AS (DELETE FROM {d} WHERE ts >= %s AND ts < %s RETURNING *) "
            "INSERT INTO {p} SELECT * FROM moved"
        ).format(d=default, p=ident),
        (lo, hi),
    )
    conn.execute(
        sql.SQL("ALTER TABLE {p} ATTACH PARTITION {c} FOR VALUES FROM ({lo}) TO ({hi})").format(
            p=parent, c=ident, lo=sql.Literal(lo), hi=sql.Literal(hi)
        )
    )
    log.info("created partition %s", name)


def ensure_months(
    conn: psycopg.Connection, months: Iterable[date], *, tables: Iterable[str] = TIME_TABLES,
    lock_timeout_ms: int = PARTITION_LOCK_TIMEOUT_MS, tries: int = PARTITION_LOCK_TRIES,
) -> list[str]:
    """Make sure a partition exists for each month in ``months``; return the names of those created.

    Attaching a partition needs the DEFAULT partition to itself, so it waits for every open query that
    has read the table; and while it waits, every new query on the table queues behind it. So each try
    waits at most ``lock_timeout_ms``, and after ``tries`` the ``LockNotAvailable`` is raised with a note
    saying what was being made and why it could not be (the ingest writer retries its batch later, unacked;
    an import can be run again).
    """
    # Hypertables make their chunks themselves.
    tables = [t for t in tables if is_partitioned(conn, t)]
    wanted = [(t, month_start(m)) for t in tables for m in sorted(set(map(month_start, months)))]
    missing = [(t, m) for t, m in wanted if not table_exists(conn, partition_name(t, m))]
    if not missing:
        return []
    names = ", ".join(partition_name(t, m) for t, m in missing)
    return _with_lock_retries(lambda: _create_partitions(conn, missing, lock_timeout_ms=lock_timeout_ms),
                              what=f"create partition(s) {names}", tries=tries,
                              lock_timeout_ms=lock_timeout_ms)


def _with_lock_retries(attempt: Callable[[], _T], *, what: str, tries: int, lock_timeout_ms: int) -> _T:
    """Run ``attempt`` (whose lock waits end after ``lock_timeout_ms``) until it gets its locks.

    Waits 1, 2, ... (at most 5) seconds between tries; after ``tries`` (at least one) the last
    ``LockNotAvailable`` is raised with a note saying what could not be done and why.
    """
    for n in range(1, tries):
        try:
            return attempt()
        except psycopg.errors.LockNotAvailable:
            log.info("%s: table busy, try %d of %d", what, n, tries)
            time.sleep(min(float(n), 5.0))
    try:  # the last try (the only one when tries <= 1)
        return attempt()
    except psycopg.errors.LockNotAvailable as err:
        err.add_note(
            f"could not {what}: another session held a lock on the table for "
            f"{tries} tries of {lock_timeout_ms} ms (a long query or transaction on it); retry later")
        log.warning("could not %s in %d tries of %d ms: the table is busy", what, tries, lock_timeout_ms)
        raise


def _create_partitions(
    conn: psycopg.Connection, missing: list[tuple[str, date]], *, lock_timeout_ms: int
) -> list[str]:
    created: list[str] = []
    with conn.transaction():
        row = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
        before = row[0] if row else "0"
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout_ms)}ms",))
        for table, month in missing:
            if not table_exists(conn, partition_name(table, month)):  # another hub may have won the race
                _create_partition(conn, table, month)
                created.append(partition_name(table, month))
        # A caller's own transaction (this block is then a savepoint) keeps its own setting.
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (before,))
    return created


def ensure_partitions(
    conn: psycopg.Connection, *, start: date, months_ahead: int, tables: Iterable[str] = TIME_TABLES
) -> list[str]:
    """Create monthly partitions from the month of ``start`` through ``months_ahead`` months later."""
    first = month_start(start)
    return ensure_months(conn, [add_months(first, i) for i in range(months_ahead + 1)], tables=tables)


def list_partitions(conn: psycopg.Connection, table: str) -> list[str]:
    """Names of ``table``'s partitions (monthly ones and the default), sorted."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def drop_partitions_older_than(
    conn: psycopg.Connection, *, before: date, tables: Iterable[str] = TIME_TABLES
) -> list[str]:
    """Retention: drop monthly partitions wholly before ``before`` and delete older rows from DEFAULT."""
    cutoff = datetime(before.year, before.month, before.day, tzinfo=UTC)
    dropped: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
        for table in tables:
            for name in list_partitions(conn, table):
                parsed = parse_partition_name(name)
                if parsed is None or parsed[0] != table:
                    continue
                if add_months(parsed[1], 1) <= before:
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                    dropped.append(name)
            if table_exists(conn, f"{table}_default"):
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE ts < %s").format(sql.Identifier(f"{table}_default")),
                    (cutoff,),
                )
    if dropped:
        log.info("retention dropped partitions %s", ", ".join(dropped))
    return dropped


def is_partitioned(conn: psycopg.Connection, table: str) -> bool:
    """Whether ``table`` is in the plain, partitioned form (TimescaleDB's has no partitions to swap)."""
    row = conn.execute("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)", (table,)).fetchone()
    return bool(row and row[0] == "p")
