"""The daily features refresh stays inside the data's real range whatever stray timestamps are stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from anju.hub.main import detect_once
from anju.hub.storage.rollups import refresh_daily_features
from anju_wire import TimeBounds
from anju_wire.clock import ESTATE_TZ
from tests.hub.test_features import add_readings, add_unit, at, hourly, prepare_schema

NOW = datetime(2026, 3, 10, tzinfo=UTC)
DAY = date(2026, 3, 1)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as c:
        prepare_schema(c)
        for u in ("E01-1-0101", "E01-1-0102"):
            add_unit(c, u)
            add_readings(c, u, "electricity", hourly(DAY, start=100.0, per_hour=0.5))
        # Stored before ingest had time bounds (or by a tool without them): 1901 and 2999.
        add_readings(
            c, "E01-1-0101", "electricity", [(at(date(1901, 6, 1), 8), 1.0), (at(date(2999, 1, 1), 8), 2.0)]
        )
        c.commit()
        yield c


def test_stray_1901_and_2999_rows_do_not_drag_the_refresh(conn: psycopg.Connection) -> None:
    written = refresh_daily_features(conn, tz=ESTATE_TZ, now=NOW)
    conn.commit()
    assert written == 2  # one day, two units; not 1901..2999 for each (800,000 unit-days)
    assert conn.execute("SELECT min(day), max(day) FROM unit_daily").fetchone() == (DAY, DAY)


def test_asked_for_days_are_clamped_to_the_time_window(conn: psycopg.Connection) -> None:
    written = refresh_daily_features(conn, tz=ESTATE_TZ, since=date(1901, 1, 1), until=date(2999, 12, 31),
                                     now=NOW)
    window = TimeBounds().window(NOW)
    days = (window[1].date() - window[0].date()).days + 1
    assert written <= 2 * (days + 1)  # bounded by the window, however wide the request
    assert conn.execute("SELECT max(day) FROM unit_daily").fetchone()[0] <= (NOW + timedelta(days=1)).date()  # type: ignore[index]


def test_a_far_future_unit_daily_row_does_not_hold_the_next_refresh(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO unit_daily (unit_id, day) VALUES ('E01-1-0101', '2999-01-01')")
    conn.commit()
    last = detect_once(conn, tz=ESTATE_TZ, since=None)
    assert last is not None and last < date(2999, 1, 1)
