"""Daily rollups on a real PostgreSQL: hand-made readings and events in, expected daily rows out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from anju.hub.storage import ensure_schema
from anju.hub.storage.rollups import refresh_daily_features
from anju_wire.clock import ESTATE_TZ

TZ = ZoneInfo(ESTATE_TZ)  # the default estate zone, "Asia/Shanghai"


def prepare_schema(conn: psycopg.Connection) -> None:
    """The hub's whole schema, as the hub creates it."""
    ensure_schema(conn)
    conn.commit()



@pytest.fixture
def database_url(database_url_each_backend: str) -> str:
    """Every test here runs on monthly partitions and on TimescaleDB (PostgreSQL 15, the oldest supported)."""
    return database_url_each_backend

@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as c:
        prepare_schema(c)
        yield c


def at(d: date, hour: int, minute: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=TZ)


def add_unit(conn: psycopg.Connection, unit_id: str, *, estate: str = "E01", building: str = "1") -> None:
    conn.execute(
        "INSERT INTO units (unit_id, estate_id, building) VALUES (%s, %s, %s)", (unit_id, estate, building)
    )


def add_readings(
    conn: psycopg.Connection, unit_id: str, meter: str, rows: Sequence[tuple[datetime, float | None]]
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO meter_readings (ts, unit_id, meter, value, quality, device, agent_id, seq)"
            " VALUES (%s, %s, %s, %s, %s, 'dev', 'E01-gw1', 0)",
            [(ts, unit_id, meter, v, "ok" if v is not None else "unavailable") for ts, v in rows],
        )


def hourly(d: date, *, start: float, per_hour: float) -> list[tuple[datetime, float]]:
    return [(at(d, h), start + per_hour * h) for h in range(24)]


def add_event(
    conn: psycopg.Connection, ts: datetime, event_id: str, *, building: str = "1", unit_id: str | None = None,
    stranger: str | None = None, method: str = "face",
) -> None:
    conn.execute(
        "INSERT INTO access_events (ts, estate_id, device_id, event_id, building, method, person, unit_id,"
        " stranger_track, agent_id, seq) VALUES (%s, 'E01', 'E01-G1', %s, %s, %s, %s, %s, %s, 'E01-gw1', 0)",
        (ts, event_id, building, method, "p-" + "a" * 16 if unit_id else None, unit_id, stranger),
    )


def meter_daily(conn: psycopg.Connection, unit_id: str, meter: str) -> dict[date, tuple[object, ...]]:
    rows = conn.execute(
        "SELECT day, consumption, hours_covered, readings, resets FROM meter_daily"
        " WHERE unit_id = %s AND meter = %s ORDER BY day", (unit_id, meter),
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


def test_consumption_is_sum_of_positive_deltas_by_local_day(conn: psycopg.Connection) -> None:
    add_unit(conn, "U1")
    # Day 1: 0..23 kWh hourly, day 2 continues: the midnight step (123 -> 124) is what was used from
    # 23:00 to midnight, day 1's last hour, so it belongs to day 1 (the reading that closes it too).
    add_readings(conn, "U1", "electricity", hourly(D1, start=100.0, per_hour=1.0))
    add_readings(conn, "U1", "electricity", hourly(D2, start=124.0, per_hour=0.5))
    assert refresh_daily_features(conn, tz=ESTATE_TZ) == 2
    md = meter_daily(conn, "U1", "electricity")
    assert md[D1] == (24.0, 24, 25, 0)
    assert md[D2] == (23 * 0.5, 23, 23, 0)  # its last hour awaits the next midnight's reading


def test_outage_day_is_unknown_not_zero(conn: psycopg.Connection) -> None:
    add_unit(conn, "U1")
    add_readings(conn, "U1", "electricity", hourly(D1, start=10.0, per_hour=0.2))
    # Day 2: only 6 hours answered (the rest 'unavailable'): consumption must be NULL.
    rows: list[tuple[datetime, float | None]] = [(at(D2, h), 15.0 + 0.2 * h) for h in range(6)]
    rows += [(at(D2, h), None) for h in range(6, 24)]
    add_readings(conn, "U1", "electricity", rows)
    refresh_daily_features(conn, tz=ESTATE_TZ)
    md = meter_daily(conn, "U1", "electricity")
    assert md[D2][0] is None and md[D2][1] == 5  # 01:00-05:00 (its 00:00 reading closes day 1's last hour)
    # Day 3 has no reading at all: unit_daily still has the day, with NULL consumption.
    add_readings(conn, "U1", "water", hourly(D3, start=1.0, per_hour=0.01))
    refresh_daily_features(conn, tz=ESTATE_TZ)
    rows = conn.execute("SELECT day, elec_kwh FROM unit_daily WHERE unit_id = 'U1'").fetchall()
    ud: dict[date, float | None] = dict(rows)
    assert ud[D2] is None and ud[D3] is None and ud[D1] == pytest.approx(4.6 + 0.4)  # 23:00 to midnight


def test_reset_is_counted_not_a_huge_or_negative_value(conn: psycopg.Connection) -> None:
    add_unit(conn, "U1")
    values = [99990.0 + h for h in range(12)] + [0.5 + h for h in range(12)]  # rollover at 12:00
    add_readings(conn, "U1", "electricity", [(at(D1, h), v) for h, v in enumerate(values)])
    refresh_daily_features(conn, tz=ESTATE_TZ)
    consumption, hours, readings, resets = meter_daily(conn, "U1", "electricity")[D1]
    # Hours with use known: not 11:00-12:00 (the reset's) nor 23:00-24:00 (no reading closes it yet).
    assert resets == 1 and hours == 22 and readings == 24
    assert consumption == pytest.approx(22.0)  # 11 + 11 steps of 1 kWh; the reset step adds nothing


def flag(conn: psycopg.Connection, unit_id: str, meter: str, ts: datetime, event: str) -> None:
    """Mark one stored reading as the edge does when the total fell (edge_agent/counters.py)."""
    conn.execute("UPDATE meter_readings SET event = %s WHERE unit_id = %s AND meter = %s AND ts = %s",
                 (event, unit_id, meter, ts))


def test_flagged_rollover_counts_as_the_fall_did(conn: psycopg.Connection) -> None:
    """Correctly flagged data: the edge's flag on the reading that fell gives what the fall alone gave."""
    values = [99990.0 + h for h in range(12)] + [0.5 + h for h in range(12)]  # rollover at 12:00
    for unit_id in ("U1", "U2"):
        add_unit(conn, unit_id)
        add_readings(conn, unit_id, "electricity", [(at(D1, h), v) for h, v in enumerate(values)])
    flag(conn, "U2", "electricity", at(D1, 12), "rollover")
    refresh_daily_features(conn, tz=ESTATE_TZ)
    assert meter_daily(conn, "U2", "electricity") == meter_daily(conn, "U1", "electricity")
    assert meter_daily(conn, "U2", "electricity")[D1] == (pytest.approx(22.0), 22, 24, 1)


def test_flagged_replacement_that_starts_higher_is_honoured(conn: psycopg.Connection) -> None:
    """A new meter whose first total is above the old one's last: only the edge's flag tells it from use.
    Without the flag the step would count as 389 kWh used in one hour; with it, it is a reset."""
    add_unit(conn, "U1")
    values = [100.0 + h for h in range(12)] + [500.0 + h for h in range(12)]  # new meter at 12:00
    add_readings(conn, "U1", "electricity", [(at(D1, h), v) for h, v in enumerate(values)])
    refresh_daily_features(conn, tz=ESTATE_TZ)
    assert meter_daily(conn, "U1", "electricity")[D1] == (pytest.approx(11.0 + 389.0 + 11.0), 23, 24, 0)
    flag(conn, "U1", "electricity", at(D1, 12), "replaced")
    refresh_daily_features(conn, tz=ESTATE_TZ)
    assert meter_daily(conn, "U1", "electricity")[D1] == (pytest.approx(22.0), 22, 24, 1)
    floor = conn.execute("SELECT floor_rate FROM meter_daily WHERE unit_id = 'U1' AND day = %s",
                         (D1,)).fetchone()
    assert floor is not None and floor[0] == pytest.approx(1.0)  # the 389 kWh step is no hour's rate


def test_gap_longer_than_three_hours_is_not_attributed(conn: psycopg.Connection) -> None:
    add_unit(conn, "U1")
    rows = [(at(D1, h), float(h)) for h in range(13)] + [(at(D1, h), float(h)) for h in range(17, 24)]
    add_readings(conn, "U1", "electricity", rows)
    refresh_daily_features(conn, tz=ESTATE_TZ)
    consumption, hours, *_ = meter_daily(conn, "U1", "electricity")[D1]
    assert hours == 18 and consumption == pytest.approx(12.0 + 6.0)  # 00-12 and 17-23, 12:00-17:00 lost


def test_unit_daily_joins_meters_and_gate_events(conn: psycopg.Connection) -> None:
    add_unit(conn, "U1", building="1")
    add_unit(conn, "U2", building="1")
    add_unit(conn, "U3", building="2")
    for unit in ("U1", "U2", "U3"):
        add_readings(conn, unit, "electricity", hourly(D1, start=0.0, per_hour=0.25))
        add_readings(conn, unit, "water", hourly(D1, start=0.0, per_hour=0.01))
    add_event(conn, at(D1, 7), "E01-G1:1", unit_id="U1", method="card")
    add_event(conn, at(D1, 19), "E01-G1:2", unit_id="U1", method="password")
    add_event(conn, at(D1, 20), "E01-G1:3", stranger="s-1")
    add_event(conn, at(D1, 21), "E01-G1:4", stranger="s-1")
    add_event(conn, at(D1, 22), "E01-G1:5", stranger="s-2")
    add_event(conn, at(D1, 23, 30), "E01-G1:6", unit_id="U2")
    # 00:30 local on D2 is 16:30 UTC on D1: must count for D2.
    add_event(conn, at(D2, 0, 30), "E01-G1:7", unit_id="U1")
    refresh_daily_features(conn, tz=ESTATE_TZ, since=D1, until=D2)
    rows = {
        (r[0], r[1]): r[2:]
        for r in conn.execute(
            "SELECT unit_id, day, elec_kwh, water_m3, gas_m3, elec_hours, gas_hours, tenant_entries,"
            " strangers_building, gate_events_building FROM unit_daily"
        ).fetchall()
    }
    # 23 hours of use: no reading closes 23:00-24:00 (D2 has none).
    assert rows[("U1", D1)] == (pytest.approx(5.75), pytest.approx(0.23), None, 23, 0, 2, 2, 6)
    assert rows[("U2", D1)][5:] == (1, 2, 6)
    assert rows[("U3", D1)][5:] == (0, 0, 0)  # building 2's gate was silent: distinguishable from absence
    assert rows[("U1", D2)][0] is None and rows[("U1", D2)][5:] == (1, 0, 1)


def test_incremental_refresh_matches_full_refresh(conn: psycopg.Connection) -> None:
    add_unit(conn, "U1")
    for i in range(3):
        d = D1 + timedelta(days=i)
        add_readings(conn, "U1", "electricity", hourly(d, start=100.0 + 30 * i, per_hour=1.0))
    refresh_daily_features(conn, tz=ESTATE_TZ)
    full = conn.execute("SELECT * FROM unit_daily ORDER BY day").fetchall()
    assert refresh_daily_features(conn, tz=ESTATE_TZ, since=D3) == 1
    assert conn.execute("SELECT * FROM unit_daily ORDER BY day").fetchall() == full
    days = meter_daily(conn, "U1", "electricity")
    assert days[D3][0] == pytest.approx(23.0)  # D3's 00:00 step (7) is D2's 23:00 to midnight
    assert days[D2][0] == pytest.approx(23.0 + 7.0) and days[D1][0] == pytest.approx(23.0 + 7.0)


def test_empty_database_refreshes_nothing(conn: psycopg.Connection) -> None:
    assert refresh_daily_features(conn, tz=ESTATE_TZ) == 0


def _cumulative(d: date, per_hour: list[float], *, start: float = 100.0) -> list[tuple[datetime, float]]:
    """Register values at each local hour of ``d`` (and 00:00 of the next day) from hourly use."""
    out, value = [(at(d, 0), start)], start
    for h, use in enumerate(per_hour):
        value = round(value + use, 3)
        out.append((at(d, h + 1) if h < 23 else at(d + timedelta(days=1), 0), value))
    return out


def test_activity_signatures_tell_an_empty_flat_from_a_lived_in_one(conn: psycopg.Connection) -> None:
    """An empty flat's fridge and water heater use 2 kWh a day with nothing above the floor that looks like
    people; a leaking cistern flows at a constant rate with no water event; a household flushes, washes
    and cooks in many hours of the day."""
    add_unit(conn, "EMPTY")
    add_unit(conn, "HOME")
    add_unit(conn, "OUT_1")
    heater = [0.05] * 24
    for h in (3, 11, 19):
        heater[h] += 0.35  # standby reheats of a water heater left on
    add_readings(conn, "EMPTY", "electricity", _cumulative(D1, heater))
    add_readings(conn, "EMPTY", "water", _cumulative(D1, [0.004] * 24))  # a leak: 4 L an hour, day and night
    lived = [0.1] * 7 + [0.6, 0.4, 0.1, 0.1, 0.5, 0.7, 0.2, 0.1, 0.1, 0.2, 0.5, 1.2, 1.5, 1.3, 0.9, 0.4, 0.2]
    water = [0.0] * 6 + [0.02, 0.05, 0.01, 0, 0.006, 0.01, 0.02, 0, 0, 0, 0.008, 0.015, 0.03, 0.06, 0.04,
                         0.01, 0, 0]
    add_readings(conn, "HOME", "electricity", _cumulative(D1, lived))
    add_readings(conn, "HOME", "water", _cumulative(D1, water))
    gas = [0.0] * 7 + [0.05] + [0.0] * 10 + [0.1, 0.05] + [0.0] * 4  # breakfast and dinner
    add_readings(conn, "HOME", "gas", _cumulative(D1, gas))
    conn.commit()
    refresh_daily_features(conn, tz=ESTATE_TZ, since=D1, until=D1)
    conn.commit()
    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT unit_id, elec_kwh, elec_active_kwh, elec_active_hours, water_m3, water_active_hours,"
        " gas_active_hours FROM unit_daily WHERE day = %s", (D1,))}
    e_kwh, e_active, e_hours, w_m3, w_hours, g_hours = rows["EMPTY"]
    assert 2.2 < e_kwh < 2.3 and e_active == pytest.approx(1.05, abs=0.01) and e_hours == 3
    # All 24 hours on D1: the reading at D2's midnight closes D1's last hour.
    assert w_m3 == pytest.approx(0.096, abs=0.002) and w_hours == 0 and g_hours is None
    e_kwh, e_active, e_hours, w_m3, w_hours, g_hours = rows["HOME"]
    assert e_active > 7 and e_hours >= 10
    assert w_hours == 12 and g_hours == 3
    assert rows["OUT_1"] == (None, None, None, None, None, None)  # no readings: unknown, never zero


def test_a_late_evening_counts_for_its_own_day(conn: psycopg.Connection) -> None:
    """A household showers and leaves at 23:00: the water that hour used is that day's, so the first whole
    day away shows no sign of life (the meter read at midnight must not carry it into the next day)."""
    add_unit(conn, "U1")
    d1 = [0.0] * 7 + [0.03] + [0.0] * 14 + [0.01, 0.06]  # breakfast, then a late shower before leaving
    add_readings(conn, "U1", "water", _cumulative(D1, d1, start=10.0))
    add_readings(conn, "U1", "water", _cumulative(D2, [0.0] * 24, start=10.1)[1:])
    add_readings(conn, "U1", "electricity", _cumulative(D1, [0.5] * 23 + [1.2], start=100.0))
    add_readings(conn, "U1", "electricity", _cumulative(D2, [0.04] * 24, start=112.7)[1:])
    refresh_daily_features(conn, tz=ESTATE_TZ, since=D1, until=D2)
    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT day, water_m3, water_active_hours, elec_active_kwh FROM unit_daily WHERE unit_id = 'U1'")}
    assert rows[D1][0] == pytest.approx(0.1) and rows[D1][1] == 3
    assert rows[D2][0] == pytest.approx(0.0) and rows[D2][1] == 0
    assert rows[D2][2] == pytest.approx(0.0, abs=1e-6)  # the fridge's floor only


# Readings every UTC hour from 2026-03-01 00:00Z to 03-03 00:00Z, and one entry at 03-01 20:00Z, rolled up
# in three zones: per local day, the readings and the hours covered (each hour's use counts on the day of
# its middle, so the reading at a local midnight is the day before's; the first reading, 00:00Z, starts the
# series and counts on its own day); and the day the entry counts for.
ZONE_DAYS = {
    # UTC+8: local days start at 16:00Z
    "Asia/Shanghai": ({D1: 17, D2: 24, D3: 8}, {D1: 16, D2: 24, D3: 8}, D2),
    # UTC+6: at 18:00Z
    "Asia/Urumqi": ({D1: 19, D2: 24, D3: 6}, {D1: 18, D2: 24, D3: 6}, D2),
    # UTC+1 in March (summer time starts 03-29): at 23:00Z
    "Europe/Berlin": ({D1: 24, D2: 24, D3: 1}, {D1: 23, D2: 24, D3: 1}, D1),
}


@pytest.mark.parametrize("tz", sorted(ZONE_DAYS))
def test_the_estate_zone_sets_the_day_boundaries(conn: psycopg.Connection, tz: str) -> None:
    """The same UTC readings and entry fall on the days of the zone the rollup is given (the hub's
    estate_tz), for the days asked for alone too: their bounds are that zone's midnights."""
    add_unit(conn, "U1")
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    add_readings(conn, "U1", "electricity", [(t0 + timedelta(hours=h), 100.0 + h) for h in range(49)])
    add_event(conn, datetime(2026, 3, 1, 20, tzinfo=UTC), "E01-G1:1", unit_id="U1", method="card")
    readings, hours, entry_day = ZONE_DAYS[tz]
    assert refresh_daily_features(conn, tz=tz, since=D2, until=D2) == 1
    assert {d: r[2] for d, r in meter_daily(conn, "U1", "electricity").items()} == {D2: 24}
    refresh_daily_features(conn, tz=tz)
    days = meter_daily(conn, "U1", "electricity")
    assert {d: r[2] for d, r in days.items()} == readings
    assert {d: r[1] for d, r in days.items()} == hours
    assert days[D2][0] == pytest.approx(24.0)  # the 24 hourly steps whose hour lies in the day
    entries = conn.execute("SELECT day FROM unit_daily WHERE unit_id = 'U1' AND tenant_entries > 0")
    assert entries.fetchall() == [(entry_day,)]
