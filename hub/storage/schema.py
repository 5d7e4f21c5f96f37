"""Create the hub's schema: the SQL files in ``sql/`` and the time-series tables in their form."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg

from anju.hub.storage.errors import SchemaError
from anju.hub.storage.migrations import SCHEMA_LOCK, VERSION_TABLE, Migration, applied, pending, run
from anju.hub.storage.timeseries import (
    TIME_TABLES,
    TimescalePolicy,
    add_months,
    ensure_partitions,
    month_start,
    plain_sql,
    timescale_policy_sql,
    timescale_tables_sql,
)

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
Backend = Literal["timescaledb", "partitions"]

UNIT_COLUMNS = ("unit_id", "estate_id", "building", "floor", "area_m2", "household_size", "lease_start",
                "faces_enrolled")


@dataclass(frozen=True, slots=True)
class StorageInfo:
    """Which time-series form the database uses, and why."""

    backend: Backend
    reason: str
    timescaledb_version: str | None = None
    sql_files: tuple[str, ...] = ()
    partitions_created: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.backend} ({self.reason})"


def sql_files(directory: Path = SQL_DIR) -> list[Path]:
    """The schema's SQL files in name order."""
    return sorted(directory.glob("*.sql"), key=lambda p: p.name)


def _relkind(conn: psycopg.Connection, table: str) -> str | None:
    row = conn.execute("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)", (table,)).fetchone()
    return str(row[0]) if row else None


def _timescale_available(conn: psycopg.Connection) -> str | None:
    row = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return str(row[0]) if row else None


def _timescale_preloaded(conn: psycopg.Connection) -> bool:
    """Whether the server loaded TimescaleDB at start; without that, CREATE EXTENSION ends the session."""
    row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    names = str(row[0]) if row else ""
    return "timescaledb" in {p.strip() for p in names.split(",")}


def choose_backend(
    conn: psycopg.Connection, *, prefer: Literal["auto", "timescaledb", "partitions"] = "auto"
) -> tuple[Backend, str, str | None]:
    """Decide the time-series form: an existing one is kept; else TimescaleDB when the server offers it."""
    available = _timescale_available(conn)
    kind = _relkind(conn, "meter_readings")
    if kind == "p":
        return "partitions", "existing partitioned tables", available
    if kind == "r":
        installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        if installed:
            return "timescaledb", "existing hypertables", available
        raise SchemaError("meter_readings exists as a plain table; neither hypertable nor partitioned")
    if prefer == "partitions":
        return "partitions", "requested", available
    if available is None:
        if prefer == "timescaledb":
            raise SchemaError("TimescaleDB was requested but the server does not offer the extension")
        return "partitions", "TimescaleDB not available on this server", None
    if not _timescale_preloaded(conn):
        # Trying anyway would not fail softly: the server closes the connection ("must be preloaded").
        why = f"TimescaleDB {available} installed but not in shared_preload_libraries"
        if prefer == "timescaledb":
            raise SchemaError(f"TimescaleDB was requested, but {why}")
        return "partitions", why, available
    return "timescaledb", f"TimescaleDB {available} available", available


def ensure_schema(
    conn: psycopg.Connection,
    *,
    prefer: Literal["auto", "timescaledb", "partitions"] = "auto",
    policy: TimescalePolicy | None = None,
    today: date | None = None,
    months_ahead: int = 3,
) -> StorageInfo:
    """Bring every hub table up to date through versioned migrations (``anju.hub.storage.migrations``).

    When the schema is current this runs no DDL and takes no lock; on partitions it still makes the
    months ahead that are missing. ``policy`` (TimescaleDB's chunks, compression and retention) is
    applied when given and different from the one recorded; None keeps the recorded one (the defaults
    on a new database). ``sql_files`` of the result names the files that ran. The caller commits.
    """
    backend, reason, version = choose_backend(conn, prefer=prefer)
    names: list[str] = []
    done = applied(conn)
    if pending(done, _wanted(backend, policy, done)):
        backend, reason, version, names = _migrate(conn, prefer=prefer, policy=policy)
    created: list[str] = []
    if backend == "partitions":
        start = add_months(month_start(today or datetime.now(UTC).date()), -1)
        created = ensure_partitions(conn, start=start, months_ahead=months_ahead + 1)
    info = StorageInfo(
        backend=backend,
        reason=reason,
        timescaledb_version=version,
        sql_files=tuple(n for n in names if n.endswith(".sql")),
        partitions_created=tuple(created),
    )
    log.info("schema ready: %s%s", info, f"; applied {', '.join(names)}" if names else " (current)")
    return info


def _wanted(backend: Backend, policy: TimescalePolicy | None, done: dict[str, str] | None) -> list[Migration]:
    """The migrations a database of ``backend`` should have run, in order."""
    out = [_timeseries(backend)]
    out += [Migration(p.name, (p.read_text(),)) for p in sql_files()]
    if backend == "timescaledb" and (policy is not None or _POLICIES not in (done or {})):
        out.append(Migration(_POLICIES, tuple(timescale_policy_sql(policy or TimescalePolicy()))))
    return out


_POLICIES = "timescaledb.policies"


def _timeseries(backend: Backend) -> Migration:
    """The time-series tables in ``backend``'s form (first, so that files may define views over them)."""
    if backend == "timescaledb":
        return Migration("timeseries.timescaledb", tuple(timescale_tables_sql(TimescalePolicy())))
    return Migration("timeseries.partitions", tuple(plain_sql()))


def _migrate(
    conn: psycopg.Connection, *, prefer: Literal["auto", "timescaledb", "partitions"],
    policy: TimescalePolicy | None,
) -> tuple[Backend, str, str | None, list[str]]:
    """Run the pending migrations under the schema lock; return the backend, why, and what ran."""
    # Inside the caller's transaction the lock lasts until it commits, so the next hub sees what ran.
    lock = "pg_advisory_lock" if conn.autocommit else "pg_advisory_xact_lock"
    conn.execute(f"SELECT {lock}(%s)", (SCHEMA_LOCK,))  # type: ignore[arg-type,unused-ignore]
    try:
        conn.execute(VERSION_TABLE)
        backend, reason, version = choose_backend(conn, prefer=prefer)  # another hub may have made it
        done = applied(conn) or {}
        ran: list[str] = []
        series = _timeseries(backend)
        if done.get(series.name) != series.checksum:
            try:
                run(conn, series, previous=done.get(series.name))
            except psycopg.Error as err:
                if backend != "timescaledb" or prefer == "timescaledb" or reason == "existing hypertables":
                    raise SchemaError(f"{series.name} failed: {err}") from err
                log.warning("TimescaleDB offered but unusable (%s); using monthly partitions", err)
                backend, reason = "partitions", f"TimescaleDB unusable: {err}".splitlines()[0]
                series = _timeseries(backend)
                run(conn, series, previous=None)
            ran.append(series.name)
        for m in pending(done, _wanted(backend, policy, done)[1:]):
            run(conn, m, previous=done.get(m.name))
            ran.append(m.name)
        return backend, reason, version, ran
    finally:
        if conn.autocommit:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


def _unit_values(row: Mapping[str, Any] | Any) -> tuple[Any, ...]:
    if isinstance(row, Mapping):
        return tuple(row.get(c) for c in UNIT_COLUMNS)
    return tuple(getattr(row, c, None) for c in UNIT_COLUMNS)


def upsert_units(conn: psycopg.Connection, rows: Iterable[Mapping[str, Any] | Any]) -> int:
    """Insert or update units from the registry (mappings or objects with the unit columns); return the count.

    A column given as None keeps what the database has, so a registry without areas does not erase them;
    ``faces_enrolled`` (people with a face enrolled at the gates; 0 = card, code or QR only) likewise.
    """
    values = [_unit_values(r) for r in rows]
    for v in values:
        if not v[0] or not v[1]:
            raise SchemaError(f"a unit needs unit_id and estate_id: {v!r}")
    if not values:
        return 0
    updates = ", ".join(f"{c} = COALESCE(EXCLUDED.{c}, units.{c})" for c in UNIT_COLUMNS[1:])
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO units ({', '.join(UNIT_COLUMNS)}) VALUES ({', '.join(['%s'] * len(UNIT_COLUMNS))}) "
            f"ON CONFLICT (unit_id) DO UPDATE SET {updates}",
            values,
        )
    return len(values)


__all__ = ["TIME_TABLES", "StorageInfo", "choose_backend", "ensure_schema", "sql_files", "upsert_units"]
