"""Storage schema on a real PostgreSQL (the plain, partitioned form) and the TimescaleDB DDL as text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import psycopg
import pytest

from anju.hub.storage import (
    StorageInfo,
    TimescalePolicy,
    drop_partitions_older_than,
    ensure_months,
    ensure_partitions,
    ensure_schema,
    list_partitions,
    timescale_sql,
    upsert_units,
)
from anju.hub.storage.timeseries import add_months, parse_partition_name, partition_name

TODAY = date(2026, 3, 15)


@pytest.fixture
def database_url(database_url_each_backend: str) -> str:
    """Every test here runs on monthly partitions and on TimescaleDB (PostgreSQL 15, the oldest supported)."""
    return database_url_each_backend


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as c:
        yield c


def tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT relname FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'v')"
    ).fetchall()
    return {r[0] for r in rows}


def reading(conn: psycopg.Connection, ts: datetime, value: float = 1.0) -> None:
    conn.execute(
        "INSERT INTO meter_readings (ts, unit_id, meter, value, quality) "
        "VALUES (%s, 'U1', 'water', %s, 'ok')",
        (ts, value),
    )


# Tests of the monthly partitions themselves (TimescaleDB makes its chunks itself).
partitions_only = pytest.mark.parametrize("storage_backend", ["partitions"])


def test_ensure_schema_twice_is_idempotent_and_keeps_rows(
    conn: psycopg.Connection, storage_backend: str
) -> None:
    first = ensure_schema(conn, today=TODAY)
    conn.commit()
    assert isinstance(first, StorageInfo)
    assert first.backend == storage_backend
    assert "10_core.sql" in first.sql_files
    reading(conn, datetime(2026, 3, 2, tzinfo=UTC))
    conn.commit()
    second = ensure_schema(conn, today=TODAY)
    conn.commit()
    assert second.backend == storage_backend
    assert second.reason == ("existing partitioned tables" if storage_backend == "partitions"
                             else "existing hypertables")
    assert second.partitions_created == ()
    assert {
        "units",
        "meter_readings",
        "access_events",
        "dead_letters",
        "agent_status",
        "meter_hourly",
    } <= tables(conn)
    assert conn.execute("SELECT count(*) FROM meter_readings").fetchone() == (1,)


@partitions_only
def test_partitions_are_made_ahead_with_a_default(conn: psycopg.Connection) -> None:
    ensure_schema(conn, today=TODAY, months_ahead=3)
    conn.commit()
    names = list_partitions(conn, "meter_readings")
    assert "meter_readings_default" in names
    for month in (date(2026, 2, 1), date(2026, 3, 1), date(2026, 6, 1)):
        assert partition_name("meter_readings", month) in names
        assert partition_name("access_events", month) in list_partitions(conn, "access_events")


@partitions_only
def test_row_in_a_far_month_lands_in_default_then_moves_to_its_partition(conn: psycopg.Connection) -> None:
    ensure_schema(conn, today=TODAY)
    far = datetime(2031, 5, 3, 12, tzinfo=UTC)
    reading(conn, far, 7.0)
    conn.commit()
    where = conn.execute("SELECT tableoid::regclass::text FROM meter_readings").fetchone()
    assert where == ("meter_readings_default",)
    created = ensure_months(conn, [far])
    conn.commit()
    assert created == ["meter_readings_p2031_05", "access_events_p2031_05"]
    assert conn.execute("SELECT tableoid::regclass::text, value FROM meter_readings").fetchall() == [
        ("meter_readings_p2031_05", 7.0)
    ]
    # The natural key still holds across the move.
    with pytest.raises(psycopg.errors.UniqueViolation):
        reading(conn, far, 8.0)
    conn.rollback()
    assert ensure_months(conn, [far]) == []


@partitions_only
def test_a_busy_table_bounds_the_wait_for_a_partition(conn: psycopg.Connection, database_url: str) -> None:
    ensure_schema(conn, today=TODAY)
    conn.commit()
    far = date(2030, 1, 1)
    name = partition_name("meter_readings", far)
    with psycopg.connect(database_url) as reader:
        # An open transaction that has read the table holds its DEFAULT partition, which attaching needs.
        reader.execute("SELECT count(*) FROM meter_readings").fetchone()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable) as info:
            ensure_months(conn, [far], tables=["meter_readings"], lock_timeout_ms=200, tries=2)
        assert time.monotonic() - t0 < 30  # bounded: before, it waited for as long as the reader stayed
        assert f"could not create partition(s) {name}" in " ".join(getattr(info.value, "__notes__", []))
        assert conn.execute("SHOW lock_timeout").fetchone() == ("0",)  # the caller's setting is back
        conn.rollback()
        assert name not in list_partitions(conn, "meter_readings")
        reader.rollback()
    assert ensure_months(conn, [far], tables=["meter_readings"], lock_timeout_ms=200, tries=2) == [name]
    conn.commit()
    assert name in list_partitions(conn, "meter_readings")


@partitions_only
def test_retention_drops_old_partitions_and_old_default_rows(conn: psycopg.Connection) -> None:
    ensure_schema(conn, today=TODAY)
    reading(conn, datetime(2026, 2, 10, tzinfo=UTC))
    reading(conn, datetime(2026, 3, 10, tzinfo=UTC))
    reading(conn, datetime(2019, 1, 1, tzinfo=UTC))  # no partition: DEFAULT
    conn.commit()
    dropped = drop_partitions_older_than(conn, before=date(2026, 3, 1))
    conn.commit()
    assert "meter_readings_p2026_02" in dropped
    assert "meter_readings_p2026_03" not in dropped
    left = conn.execute("SELECT ts FROM meter_readings").fetchall()
    assert left == [(datetime(2026, 3, 10, tzinfo=UTC),)]


def test_meter_hourly_has_last_value_per_hour(conn: psycopg.Connection) -> None:
    ensure_schema(conn, today=TODAY)
    reading(conn, datetime(2026, 3, 2, 8, 5, tzinfo=UTC), 10.0)
    reading(conn, datetime(2026, 3, 2, 8, 55, tzinfo=UTC), 11.5)
    reading(conn, datetime(2026, 3, 2, 9, 5, tzinfo=UTC), 12.0)
    rows = conn.execute("SELECT hour, value, readings FROM meter_hourly ORDER BY hour").fetchall()
    assert rows == [
        (datetime(2026, 3, 2, 8, tzinfo=UTC), 11.5, 2),
        (datetime(2026, 3, 2, 9, tzinfo=UTC), 12.0, 1),
    ]


@partitions_only
def test_ensure_partitions_counts_months_ahead(conn: psycopg.Connection) -> None:
    ensure_schema(conn, today=TODAY)
    created = ensure_partitions(conn, start=date(2027, 11, 20), months_ahead=2, tables=["meter_readings"])
    assert created == ["meter_readings_p2027_11", "meter_readings_p2027_12", "meter_readings_p2028_01"]


@partitions_only
def test_upsert_units_inserts_then_updates_without_erasing(conn: psycopg.Connection) -> None:
    ensure_schema(conn, today=TODAY)
    n = upsert_units(
        conn,
        [
            {"unit_id": "E01-1-0101", "estate_id": "E01", "building": "1", "floor": 1, "area_m2": 42.5,
             "faces_enrolled": 2},
            {"unit_id": "E01-1-0102", "estate_id": "E01", "building": "1", "floor": 1, "faces_enrolled": 0},
        ],
    )
    assert n == 2
    upsert_units(conn, [{"unit_id": "E01-1-0101", "estate_id": "E01", "household_size": 3},
                        {"unit_id": "E01-1-0102", "estate_id": "E01", "faces_enrolled": None}])
    rows = conn.execute(
        "SELECT building, floor, area_m2, household_size, faces_enrolled FROM units ORDER BY unit_id"
    ).fetchall()
    assert rows == [("1", 1, 42.5, 3, 2), ("1", 1, None, None, 0)]  # 0 (card only) is known, not erased


@partitions_only
def test_faces_enrolled_cannot_be_negative(conn: psycopg.Connection) -> None:
    ensure_schema(conn, today=TODAY)
    with pytest.raises(psycopg.errors.CheckViolation):
        upsert_units(conn, [{"unit_id": "E01-1-0101", "estate_id": "E01", "faces_enrolled": -1}])


def test_partition_names_round_trip() -> None:
    assert parse_partition_name("meter_readings_p2026_03") == ("meter_readings", date(2026, 3, 1))
    assert parse_partition_name("meter_readings_default") is None
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 1)
    assert add_months(date(2026, 1, 1), -1) == date(2025, 12, 1)


def test_timescale_sql_is_complete_and_idempotent_text() -> None:
    stmts = timescale_sql(TimescalePolicy(chunk_days=7, compress_after_days=30, retention_days=730))
    text = "\n".join(stmts)
    assert stmts[0] == "CREATE EXTENSION IF NOT EXISTS timescaledb"
    for table in ("meter_readings", "access_events"):
        assert (
            f"create_hypertable('{table}', by_range('ts', INTERVAL '{7 if table == 'meter_readings' else 28} "
            "days'), create_default_indexes => FALSE, if_not_exists => TRUE)" in text
        )
        assert f"add_compression_policy('{table}', INTERVAL '30 days', if_not_exists => TRUE)" in text
        assert f"add_retention_policy('{table}', INTERVAL '730 days', if_not_exists => TRUE)" in text
    assert "timescaledb.compress_segmentby = 'unit_id, meter'" in text
    assert "CREATE MATERIALIZED VIEW IF NOT EXISTS meter_hourly WITH (timescaledb.continuous" in text
    assert "last(value, ts)" in text
    assert "add_continuous_aggregate_policy('meter_hourly'" in text
    # Every CREATE is guarded so the whole list may run again.
    for s in stmts:
        if s.startswith("CREATE"):
            assert "IF NOT EXISTS" in s
    keep = "\n".join(timescale_sql(TimescalePolicy(retention_days=None)))
    assert "retention_policy" not in keep  # left as it is


@partitions_only
def test_timescale_table_ddl_parses_on_plain_postgres(conn: psycopg.Connection) -> None:
    """The hypertable's CREATE TABLE and indexes are plain SQL; check they run (without the extension)."""
    stmts = [s for s in timescale_sql(TimescalePolicy()) if s.startswith(("CREATE TABLE", "CREATE INDEX"))]
    for s in stmts:
        conn.execute(s)  # type: ignore[arg-type,unused-ignore]
    assert {"meter_readings", "access_events"} <= tables(conn)
    conn.rollback()
