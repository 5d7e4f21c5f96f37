"""Bulk imports' load tables: a month's readings COPYed apart, indexed, then swapped in for its empty
partition (plain form) or attached as a chunk where the hypertable has none (TimescaleDB)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import psycopg
from psycopg import sql

from anju.hub.storage.errors import StorageError
from anju.hub.storage.timeseries import (
    PARTITION_LOCK_TIMEOUT_MS,
    PARTITION_LOCK_TRIES,
    _with_lock_retries,
    month_bounds,
    partition_name,
)

log = logging.getLogger(__name__)

# --- Loading a month apart, then swapping it in for its empty partition (bulk imports) ----------------
#
# COPY into an unindexed table and building its indexes afterwards (one sort each) ran at 0.67 of a
# plain COPY; COPY into the indexed meter_readings at 0.28. So a bulk import fills a load table per
# month whose partition is still empty, indexes it and swaps it in, waiting for the table's locks as
# ensure_months does. Only tables listed in _LOAD_KEYS can be loaded so.

LOAD_PREFIX = "bulk_load_"
_LOAD_KEYS = {"meter_readings": "unit_id, meter, ts"}  # the primary key; the one other index is on ts
# The two index builds run side by side on two connections, one core each; parallel workers on top
# of that only fight over the same two cores. Measured on 5.2M rows: 7.4 s so, 7.8 s one after the
# other with parallel workers, 8.5 s one after the other without. 1 GB instead of 256 MB of
# maintenance_work_mem gained nothing at 51.7M rows (121 s against 115 s, within the VM's noise).
_INDEX_SETTINGS = "SET LOCAL maintenance_work_mem = '256MB'; SET LOCAL max_parallel_maintenance_workers = 0"


class MonthNotEmptyError(StorageError):
    """A month received rows from elsewhere while its load table was filling."""


def load_table_name(table: str, month: date) -> str:
    """Name of ``table``'s load table for the month starting at ``month``."""
    return f"{LOAD_PREFIX}{table}_{month.year:04d}_{month.month:02d}"


def month_has_rows(conn: psycopg.Connection, table: str, month: date) -> bool:
    """Whether ``table`` holds any row in the month starting at ``month``."""
    lo, hi = month_bounds(month)
    row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE ts >= %s AND ts < %s)").format(
        sql.Identifier(table)), (lo, hi)).fetchone()
    return bool(row and row[0])


def create_load_table(
    conn: psycopg.Connection, table: str, month: date, *, defaults: Mapping[str, str]
) -> str:
    """Create ``table``'s unindexed load table for ``month``; ``defaults`` fill what a COPY leaves out."""
    name = sql.Identifier(load_table_name(table, month))
    # No range check while loading (it costs per row): the caller routes only this month's rows here.
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(name, sql.Identifier(table)))
    if defaults:
        conn.execute(sql.SQL("ALTER TABLE {} {}").format(name, sql.SQL(", ").join(
            sql.SQL("ALTER COLUMN {} SET DEFAULT {}").format(sql.Identifier(c), sql.Literal(v))
            for c, v in defaults.items())))
    return load_table_name(table, month)


def drop_load_tables(conn: psycopg.Connection, table: str) -> None:
    """Drop every load table of ``table`` (those a crashed or failed import left behind)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relkind = 'r' AND c.relname LIKE %s", (f"{LOAD_PREFIX}{table}_%",)
    ).fetchall()
    for (name,) in rows:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))


def build_load_indexes(conn: psycopg.Connection, table: str, months: list[date]) -> dict[date, int]:
    """Build the load tables' key and time indexes; return, per month, the repeated rows dropped.

    The client is idle by now, so a second connection builds the time indexes while this one builds
    the key indexes (one sort each). Without a second connection, one after the other.
    """
    second: psycopg.Connection | None = None
    try:
        second = psycopg.connect(_conninfo(conn), autocommit=True)
    except psycopg.Error as err:
        log.info("building indexes on one connection (%s)", err)
    dropped: dict[date, int] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="anju-index") as pool:
        pending = pool.submit(_time_indexes, second, table, months) if second is not None else None
        try:
            for m in months:
                dropped[m] = _key_index(conn, table, m)
            if second is None:
                _time_indexes(conn, table, months)
        finally:
            if pending is not None:
                pending.result()
            if second is not None:
                second.close()
    return dropped


def _conninfo(conn: psycopg.Connection) -> str:
    """A connection string for another session like ``conn``'s (its password included)."""
    params = {o.keyword.decode(): o.val.decode() for o in conn.pgconn.info if o.val is not None}
    return psycopg.conninfo.make_conninfo(**params)


def _time_indexes(conn: psycopg.Connection, table: str, months: list[date]) -> None:
    for m in months:
        load = load_table_name(table, m)
        with conn.transaction():
            conn.execute(_INDEX_SETTINGS)
            conn.execute(sql.SQL("CREATE INDEX {} ON {} (ts)").format(
                sql.Identifier(load + "_ts"), sql.Identifier(load)))


def _key_index(conn: psycopg.Connection, table: str, month: date) -> int:
    """The unique key index; a row repeated in the load keeps its first copy. Returns the copies dropped."""
    load = load_table_name(table, month)
    ident = sql.Identifier(load)
    create = sql.SQL("CREATE UNIQUE INDEX {} ON {} ({})").format(
        sql.Identifier(load + "_pkey"), ident, sql.SQL(_LOAD_KEYS[table]))
    with conn.transaction():
        conn.execute(_INDEX_SETTINGS)
        try:
            with conn.transaction():
                conn.execute(create)
        except psycopg.errors.UniqueViolation:
            # As ON CONFLICT DO NOTHING would: the copy that came first (COPY appends in order) stays.
            cur = conn.execute(sql.SQL(
                "DELETE FROM {t} WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() OVER "
                "(PARTITION BY {k} ORDER BY ctid) AS k FROM {t}) d WHERE k > 1)"
            ).format(t=ident, k=sql.SQL(_LOAD_KEYS[table])))
            conn.execute(create)
            return max(cur.rowcount, 0)
    return 0


def swap_in_load_table(
    conn: psycopg.Connection, table: str, month: date, *, defaults: Iterable[str],
    lock_timeout_ms: int = PARTITION_LOCK_TIMEOUT_MS, tries: int = PARTITION_LOCK_TRIES,
) -> bool:
    """Swap the indexed load table in for ``month``'s partition, which must still be empty.

    ``defaults`` names the columns whose load-only defaults are dropped first. Returns False, the load
    table left in place for the caller to merge, when the month has rows by now or the table stayed busy.
    """
    part = partition_name(table, month)
    # The range check lets ATTACH skip its scan, which would run under the parent's lock.
    _make_key(conn, table, month, defaults=defaults, range_check=True)
    try:
        _with_lock_retries(lambda: _attach(conn, table, month, lock_timeout_ms), what=f"swap in {part}",
                           tries=tries, lock_timeout_ms=lock_timeout_ms)
    except (psycopg.errors.LockNotAvailable, MonthNotEmptyError, psycopg.errors.ObjectNotInPrerequisiteState,
            psycopg.errors.CheckViolation) as err:
        log.info("month %s not swapped in (%s); to be merged instead", part, err)
        return False
    return True


def _make_key(
    conn: psycopg.Connection, table: str, month: date, *, defaults: Iterable[str], range_check: bool
) -> None:
    """Drop the load table's load-only defaults and make its unique index the primary key."""
    load = load_table_name(table, month)
    lo, hi = month_bounds(month)
    drops = [sql.SQL("ALTER COLUMN {} DROP DEFAULT, ").format(sql.Identifier(c)) for c in defaults]
    check = sql.SQL("ADD CONSTRAINT {c} CHECK (ts >= {lo} AND ts < {hi}), ").format(
        c=sql.Identifier(load + "_range"), lo=sql.Literal(lo), hi=sql.Literal(hi))
    with conn.transaction():
        conn.execute(sql.SQL(
            "ALTER TABLE {t} {drops}{check}ADD CONSTRAINT {k} PRIMARY KEY USING INDEX {k}"
        ).format(
            t=sql.Identifier(load), drops=sql.Composed(drops), check=check if range_check else sql.SQL(""),
            k=sql.Identifier(load + "_pkey")))


# --- TimescaleDB: a month with no chunk yet takes the load table as its chunk ---------------------------
#
# Measured on 1.04M readings of one month: attaching the indexed load table took 2.6 s where merging
# the same rows into the hypertable (INSERT ... ON CONFLICT, index by index, row by row) took 27.7 s.
# The chunk spans the whole month (TimescaleDB takes any range that meets no other chunk); live
# writes later in that month go into it too.


def chunk_name(table: str, month: date) -> str:
    """Name of ``table``'s chunk for the month starting at ``month`` made from a bulk import's load."""
    return f"{table}_m{month.year:04d}_{month.month:02d}"


def is_hypertable(conn: psycopg.Connection, table: str) -> bool:
    """Whether ``table`` is a TimescaleDB hypertable."""
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')").fetchone()
    if not (row and row[0]):
        return False
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
                       "WHERE hypertable_name = %s)", (table,)).fetchone()
    return bool(row and row[0])


def month_has_chunks(conn: psycopg.Connection, table: str, month: date) -> bool:
    """Whether the hypertable ``table`` has a chunk whose range meets the month starting at ``month``."""
    lo, hi = month_bounds(month)
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM timescaledb_information.chunks "
                       "WHERE hypertable_name = %s AND range_start < %s AND range_end > %s)",
                       (table, hi, lo)).fetchone()
    return bool(row and row[0])


def attach_load_table(
    conn: psycopg.Connection, table: str, month: date, *, defaults: Iterable[str],
    lock_timeout_ms: int = PARTITION_LOCK_TIMEOUT_MS, tries: int = PARTITION_LOCK_TRIES,
) -> bool:
    """Attach the indexed load table to the hypertable as the chunk of ``month``, which must have none.

    As ``swap_in_load_table``: False, the load table left for the caller to merge, when a chunk meets
    the month by now (live ingest wrote into it) or the table stayed busy.
    """
    name = chunk_name(table, month)
    _make_key(conn, table, month, defaults=defaults, range_check=False)
    try:
        _with_lock_retries(lambda: _attach_chunk(conn, table, month, lock_timeout_ms), what=f"attach {name}",
                           tries=tries, lock_timeout_ms=lock_timeout_ms)
    except (psycopg.errors.LockNotAvailable, MonthNotEmptyError) as err:
        log.info("month %s not attached (%s); to be merged instead", name, err)
        return False
    except psycopg.DatabaseError as err:  # e.g. "chunk creation failed due to collision"
        log.warning("month %s not attached (%s); to be merged instead", name, err)
        return False
    return True


def _attach_chunk(conn: psycopg.Connection, table: str, month: date, lock_timeout_ms: int) -> None:
    load, name = load_table_name(table, month), chunk_name(table, month)
    lo, hi = month_bounds(month)
    with conn.transaction():
        conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms'")
        if month_has_chunks(conn, table, month):
            raise MonthNotEmptyError(name)
        # TimescaleDB keeps the key and ts indexes it finds and checks every row against the range.
        slices = json.dumps({"ts": [lo.isoformat(), hi.isoformat()]})
        conn.execute(sql.SQL("CALL attach_chunk({}, {}, {})").format(
            sql.Literal(table), sql.Literal(load), sql.Literal(slices)))
        for kind, old, new in (("TABLE", load, name), ("INDEX", load + "_ts", name + "_ts"),
                               ("INDEX", load + "_pkey", name + "_pkey")):
            conn.execute(sql.SQL("ALTER {} {} RENAME TO {}").format(
                sql.SQL(kind), sql.Identifier(old), sql.Identifier(new)))


def _attach(conn: psycopg.Connection, table: str, month: date, lock_timeout_ms: int) -> None:
    load, part = load_table_name(table, month), partition_name(table, month)
    lo, hi = month_bounds(month)
    ident, pident = sql.Identifier(load), sql.Identifier(part)
    with conn.transaction():
        conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms'")
        # Parent first, as queries lock; the month must still be empty (live ingest may have written).
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table)))
        if month_has_rows(conn, table, month):
            raise MonthNotEmptyError(part)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(pident))
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident, pident))
        conn.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
            pident, sql.Identifier(load + "_pkey"), sql.Identifier(part + "_pkey")))
        conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            sql.Identifier(load + "_ts"), sql.Identifier(part + "_ts_idx")))
        conn.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(table), pident, sql.Literal(lo), sql.Literal(hi)))
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            pident, sql.Identifier(load + "_range")))
