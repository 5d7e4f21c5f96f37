"""Retention runs: raw rows past the horizon go a partition at a time, rollups stay, each run audited,
and the hub's pipeline schedules it. (TimescaleDB's own retention jobs: tests/hub/test_timescale.py.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from anju.hub.storage import ensure_months, ensure_schema, list_partitions, upsert_units
from anju.hub.storage.retention import apply_retention
from anju.hub.storage.rollups import refresh_daily_features
from anju.services import free_port
from anju_wire.clock import ESTATE_TZ

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def database_url(database_url_each_backend: str) -> str:
    return database_url_each_backend


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as c:
        ensure_schema(c, today=NOW.date())
        upsert_units(c, [{"unit_id": "E01-1-0101", "estate_id": "E01"}])
        c.commit()
        yield c


def readings(conn: psycopg.Connection, start: datetime, hours: int) -> None:
    conn.execute("INSERT INTO meter_readings (ts, unit_id, meter, value, quality) SELECT %s::timestamptz + "
                 "h * interval '1 hour', 'E01-1-0101', 'electricity', h * 0.5, 'ok' "
                 "FROM generate_series(0, %s) AS h", (start, hours - 1))


def audit_rows(conn: psycopg.Connection) -> list[dict[str, object]]:
    return [r[0] for r in conn.execute(
        "SELECT detail FROM audit_log WHERE action = 'retention' ORDER BY seq").fetchall()]


def test_raw_rows_past_the_horizon_go_a_partition_at_a_time_and_rollups_stay(
    conn: psycopg.Connection, storage_backend: str
) -> None:
    old = datetime(2025, 9, 1, tzinfo=UTC)  # 445 days before NOW: all of September 2025 is past 365
    edge = datetime(2025, 11, 1, tzinfo=UTC)  # November 2025 straddles the horizon (2025-11-20)
    ensure_months(conn, [old, edge])
    readings(conn, old, 24 * 3)
    readings(conn, edge, 24 * 25)
    readings(conn, NOW - timedelta(days=3), 48)
    conn.execute("INSERT INTO access_events (ts, estate_id, event_id, method) "
                 "VALUES (%s, 'E01', 'a1', 'card')", (old,))
    conn.commit()
    refresh_daily_features(conn, tz=ESTATE_TZ, now=NOW)
    conn.commit()
    daily = conn.execute("SELECT count(*) FROM unit_daily").fetchone()
    before = conn.execute("SELECT count(*) FROM meter_readings").fetchone()
    run = apply_retention(conn, horizon_days=365, now=NOW)
    if storage_backend == "timescaledb":  # its retention jobs do this (set at hub start)
        assert run is None
        assert conn.execute("SELECT count(*) FROM meter_readings").fetchone() == before
        return
    assert run is not None and run.cutoff == NOW - timedelta(days=365)
    assert set(run.dropped) == {"meter_readings_p2025_09", "access_events_p2025_09"}
    assert "meter_readings_p2025_11" in list_partitions(conn, "meter_readings")
    # The month that straddles the horizon stays whole until all of it is past.
    assert conn.execute("SELECT count(*) FROM meter_readings").fetchone() == (24 * 25 + 48,)
    assert conn.execute("SELECT count(*) FROM access_events").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM unit_daily").fetchone() == daily != (0,)
    assert audit_rows(conn) == [{"horizon_days": 365, "cutoff": run.cutoff.isoformat(),
                                 "dropped": list(run.dropped)}]
    again = apply_retention(conn, horizon_days=365, now=NOW)
    assert again is not None and again.dropped == ()
    assert len(audit_rows(conn)) == 2  # every run is on the record, even one that dropped nothing


@pytest.mark.parametrize("storage_backend", ["partitions"])
def test_the_pipeline_runs_retention(conn: psycopg.Connection, database_url: str) -> None:
    from anju.hub.main import Pipeline
    from anju.hub.settings import HubSettings

    old = datetime.now(UTC) - timedelta(days=200)
    ensure_months(conn, [old])
    readings(conn, old.replace(day=1, hour=0), 24)
    conn.commit()
    dead = f"http://127.0.0.1:{free_port()}"  # no tenancy system or SMS gateway: their steps wait
    settings = HubSettings(retention_days=60, tenancy_url=dead, sms_url=dead, detect_interval_s=3600,
                           filing_interval_s=0.05)
    pipeline = Pipeline(database_url=database_url, settings=settings)
    pipeline.start()
    try:
        for _ in range(200):
            conn.rollback()
            if audit_rows(conn):
                break
            threading.Event().wait(0.1)
    finally:
        pipeline.stop()
    conn.rollback()
    [detail] = audit_rows(conn)
    month = old.strftime("%Y_%m")
    assert f"meter_readings_p{month}" in detail["dropped"]  # type: ignore[operator]
    assert conn.execute("SELECT count(*) FROM meter_readings WHERE ts < now() - interval '60 days'"
                        ).fetchone() == (0,)


@pytest.mark.parametrize("storage_backend", ["partitions"])
def test_a_busy_table_puts_retention_off_instead_of_queueing_queries(
    conn: psycopg.Connection, database_url: str
) -> None:
    old = datetime(2025, 9, 1, tzinfo=UTC)
    ensure_months(conn, [old])
    readings(conn, old, 24)
    conn.commit()
    with psycopg.connect(database_url) as reader:
        reader.execute("SELECT count(*) FROM meter_readings").fetchone()  # an open transaction holds it
        assert apply_retention(conn, horizon_days=365, now=NOW, lock_timeout_ms=100, tries=1) is None
        assert audit_rows(conn) == []
        assert "meter_readings_p2025_09" in list_partitions(conn, "meter_readings")
        reader.rollback()
    run = apply_retention(conn, horizon_days=365, now=NOW, lock_timeout_ms=100, tries=1)
    assert run is not None and "meter_readings_p2025_09" in run.dropped
