"""The time-series tables in their two forms: TimescaleDB hypertables or monthly range partitions.

Both forms give the same table names, columns, keys and the ``meter_hourly`` view, so nothing above
this module needs to know which one is in use. The DDL is generated as text by pure functions.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

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
SEGMENT_BY = {"meter_readings": "unit_id, meter", "access_events": "estate_id"}

_PARTITION_NAME = re.compile(r"^(?P<table>[a-z_]+)_p(?P<year>\d{4})_(?P<month>\d{2})$")


@dataclass(frozen=True, slots=True)
class TimescalePolicy:
    """Chunking, compression and retention of the hypertables."""

    chunk_days: int = 7
    compress_after_days: int = 30
    retention_days: int | None = None  # None: keep everything
    hourly_refresh_days: int = 3


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
    out = ["CREATE EXTENSION IF NOT EXISTS timescaledb"]
    for table in TIME_TABLES:
        out.append(f"CREATE TABLE IF NOT EXISTS {table} ({COLUMNS[table]}\n)")
        out.append(
            f"SELECT create_hypertable('{table}', by_range('ts', INTERVAL '{policy.chunk_days} days'), "
            "if_not_exists => TRUE)"
        )
        # Changing compression settings fails once chunks are compressed, so set them only once.
        out.append(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
            f"WHERE hypertable_name = '{table}' AND compression_enabled) THEN "
            f"ALTER TABLE {table} SET (timescaledb.compress, "
            f"timescaledb.compress_segmentby = '{SEGMENT_BY[table]}', "
            "timescaledb.compress_orderby = 'ts DESC'); END IF; END $$"
        )
        out.append(
            f"SELECT add_compression_policy('{table}', INTERVAL '{policy.compress_after_days} days', "
            "if_not_exists => TRUE)"
        )
        if policy.retention_days is not None:
            out.append(
                f"SELECT add_retention_policy('{table}', INTERVAL '{policy.retention_days} days', "
                "if_not_exists => TRUE)"
            )
        else:
            out.append(f"SELECT remove_retention_policy('{table}', if_exists => TRUE)")
    out.extend(INDEXES)
    out.append(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS meter_hourly WITH (timescaledb.continuous) AS\n"
        "SELECT unit_id, meter, time_bucket(INTERVAL '1 hour', ts) AS hour,\n"
        "       last(value, ts) AS value, count(*)::bigint AS readings\n"
        "FROM meter_readings\nWHERE value IS NOT NULL\n"
        "GROUP BY unit_id, meter, time_bucket(INTERVAL '1 hour', ts)\nWITH NO DATA"
    )
    out.append(
        "SELECT add_continuous_aggregate_policy('meter_hourly', "
        f"start_offset => INTERVAL '{policy.hourly_refresh_days} days', "
        "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes', if_not_exists => TRUE)"
    )
    return out


def plain_sql() -> list[str]:
    """Every statement of the plain-PostgreSQL form (partitions themselves are made separately)."""
    return [*(plain_table_sql(t) for t in TIME_TABLES), *INDEXES, PLAIN_HOURLY_SQL]


# Serialises partition changes between hub processes; the value is arbitrary but fixed.
_PARTITION_LOCK = 0x616E6A7570617274  # "anjupart"
PARTITION_LOCK_TIMEOUT_MS = 2000  # one try's wait for the table's locks when making a partition
PARTITION_LOCK_TRIES = 5


def _exists(conn: psycopg.Connection, name: str) -> bool:
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
    wanted = [(t, month_start(m)) for t in tables for m in sorted(set(map(month_start, months)))]
    missing = [(t, m) for t, m in wanted if not _exists(conn, partition_name(t, m))]
    if not missing:
        return []
    names = ", ".join(partition_name(t, m) for t, m in missing)
    for attempt in range(1, tries):
        try:
            return _create_partitions(conn, missing, lock_timeout_ms=lock_timeout_ms)
        except psycopg.errors.LockNotAvailable:
            log.info("partitions %s: table busy, try %d of %d", names, attempt, tries)
            time.sleep(min(float(attempt), 5.0))
    try:  # the last try (the only one when tries <= 1)
        return _create_partitions(conn, missing, lock_timeout_ms=lock_timeout_ms)
    except psycopg.errors.LockNotAvailable as err:
        err.add_note(
            f"could not create partition(s) {names}: another session held a lock on the table for "
            f"{tries} tries of {lock_timeout_ms} ms (a long query or transaction on it); retry later")
        log.warning("could not create partition(s) %s in %d tries of %d ms: the table is busy",
                    names, tries, lock_timeout_ms)
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
            if not _exists(conn, partition_name(table, month)):  # another hub may have won the race
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
            if _exists(conn, f"{table}_default"):
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE ts < %s").format(sql.Identifier(f"{table}_default")),
                    (cutoff,),
                )
    if dropped:
        log.info("retention dropped partitions %s", ", ".join(dropped))
    return dropped
