"""What detection reads: every unit's days from ``unit_daily``, its baseline and the strangers near it.

The load is most of a detection run at 100,000 units, so it is shaped by what the rules read:

- Every unit's window days (the rules and the anomaly score judge all units) come in one grouped scan of
  the window, with each unit's entry and face-entry day counts.
- A unit whose registered tenants entered more often in the window than either rule tolerates cannot be
  flagged, and neither rule reads its earlier days (both decide it from the window alone: no verdict or
  clear), so only units under that limit get their traced history, fetched by primary key. The exception
  is a household whose faces vanished while its card is used: it keeps its history (the lent-card path of
  the sublet rule), found by the partial index on face days (``71_detection_load.sql``), and so does one
  with faces enrolled whose faces the window does not show (``models/enrolment.py`` reads its record).
- Every unit's baseline medians and presence come as aggregates, for the anomaly score compares all units.

Arrays come per unit (binary transfer): a row per unit-day costs more in the client than the rules.

Detection loads a batch of whole estates at a time (``estate_batches``): everything the rules compare
across units is within an estate (peer medians, same-size crowding medians) or a building (strangers,
arrivals, claimed faces, the floor's sole candidate), so a batch judges its units exactly as a load of the
whole city would, and memory is bounded by the largest batch, not the city.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import psycopg

from anju.hub.storage.rollups import local_midnight
from anju.models.anomaly import Baseline
from anju.models.features import Crowding, DailyFeatures, StrangerTrack, UnitSeries, window_bounds
from anju.models.rules import Policy, RuleContext, rule_context
from anju.models.standing import Floor
from anju_wire.clock import ESTATE_TZ

# The columns of DailyFeatures, in its field order, as arrays ordered by day.
_ARRAYS = ", ".join(
    f"array_agg({c} ORDER BY day)" for c in (
        "day", "elec_kwh", "water_m3", "gas_m3", "tenant_entries", "strangers_building",
        "gate_events_building", "water_night_m3_h", "elec_active_kwh", "elec_active_hours",
        "water_active_m3", "water_active_hours", "gas_active_hours", "tenant_face_entries"))



def _each_unit(aggregates: str, days: str) -> str:
    """``aggregates`` over the days (``days``) of each unit of ``%(units)s`` that has any, each unit reached
    through the primary key (unit_id, day). Filtering a range of days by a list of units instead lets the
    planner read every unit's days in the range and keep the batch's: once per batch, the whole city."""
    return f"""
SELECT b.unit_id, x.* FROM unnest(%(units)s::text[]) AS b(unit_id)
CROSS JOIN LATERAL (
    SELECT {aggregates} FROM unit_daily d WHERE d.unit_id = b.unit_id AND {days} HAVING count(*) > 0
) x
"""


_WINDOW_AGGREGATES = f"""count(*) FILTER (WHERE tenant_entries > 0),
       count(*) FILTER (WHERE tenant_face_entries > 0), {_ARRAYS}"""
_WINDOW_DAYS = "day BETWEEN %(window_start)s AND %(hi)s"
# The whole city's window in one scan of the days; a batch's unit by unit.
_WINDOW = f"SELECT unit_id, {_WINDOW_AGGREGATES} FROM unit_daily WHERE {_WINDOW_DAYS} GROUP BY unit_id"
_WINDOW_OF = _each_unit(_WINDOW_AGGREGATES, _WINDOW_DAYS)

# Of the units given, those whose registered faces were seen in the traced history before the window: a
# probe of the partial index on face days (71_detection_load.sql) per unit.
_FACES_BEFORE = """
SELECT b.unit_id FROM unnest(%(units)s::text[]) AS b(unit_id)
WHERE EXISTS (SELECT 1 FROM unit_daily d WHERE d.unit_id = b.unit_id AND d.tenant_face_entries > 0
              AND d.day BETWEEN %(lo)s AND %(base_end)s)
"""

_HISTORY = _each_unit(_ARRAYS, "day BETWEEN %(lo)s AND %(base_end)s")

_BASELINE_AGGREGATES = """percentile_cont(0.5) WITHIN GROUP (ORDER BY elec_kwh),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY water_m3),
       count(elec_kwh), count(water_m3), count(*) FILTER (WHERE gate_events_building > 0),
       count(*) FILTER (WHERE tenant_entries > 0)"""
_BASELINE_DAYS = "day BETWEEN %(base_start)s AND %(base_end)s"
_BASELINE = f"SELECT unit_id, {_BASELINE_AGGREGATES} FROM unit_daily WHERE {_BASELINE_DAYS} GROUP BY unit_id"
_BASELINE_OF = _each_unit(_BASELINE_AGGREGATES, _BASELINE_DAYS)

# Stranger tracks seen at a building on several days of the traced history, with the day each first
# appeared, on how many days of the window and in all it was seen, and the floor whose corridor camera saw
# it most (NULL: only building entrances saw it). Those recurring in the window are the ones the rules
# weigh; all of them say how often new faces arrive in the building.
_STRANGERS = """
WITH s AS (
    SELECT estate_id, building, floor, stranger_track, (ts AT TIME ZONE %(tz)s)::date AS day
    FROM access_events
    WHERE stranger_track IS NOT NULL AND ts >= %(lo_ts)s AND ts < %(hi_ts)s {estates}
)
SELECT estate_id, building, stranger_track, min(day),
       count(DISTINCT day) FILTER (WHERE day >= %(window_start)s) AS window_days,
       mode() WITHIN GROUP (ORDER BY floor) FILTER (WHERE floor IS NOT NULL) AS floor,
       count(DISTINCT day), max(day)
FROM s
GROUP BY 1, 2, 3
HAVING count(DISTINCT day) >= %(min_days)s
"""

# Whether a floor's corridor camera recognised a registered resident (of any flat there) in the traced
# history: through the index on (estate_id, building, ts), stopping at the first such event.
_WATCHED = """
SELECT EXISTS (SELECT 1 FROM access_events
               WHERE estate_id = %(estate)s AND building = %(building)s AND floor = %(floor)s
                 AND unit_id IS NOT NULL AND ts >= %(lo_ts)s AND ts < %(hi_ts)s)
"""

_REGISTRY = ("SELECT unit_id, estate_id, building, floor, lease_start, household_size, faces_enrolled "
             "FROM units {estates}")

_ESTATE_SIZES = "SELECT estate_id, count(*) FROM units GROUP BY estate_id ORDER BY estate_id"

# Sorting a 100,000-unit window in memory rather than on disk; local to the load's transaction.
_WORK_MEM = "SELECT set_config('work_mem', '256MB', true)"

_NO_BASELINE = Baseline(None, None, 0, 0, 0, 0)


def max_window_entries(policy: Policy) -> int:
    """Days with registered-tenant entries in the window above which neither rule can flag a unit."""
    return max(policy.vacancy.max_entry_days, policy.sublet.max_entry_days)


def history_start(as_of: date, policy: Policy) -> date:
    """The first day loaded for a unit that may be flagged: its baseline, or the traced history."""
    return as_of - timedelta(days=max(policy.window_days + policy.baseline_days, policy.history_days) - 1)


def strangers_near(
    tracks: list[StrangerTrack], *, floor: int | None
) -> tuple[tuple[StrangerTrack, ...], str]:
    """The recurring strangers that bear on a unit, and whether they were placed on its floor.

    Where corridor cameras place strangers on floors, only those on the unit's own floor count: the
    subtenants of other units in the building say nothing about this one. Buildings with entrance gates
    only (no floor on any track) fall back to every recurring stranger of the building.
    """
    if floor is None or not any(t.floor is not None for t in tracks):
        return tuple(tracks), "building"
    return tuple(t for t in tracks if t.floor == floor), "floor"


def watched_floors(
    conn: psycopg.Connection, floors: set[Floor], *, lo: date, as_of: date, tz: str = ESTATE_TZ,
) -> set[Floor]:
    """Of ``floors`` (estate, building, floor), those whose corridor camera recognised a registered resident
    from ``lo`` to ``as_of``: there a household is seen on its floor whichever door it came in by. A camera
    that reports only unrecognised faces places strangers on the floor but says nothing of the tenants."""
    span = {"lo_ts": local_midnight(lo, tz=tz), "hi_ts": local_midnight(as_of + timedelta(days=1), tz=tz)}
    out = set()
    for where in sorted(floors, key=str):
        estate, building, floor = where
        if building is None or floor is None:
            continue
        where_ = {"estate": estate, "building": building, "floor": floor}
        row = conn.execute(_WATCHED, {**span, **where_}).fetchone()
        if row is not None and row[0]:
            out.add(where)
    return out


def _days(arrays: tuple[list[Any], ...]) -> tuple[DailyFeatures, ...]:
    make = DailyFeatures._make
    return tuple(map(make, zip(*arrays, strict=True)))


Tracks = dict[tuple[str, str], list[StrangerTrack]]


Batch = tuple[str, ...] | None  # whole estates judged together; None: every estate of the city at once


def estate_batches(conn: psycopg.Connection, *, max_units: int | None) -> list[tuple[Batch, int]]:
    """The registered estates in batches of whole estates of at most ``max_units`` units (an estate
    larger than that is a batch of its own), in estate order, each with its units; ``None``: the whole
    city as one load."""
    sizes = conn.execute(_ESTATE_SIZES).fetchall()
    if max_units is None:
        return [(None, sum(units for _, units in sizes))]
    batches: list[tuple[Batch, int]] = []
    batch: list[str] = []
    size = 0
    for estate, units in sizes:
        if batch and size + units > max_units:
            batches.append((tuple(batch), size))
            batch, size = [], 0
        batch.append(estate)
        size += units
    if batch:
        batches.append((tuple(batch), size))
    return batches


def _only(estates: Sequence[str] | None, fragment: str) -> str:
    """``fragment`` (a constant filter) for a batch of estates; nothing for the whole city."""
    return "" if estates is None else fragment


def _tracks(
    conn: psycopg.Connection, *, lo: date, as_of: date, window_start: date, policy: Policy,
    estates: Sequence[str] | None, tz: str,
) -> tuple[Tracks, Tracks]:
    """Per building: the stranger tracks recurring in the window, and all recurring in the history."""
    recurring: Tracks = defaultdict(list)
    ever: Tracks = defaultdict(list)
    query = _STRANGERS.format(estates=_only(estates, "AND estate_id = ANY(%(estates)s)"))
    for estate, building, track, first_seen, days, floor, seen, last in conn.execute(query, {
        "tz": tz, "lo_ts": local_midnight(lo, tz=tz),
        "hi_ts": local_midnight(as_of + timedelta(days=1), tz=tz),
        "window_start": window_start, "min_days": policy.sublet.stranger_min_days,
        "estates": list(estates or ()),
    }):
        t = StrangerTrack(track, first_seen=first_seen, days_in_window=days, floor=floor, days_seen=seen,
                          last_seen=last)
        ever[(estate, building)].append(t)
        if days >= policy.sublet.stranger_min_days:
            recurring[(estate, building)].append(t)
    return recurring, ever


def load_series(
    conn: psycopg.Connection, *, as_of: date, policy: Policy, estates: Sequence[str] | None = None,
    tz: str = ESTATE_TZ,
) -> tuple[list[UnitSeries], dict[str, Baseline], date]:
    """Every unit of ``estates`` (None: of the city) with data in the traced history, sorted by unit; their
    baselines; the first day loaded. ``tz``: the estates' zone, whose days the strangers are counted in."""
    lo = history_start(as_of, policy)
    window_start, _ = window_bounds(as_of, policy.window_days)
    base_end = window_start - timedelta(days=1)
    limit = max_window_entries(policy)
    conn.execute(_WORK_MEM)
    registry = {unit: rest for unit, *rest in conn.execute(
        _REGISTRY.format(estates=_only(estates, "WHERE estate_id = ANY(%(estates)s)")),
        {"estates": list(estates or ())})}
    units = list(registry)
    window: dict[str, tuple[list[Any], ...]] = {}
    busy: set[str] = set()
    faces_vanished: list[str] = []  # busy by entries, but with few face days: did faces go?
    with conn.cursor(binary=True) as cur:
        for unit_id, entry_days, face_days, *arrays in cur.execute(
                _WINDOW if estates is None else _WINDOW_OF,
                {"window_start": window_start, "hi": as_of, "units": units}):
            window[unit_id] = tuple(arrays)
            if entry_days > limit:
                busy.add(unit_id)
                if face_days <= limit:
                    faces_vanished.append(unit_id)
        if faces_vanished:
            for (unit_id,) in cur.execute(_FACES_BEFORE, {"units": faces_vanished, "lo": lo,
                                                          "base_end": base_end}):
                busy.discard(unit_id)
            # Faces enrolled but not seen: the record says whether they ever were (models/enrolment.py).
            busy.difference_update(u for u in faces_vanished if registry[u][5])
        history: dict[str, tuple[list[Any], ...]] = {}
        candidates = [u for u in registry if u not in busy]
        if candidates:
            params = {"units": candidates, "lo": lo, "base_end": base_end}
            for unit_id, *arrays in cur.execute(_HISTORY, params):
                history[unit_id] = tuple(arrays)
        baselines: dict[str, Baseline] = {}
        for unit_id, elec, water, elec_known, water_known, gate_days, presence_days in cur.execute(
                _BASELINE if estates is None else _BASELINE_OF,
                {"base_start": window_start - timedelta(days=policy.baseline_days), "base_end": base_end,
                 "units": units}):
            baselines[unit_id] = Baseline(elec, water, elec_known, water_known, gate_days, presence_days)
    tracks, ever = _tracks(conn, lo=lo, as_of=as_of, window_start=window_start, policy=policy,
                           estates=estates, tz=tz)
    series = []
    arrivals_at: dict[tuple[str, str | None, int | None], tuple[tuple[str, date], ...]] = {}
    for unit_id in sorted(window.keys() | history.keys()):
        if unit_id not in registry:
            continue  # days of a unit no longer registered: nobody to flag
        estate, building, floor, lease_start, size, enrolled = registry[unit_id]
        days = _days(history[unit_id]) if unit_id in history else ()
        if unit_id in window:
            days += _days(window[unit_id])
        near, scope = strangers_near(tracks.get((estate, building), []) if building is not None else [],
                                     floor=floor)
        place = (estate, building, None if scope == "building" else floor)
        if place not in arrivals_at:  # the same for every unit of a building (or floor): once
            around = ever.get((estate, building), []) if building is not None else []
            near_here = ((t.track, t.first_seen) for t in around if scope == "building" or t.floor == floor)
            arrivals_at[place] = tuple(sorted(near_here, key=lambda a: a[1]))
        arrivals = arrivals_at[place]
        series.append(UnitSeries(unit_id=unit_id, estate_id=estate, lease_start=lease_start, strangers=near,
                                 strangers_scope=scope, building=building, days=days, arrivals=arrivals,
                                 household_size=size, floor=floor, faces_enrolled=enrolled))
        baselines.setdefault(unit_id, _NO_BASELINE)
    return series, baselines, lo


def days_of(
    conn: psycopg.Connection, units: Sequence[str], *, lo: date, as_of: date
) -> dict[str, tuple[DailyFeatures, ...]]:
    """The days from ``lo`` to ``as_of`` of the ``units`` given (the flagged ones: their alerts' charts)."""
    out: dict[str, tuple[DailyFeatures, ...]] = {}
    if units:
        with conn.cursor(binary=True) as cur:
            span = {"units": list(units), "lo": lo, "base_end": as_of}  # the history query, to as_of
            for unit_id, *arrays in cur.execute(_HISTORY, span):
                out[unit_id] = _days(tuple(arrays))
    return out


def with_record(
    conn: psycopg.Connection, all_series: list[UnitSeries], contexts: dict[str, RuleContext],
    crowds: dict[str, Crowding], *, lo: date, as_of: date, policy: Policy,
) -> list[UnitSeries]:
    """``all_series`` with the whole record of each unit whose water now reaches a group's
    (``group_water_ratio`` times its peers') but was loaded with its window only (``load_series`` leaves
    the record of units with many entry days out): the group rule weighs its use against its own
    record (``SubletRule.grown``). Their contexts are made again from it (updated in place)."""
    ratio = policy.sublet.group_water_ratio
    short = [s.unit_id for s in all_series
             if (c := crowds.get(s.unit_id)) is not None and c.window_reaches(ratio)
             and not any(d.day < contexts[s.unit_id].start for d in s.days)]
    if not short:
        return all_series
    record = days_of(conn, short, lo=lo, as_of=as_of)
    out = []
    for s in all_series:
        if s.unit_id in record:
            s = replace(s, days=record[s.unit_id])
            contexts[s.unit_id] = rule_context(s, as_of=as_of, policy=policy)
        out.append(s)
    return out
