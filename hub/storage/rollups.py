"""Daily rollups in SQL: ``meter_daily`` from cumulative readings, ``unit_daily`` from meters and gates.

A day is a civil day of the estates' time zone, ``tz`` (the hub's ``estate_tz`` setting, handed down by
the caller): the importer's stale days (``hub/bulk``) and detection must be given the same zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from anju_wire import TimeBounds

MAX_GAP = timedelta(hours=3)  # a longer gap is lost resolution: its consumption is not attributed to a day
MIN_HOURS = 12  # fewer distinct hours with an OK reading: the day's consumption is unknown (NULL)

# Consumption of a day = sum of the increases between consecutive OK readings at most MAX_GAP apart,
# each attributed to the local day and hour of its interval's middle: a register read at 00:00 holds what
# was used from 23:00 to midnight, the day before's last hour (attributed to the later reading's day, a
# household's late evening counted as the next day's first sign of life, so the first whole day away
# from a flat never looked idle). A reading that starts a series (the first, one after a gap or a reset)
# spans no interval and counts on its own day. A reset (register rollover or a replaced meter) is
# counted in `resets` and contributes nothing, because the amount used across it is not known and must
# never show up as a huge (or negative) consumption. A reset is what the edge flagged (`event`, set by
# edge_agent/counters.py: 'rollover' or 'replaced'), so a new meter that starts above the old one's last
# total starts a new series too; a fall the edge did not flag (history loaded from CSV carries no flag)
# is a reset all the same, as a guard. `night_min_rate` is the
# smallest hourly rate over local 01:00-05:00 (intervals whose middle falls in those hours): a household's
# water stops at night, a leaking cistern does not.
#
# Activity signatures (issue 12): `floor_rate` is the day's smallest hourly rate (a fridge, a router and
# standby; a leak), `active_amount` what the day used above it, and `active_hours` the local hours in
# which the register rose by at least one appliance event (ACTIVE_STEP) above the floor. An empty flat
# whose fridge and water heater stay on uses 0.5 to 2.5 kWh a day but has no water event and next to no
# electricity above its floor; any lived-in flat flushes, washes and cooks.
ACTIVE_STEP = {
    "electricity": 0.1,  # kWh in an hour above the floor: lights and a TV, a kettle, a rice cooker
    "water": 0.003,      # m3 in an hour above the floor: one toilet flush (3-9 L) or a wash
    "gas": 0.01,         # m3 in an hour: a burner or a gas water heater lit for a few minutes
}
# ... and at least this share of the floor itself: a leak of 15 L an hour wanders by a few litres from
# hour to hour (pressure, the register's 1 L steps) without anybody opening a tap.
ACTIVE_STEP_SHARE = 0.5
_METER_DAILY = """
WITH r AS (
    SELECT unit_id, meter, ts, value, event IS NOT NULL AS flagged,
           lag(ts) OVER w AS prev_ts,
           lag(value) OVER w AS prev_value
    FROM meter_readings
    WHERE quality = 'ok' AND value IS NOT NULL
      AND ts >= %(lo)s::timestamptz - %(max_gap)s::interval
      AND ts < %(hi)s::timestamptz + %(max_gap)s::interval
    WINDOW w AS (PARTITION BY unit_id, meter ORDER BY ts)
), s AS (
    SELECT r.*, (prev_ts IS NOT NULL AND (flagged OR value < prev_value)) AS reset
    FROM r
), o AS (
    SELECT s.*, (prev_ts IS NOT NULL AND ts - prev_ts <= %(max_gap)s::interval AND NOT reset) AS ok
    FROM s
), m AS (
    SELECT o.*, CASE WHEN ok AND ts > prev_ts THEN ts - (ts - prev_ts) / 2 ELSE ts END AS at
    FROM o
), i AS (
    SELECT unit_id, meter, ts, value, prev_ts, prev_value, reset, ok,
           (at AT TIME ZONE %(tz)s)::date AS day,
           date_trunc('hour', at AT TIME ZONE %(tz)s) AS hour,
           extract(hour FROM at AT TIME ZONE %(tz)s) AS hour_of_day,
           CASE WHEN ok AND ts > prev_ts THEN extract(epoch FROM ts - prev_ts) / 3600.0 END AS dt_h
    FROM m
    WHERE at >= %(lo)s AND at < %(hi)s
), f AS (
    SELECT i.*, (value - prev_value) / dt_h AS rate,
           min((value - prev_value) / dt_h) OVER (PARTITION BY unit_id, meter, day) AS floor_rate
    FROM i
), d AS (
    SELECT unit_id, meter, day,
           sum(CASE WHEN ok THEN value - prev_value ELSE 0 END) AS consumption,
           count(DISTINCT hour) AS hours_covered,
           count(*) AS readings,
           count(*) FILTER (WHERE reset) AS resets,
           min(rate) FILTER (WHERE hour_of_day BETWEEN 1 AND 4) AS night_min_rate,
           min(floor_rate) AS floor_rate,
           sum(greatest(value - prev_value - floor_rate * dt_h, 0)) FILTER (WHERE dt_h IS NOT NULL)
               AS active_amount,
           count(DISTINCT hour) FILTER (
               WHERE dt_h IS NOT NULL AND value - prev_value - floor_rate * dt_h >= greatest(CASE meter
                   WHEN 'electricity' THEN %(step_elec)s WHEN 'water' THEN %(step_water)s
                   ELSE %(step_gas)s END, %(step_share)s * floor_rate * dt_h)) AS active_hours
    FROM f
    GROUP BY 1, 2, 3
)
INSERT INTO meter_daily (unit_id, meter, day, consumption, hours_covered, readings, resets, night_min_rate,
                         floor_rate, active_amount, active_hours)
SELECT unit_id, meter, day,
       CASE WHEN hours_covered >= %(min_hours)s THEN consumption END,
       hours_covered, readings, resets,
       CASE WHEN hours_covered >= %(min_hours)s THEN night_min_rate END,
       CASE WHEN hours_covered >= %(min_hours)s THEN floor_rate END,
       CASE WHEN hours_covered >= %(min_hours)s THEN coalesce(active_amount, 0) END,
       CASE WHEN hours_covered >= %(min_hours)s THEN active_hours END
FROM d
ON CONFLICT (unit_id, meter, day) DO UPDATE SET
    consumption = EXCLUDED.consumption,
    hours_covered = EXCLUDED.hours_covered,
    readings = EXCLUDED.readings,
    resets = EXCLUDED.resets,
    night_min_rate = EXCLUDED.night_min_rate,
    floor_rate = EXCLUDED.floor_rate,
    active_amount = EXCLUDED.active_amount,
    active_hours = EXCLUDED.active_hours
"""

# Days of a unit with no meter_daily row at all are kept with NULL consumption (unknown), so that the
# detectors see the gap as a gap.
_UNIT_DAILY = """
WITH days AS (
    SELECT generate_series(%(since)s::date, %(until)s::date, interval '1 day')::date AS day
), u AS (
    SELECT unit_id, estate_id, building FROM units
    UNION ALL
    SELECT DISTINCT m.unit_id, NULL::text, NULL::text
    FROM meter_daily m
    WHERE m.day BETWEEN %(since)s AND %(until)s
      AND NOT EXISTS (SELECT 1 FROM units x WHERE x.unit_id = m.unit_id)
), md AS (
    SELECT unit_id, day,
           max(consumption) FILTER (WHERE meter = 'electricity') AS elec_kwh,
           max(consumption) FILTER (WHERE meter = 'water') AS water_m3,
           max(consumption) FILTER (WHERE meter = 'gas') AS gas_m3,
           max(hours_covered) FILTER (WHERE meter = 'electricity') AS elec_hours,
           max(hours_covered) FILTER (WHERE meter = 'water') AS water_hours,
           max(hours_covered) FILTER (WHERE meter = 'gas') AS gas_hours,
           max(night_min_rate) FILTER (WHERE meter = 'electricity') AS elec_night,
           max(night_min_rate) FILTER (WHERE meter = 'water') AS water_night,
           max(active_amount) FILTER (WHERE meter = 'electricity') AS elec_active,
           max(active_hours) FILTER (WHERE meter = 'electricity') AS elec_active_hours,
           max(active_amount) FILTER (WHERE meter = 'water') AS water_active,
           max(active_hours) FILTER (WHERE meter = 'water') AS water_active_hours,
           max(active_hours) FILTER (WHERE meter = 'gas') AS gas_active_hours
    FROM meter_daily
    WHERE day BETWEEN %(since)s AND %(until)s
    GROUP BY 1, 2
), ev AS (
    SELECT estate_id, building, unit_id, stranger_track, method, (ts AT TIME ZONE %(tz)s)::date AS day
    FROM access_events
    WHERE ts >= %(lo)s AND ts < %(hi)s
), ev_unit AS (
    SELECT unit_id, day, count(*) AS entries, count(*) FILTER (WHERE method = 'face') AS face_entries
    FROM ev WHERE unit_id IS NOT NULL GROUP BY 1, 2
), ev_building AS (
    SELECT estate_id, building, day, count(*) AS events, count(DISTINCT stranger_track) AS strangers
    FROM ev GROUP BY 1, 2, 3
)
INSERT INTO unit_daily (unit_id, day, elec_kwh, water_m3, gas_m3, elec_hours, water_hours, gas_hours,
                        tenant_entries, strangers_building, gate_events_building, elec_night_kwh_h,
                        water_night_m3_h, elec_active_kwh, elec_active_hours, water_active_m3,
                        water_active_hours, gas_active_hours, tenant_face_entries)
SELECT u.unit_id, days.day, md.elec_kwh, md.water_m3, md.gas_m3,
       coalesce(md.elec_hours, 0), coalesce(md.water_hours, 0), coalesce(md.gas_hours, 0),
       coalesce(eu.entries, 0), coalesce(eb.strangers, 0), coalesce(eb.events, 0), md.elec_night,
       md.water_night, md.elec_active, md.elec_active_hours, md.water_active, md.water_active_hours,
       md.gas_active_hours, coalesce(eu.face_entries, 0)
FROM u
CROSS JOIN days
LEFT JOIN md ON md.unit_id = u.unit_id AND md.day = days.day
LEFT JOIN ev_unit eu ON eu.unit_id = u.unit_id AND eu.day = days.day
LEFT JOIN ev_building eb ON eb.estate_id = u.estate_id AND eb.building = u.building AND eb.day = days.day
ON CONFLICT (unit_id, day) DO UPDATE SET
    elec_kwh = EXCLUDED.elec_kwh, water_m3 = EXCLUDED.water_m3, gas_m3 = EXCLUDED.gas_m3,
    elec_hours = EXCLUDED.elec_hours, water_hours = EXCLUDED.water_hours, gas_hours = EXCLUDED.gas_hours,
    tenant_entries = EXCLUDED.tenant_entries, strangers_building = EXCLUDED.strangers_building,
    gate_events_building = EXCLUDED.gate_events_building,
    elec_night_kwh_h = EXCLUDED.elec_night_kwh_h, water_night_m3_h = EXCLUDED.water_night_m3_h,
    elec_active_kwh = EXCLUDED.elec_active_kwh, elec_active_hours = EXCLUDED.elec_active_hours,
    water_active_m3 = EXCLUDED.water_active_m3, water_active_hours = EXCLUDED.water_active_hours,
    gas_active_hours = EXCLUDED.gas_active_hours, tenant_face_entries = EXCLUDED.tenant_face_entries
"""

# The data's range within the accepted time window: a stray row dated 1901 or 2999 (stored before ingest
# had time bounds, or by a tool that has none) must not stretch the rollup over centuries.
_DATA_DAYS = """
SELECT min(lo), max(hi) FROM (
    SELECT (min(ts) AT TIME ZONE %(tz)s)::date AS lo, (max(ts) AT TIME ZONE %(tz)s)::date AS hi
    FROM meter_readings WHERE ts BETWEEN %(earliest)s AND %(latest)s
    UNION ALL
    SELECT (min(ts) AT TIME ZONE %(tz)s)::date, (max(ts) AT TIME ZONE %(tz)s)::date FROM access_events
    WHERE ts BETWEEN %(earliest)s AND %(latest)s
) b
"""


def _local_day(ts: datetime, *, tz: str) -> date:
    """The day of ``ts`` in the zone ``tz``, kept inside what ``date`` can hold at the extremes."""
    try:
        return ts.astimezone(ZoneInfo(tz)).date()
    except OverflowError:
        return ts.date()


def local_midnight(day: date, *, tz: str) -> datetime:
    """The start of ``day`` in the zone ``tz`` as an aware datetime."""
    return datetime.combine(day, time(), ZoneInfo(tz))


def refresh_daily_features(
    conn: psycopg.Connection,
    *,
    tz: str,
    since: date | None = None,
    until: date | None = None,
    bounds: TimeBounds | None = None,
    now: datetime | None = None,
) -> int:
    """Recompute ``meter_daily`` and ``unit_daily`` for the days ``since..until`` of the zone ``tz``;
    return unit-days written.

    ``None`` bounds mean the first and last day with any reading or access event inside the time window
    (``bounds`` around ``now``: the retention horizon to the clock skew, as ingest accepts them), and any
    day asked for is clamped to that window, so no stray timestamp can drag the refresh outside the
    data's real range. Upserts, so running it again over the same days (or overlapping ones, as the hub
    does incrementally) gives the same rows.
    """
    earliest, latest = (bounds or TimeBounds()).window(now or datetime.now(UTC))
    window = {"tz": tz, "earliest": earliest, "latest": latest}
    row = conn.execute(_DATA_DAYS, window).fetchone()
    first, last = (row[0], row[1]) if row else (None, None)
    floor, ceiling = _local_day(earliest, tz=tz), _local_day(latest, tz=tz)
    since = max(since, floor) if since is not None else first
    until = min(until, ceiling) if until is not None else last
    if since is None or until is None or since > until:
        return 0
    params = {
        "since": since,
        "until": until,
        "lo": local_midnight(since, tz=tz),
        "hi": local_midnight(until + timedelta(days=1), tz=tz),
        "tz": tz,
        "max_gap": MAX_GAP,
        "min_hours": MIN_HOURS,
        "step_elec": ACTIVE_STEP["electricity"],
        "step_water": ACTIVE_STEP["water"],
        "step_gas": ACTIVE_STEP["gas"],
        "step_share": ACTIVE_STEP_SHARE,
    }
    with conn.transaction():
        conn.execute(_METER_DAILY, params)
        cur = conn.execute(_UNIT_DAILY, params)
        return cur.rowcount
