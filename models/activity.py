"""What a day of a unit shows about life in it, from its meters' activity signatures (pure, no I/O).

A total in kWh or m³ says little: an empty flat whose fridge, router and water heater stay on uses 0.5 to
2.5 kWh a day, a frugal pensioner about as much. What tells them apart is the shape of the day (see
``hub/storage/rollups.py``): any lived-in flat flushes, washes and cooks, so its water meter rises in several
hours of the day and its electricity rises well above the night-time floor; an empty flat's water meter
stands still (or creeps at a leak's constant rate) and its electricity stays on the floor.

Each known day is LIVED, a VISIT (a little activity: someone dropped by for an hour), IDLE or UNKNOWN
(no meter data: an outage is never an absence).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from itertools import pairwise
from statistics import median

from pydantic import BaseModel, ConfigDict, Field

from anju.models.features import DailyFeatures

CLEAN_START_DAYS = 7  # gate days without any entry that open an absence (else the last days of presence
# would be folded into the absence by the tolerance for visits, and the departure dated weeks early)


class DayState(StrEnum):
    """What one day of a unit shows."""

    LIVED = "lived"
    VISIT = "visit"
    IDLE = "idle"
    UNKNOWN = "unknown"


class ActivityPolicy(BaseModel):
    """Thresholds that turn a day's activity signatures into a ``DayState`` (documented in policy.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lived_water_hours: int = Field(ge=1)
    lived_gas_hours: int = Field(ge=1)
    lived_elec_kwh: float = Field(gt=0)
    idle_elec_kwh: float = Field(ge=0)
    idle_elec_kwh_without_water: float = Field(ge=0)
    visit_water_hours: int = Field(ge=0)
    visit_elec_kwh: float = Field(ge=0)
    min_visit_gap_days: int = Field(ge=1)


def day_state(d: DailyFeatures, a: ActivityPolicy) -> DayState:
    """Classify one day from its activity signatures."""
    water_h = d.water_active_hours
    elec = d.elec_active_kwh
    if water_h is None and elec is None:
        return DayState.UNKNOWN
    gas_h = d.gas_active_hours or 0
    if (water_h is not None and water_h >= a.lived_water_hours) or gas_h >= a.lived_gas_hours or (
            elec is not None and elec >= a.lived_elec_kwh):
        small = ((water_h or 0) <= a.visit_water_hours and (elec is None or elec < a.visit_elec_kwh)
                 and gas_h <= a.lived_gas_hours)
        # A drop-by shows as a little water and light on a day with an entry; a day with more is lived.
        if small:
            if d.tenant_entries > 0:
                return DayState.VISIT
            if _leak_wanders(d, a):
                return DayState.IDLE
        return DayState.LIVED
    if water_h is None:
        # Electricity alone: idle only when it barely leaves its floor (no water meter to confirm).
        assert elec is not None
        return DayState.IDLE if elec <= a.idle_elec_kwh_without_water else DayState.VISIT
    if water_h > 0 and _leak_wanders(d, a):
        return DayState.IDLE
    if water_h > 0 or (elec is not None and elec > a.idle_elec_kwh and d.tenant_entries > 0):
        return DayState.VISIT
    # No water event, no flame and nobody at the gate: electricity a little above the floor is an
    # appliance's cycle (a water heater reheating what a leak or its own standby loss drew), not a person.
    return DayState.IDLE


def _leak_wanders(d: DailyFeatures, a: ActivityPolicy) -> bool:
    """Whether a day's few water hours are a leak's flow wandering rather than anybody's use.

    Water that flows even in the quietest night hour is a leak (a household's stops). Its hourly amounts
    wander around the flow (the register's 1-litre steps, the pressure) and the rollup's floor is the
    day's smallest of them, so a steady 8 L an hour can show two or three hours "above the floor" with
    nobody there. With no flame, nobody at the gate and no more electricity than appliances draw (the
    limit that makes a day without a water event idle), such a day is the empty flat's, not a life.
    """
    return (d.water_night_m3_h is not None and d.water_night_m3_h > 0
            and (d.water_active_hours or 0) <= a.visit_water_hours
            and not d.gas_active_hours and d.tenant_entries == 0
            and d.elec_active_kwh is not None and d.elec_active_kwh < a.lived_elec_kwh)


@dataclass(frozen=True, slots=True)
class Streak:
    """The run of idle days that ends the window: idle days counted, visits skipped, first idle day."""

    idle_days: int
    visits: int
    unknown_days: int
    since: date | None


def idle_run(days: Sequence[DailyFeatures], *, end: date, policy: ActivityPolicy) -> Streak:
    """Idle days in a row up to ``end``, walking back; unknown days and isolated visits are skipped.

    A visit (a drop-by: a little water and light) neither ends nor extends the run, but visits closer
    together than ``min_visit_gap_days`` are somebody living there on little, and end it. A lived day
    ends it: a return from travel, or someone moving in.
    """
    idle = visits = unknown = 0
    since: date | None = None
    last_visit: date | None = None
    for d in sorted((d for d in days if d.day <= end), key=lambda d: d.day, reverse=True):
        state = day_state(d, policy)
        if state is DayState.LIVED:
            break
        if state is DayState.UNKNOWN:
            unknown += 1
            continue
        if state is DayState.VISIT:
            if last_visit is not None and (last_visit - d.day).days < policy.min_visit_gap_days:
                break
            last_visit = d.day
            visits += 1
            continue
        idle += 1
        since = d.day
    return Streak(idle_days=idle, visits=visits, unknown_days=unknown, since=since)


def occupied_days(days: Sequence[DailyFeatures], policy: ActivityPolicy) -> tuple[DailyFeatures, ...]:
    """The days on which the flat was not standing empty (lived in, visited, or without meter data)."""
    return tuple(d for d in days if day_state(d, policy) is not DayState.IDLE)


@dataclass(frozen=True, slots=True)
class LifeCounts:
    """How many days of a span showed each state."""

    lived: int
    visit: int
    idle: int
    unknown: int

    @property
    def known(self) -> int:
        """Days with any meter data."""
        return self.lived + self.visit + self.idle

    @property
    def lived_share(self) -> float:
        """Share of known days that were lived in."""
        return self.lived / self.known if self.known else 0.0


def life_counts(
    days: Sequence[DailyFeatures], *, start: date, end: date, policy: ActivityPolicy
) -> LifeCounts:
    """Count the day states in ``[start, end]``; days absent from ``days`` are unknown.

    As in ``idle_run``, "visits" closer together than ``min_visit_gap_days`` are somebody living there on
    little (a lodger who comes home at night, showers at work and cooks nothing), not drop-bys: they count
    as lived. A drop-by's visits stand days apart, with the empty flat's idle days between them.
    """
    counts = dict.fromkeys(DayState, 0)
    seen = 0
    states = {d.day: day_state(d, policy) for d in days
              if start - timedelta(days=policy.min_visit_gap_days) <= d.day <= end}
    visits = sorted(day for day, s in states.items() if s is DayState.VISIT)
    gap = policy.min_visit_gap_days
    close = {day for a, b in pairwise(visits) if (b - a).days < gap for day in (a, b)}
    for day, state in states.items():
        if start <= day <= end:
            counts[DayState.LIVED if state is DayState.VISIT and day in close else state] += 1
            seen += 1
    missing = (end - start).days + 1 - seen
    return LifeCounts(lived=counts[DayState.LIVED], visit=counts[DayState.VISIT], idle=counts[DayState.IDLE],
                      unknown=counts[DayState.UNKNOWN] + max(missing, 0))


def presence_end(
    days: Sequence[DailyFeatures], *, end: date, lookback_days: int, min_share_before: float,
    max_share_after: float, min_days_after: int, faces_only: bool = False,
    empty: Sequence[DailyFeatures] = (),
) -> date | None:
    """The day from which registered tenants (almost) stopped entering, or None: of the days that qualify
    (``presence_ends``), the one where the share drops most."""
    ends = presence_ends(days, end=end, lookback_days=lookback_days, min_share_before=min_share_before,
                         max_share_after=max_share_after, min_days_after=min_days_after,
                         faces_only=faces_only, empty=empty)
    return max(ends, key=lambda e: e[0])[1] if ends else None  # the first of equal drops


def presence_ends(
    days: Sequence[DailyFeatures], *, end: date, lookback_days: int, min_share_before: float,
    max_share_after: float, min_days_after: int, faces_only: bool = False,
    empty: Sequence[DailyFeatures] = (),
) -> list[tuple[float, date]]:
    """The days from which registered tenants (almost) stopped entering, each with its drop in share.

    Each is the first day ``t`` of an absence (a day without entries, after a day with one) such that, on
    the days the building's gate was working, tenants entered on at least ``min_share_before`` of the
    last ``lookback_days`` such days before ``t`` (at least ``CLEAN_START_DAYS`` of them on record: a
    household that left in the first weeks of the data has only those) and on at most
    ``max_share_after`` from ``t`` to ``end`` (a tenant dropping by now and then still counts as gone),
    with at least ``min_days_after`` gate days since ``t`` (a household out yesterday has not left), the
    first ``CLEAN_START_DAYS`` of them without any entry. ``faces_only`` counts only recognised faces.
    ``empty``: days left out of ``days`` because the flat stood empty; those of the move itself (up to
    ``MOVE_GAP_DAYS`` after ``t``) count towards that first week where the gate worked, though not towards
    the shares (a changeover leaves the flat empty for a day or two between the household that left and
    the people who moved in). Later empty days do not: a trip's would make a week of nobody of a
    household's last days before it, and fold its return into the absence.
    """
    def entered(d: DailyFeatures) -> bool:
        return (d.tenant_face_entries if faces_only else d.tenant_entries) > 0

    gate = sorted((d for d in days if d.day <= end and d.gate_working), key=lambda d: d.day)
    if not gate:
        return []
    flags = [entered(d) for d in gate]
    quiet = sorted((d for d in empty if d.day <= end and d.gate_working), key=lambda d: d.day)
    out: list[tuple[float, date]] = []
    for i in range(1, len(gate)):
        if flags[i] or not flags[i - 1]:
            continue  # an absence starts on a gate day without entries that follows one with entries
        t = gate[i].day
        after = flags[i:]
        if len(after) < min_days_after:
            break
        moving = [d for d in quiet if t < d.day <= t + timedelta(days=MOVE_GAP_DAYS)]
        opening = sorted([*gate[i:i + CLEAN_START_DAYS], *moving], key=lambda d: d.day)[:CLEAN_START_DAYS]
        if any(entered(d) for d in opening):
            continue  # a departure starts with a week of nobody; a later visit may come back
        # The last gate days before it, however long ago: a household that left while the gate was down
        # (a fortnight's outage) is judged on the days the gate last saw it.
        before = flags[max(0, i - lookback_days):i]
        if len(before) < min(lookback_days, CLEAN_START_DAYS):
            continue
        share_before = sum(before) / len(before)
        share_after = sum(after) / len(after)
        if share_before >= min_share_before and share_after <= max_share_after:
            out.append((share_before - share_after, t))
    return out


MOVE_GAP_DAYS = 3  # days either side of a departure left out: the move itself (packing, an empty flat)
MOVE_SPAN_DAYS = 28  # the weeks before and after that are compared
MOVE_MIN_DAYS = 10  # days with water data each side needed to say anything


def moved_in(days: Sequence[DailyFeatures], *, left: date, policy: ActivityPolicy) -> date | None:
    """The day a flat came back to life after standing empty right after its household left (the
    changeover: an empty run that began within ``MOVE_GAP_DAYS`` of ``left``), or None where it did not
    stand empty then. The people who moved in came on that day, not on the day the household was last
    seen: a flat emptied on the 14th and taken by a group on the 21st shows the group's faces a week
    after its departure."""
    empty_since: date | None = None
    for d in sorted((d for d in days if d.day >= left), key=lambda d: d.day):
        state = day_state(d, policy)
        if state is DayState.UNKNOWN:
            continue
        if state is DayState.IDLE:
            if empty_since is None and (d.day - left).days > MOVE_GAP_DAYS:
                return None
            empty_since = empty_since or d.day
        elif empty_since is not None:
            return d.day
        elif (d.day - left).days >= MOVE_GAP_DAYS:
            return None
    return None


def water_levels(
    days: Sequence[DailyFeatures], *, left: date, policy: ActivityPolicy
) -> tuple[float, float] | None:
    """Median daily water over the four weeks before ``left`` and over the four weeks after (the days of
    the move itself left out, and the days the flat stood empty: a trip is no change of occupants), or
    None with too few such days.

    The people in a flat set its water: the same household keeps it within about a third from one month
    to the next, and new occupants bring a level of their own.
    """
    def level(lo: int, hi: int) -> list[float]:
        return [d.water_m3 for d in days if d.water_m3 is not None and lo <= (d.day - left).days < hi
                and day_state(d, policy) is not DayState.IDLE]

    before = level(-MOVE_SPAN_DAYS, -MOVE_GAP_DAYS)
    after = level(MOVE_GAP_DAYS, MOVE_SPAN_DAYS + MOVE_GAP_DAYS)
    if len(before) < MOVE_MIN_DAYS or len(after) < MOVE_MIN_DAYS:
        return None
    return median(before), median(after)


def water_shift(days: Sequence[DailyFeatures], *, left: date, policy: ActivityPolicy) -> float | None:
    """``water_levels`` after over before, or None without them or without water before."""
    return _ratio(water_levels(days, left=left, policy=policy))


def changed_water_levels(
    days: Sequence[DailyFeatures], *, left: date, policy: ActivityPolicy, ratio: float
) -> tuple[float, float] | None:
    """``water_levels`` where after and before differ by ``ratio`` or more either way (the occupants
    changed), else None: what the face attribution weighs and the alert then says."""
    levels = water_levels(days, left=left, policy=policy)
    return levels if levels_differ(levels, ratio) else None


def levels_differ(levels: tuple[float, float] | None, ratio: float) -> bool:
    """Whether after and before (``water_levels``) differ by ``ratio`` or more either way."""
    shift = _ratio(levels)
    return shift is not None and not 1 / ratio < shift < ratio


def _ratio(levels: tuple[float, float] | None) -> float | None:
    return None if levels is None or levels[0] <= 0 else levels[1] / levels[0]


LEVEL_MIN_DAYS = 14  # of a four-week span, days not standing empty needed for its level (half of them)


def people_water(d: DailyFeatures) -> float | None:
    """Water people used that day: above the day's floor (``water_active_m3``), so that a leak's or a
    dripping cistern's steady flow, which runs day and night with nobody there, is left out."""
    return d.water_active_m3


class _PeopleWater:
    """``people_water`` on the days of a span the flat did not stand empty, in day order, for the medians
    of its sub-spans (each day classified once)."""

    def __init__(self, days: Sequence[DailyFeatures], *, policy: ActivityPolicy, lo: date, hi: date) -> None:
        used = sorted((d.day, w) for d in days if lo <= d.day < hi and (w := people_water(d)) is not None
                      and day_state(d, policy) is not DayState.IDLE)
        self.on = [day for day, _ in used]
        self.water = [w for _, w in used]

    def level(self, lo: date, hi: date, *, min_days: int) -> float | None:
        """Median over the days in ``[lo, hi)``, or None with fewer than ``min_days`` of them."""
        i, j = bisect_left(self.on, lo), bisect_left(self.on, hi)
        return median(self.water[i:j]) if j - i >= min_days else None


def people_level(
    days: Sequence[DailyFeatures], *, start: date, end: date, policy: ActivityPolicy
) -> float | None:
    """Median ``people_water`` over the days from ``start`` to ``end`` the flat did not stand empty, or None
    with fewer than ``LEVEL_MIN_DAYS`` of them (a trip is no change of occupants)."""
    after = end + timedelta(days=1)
    return _PeopleWater(days, policy=policy, lo=start, hi=after).level(start, after, min_days=LEVEL_MIN_DAYS)


def lowest_level(
    days: Sequence[DailyFeatures], *, since: date | None, before: date, policy: ActivityPolicy
) -> tuple[float, date] | None:
    """The household's own use at its most frugal: the lowest ``people_level`` of any four weeks (stepping
    a week back from ``before``, the day after the last) on record from ``since`` (its lease), and the
    first day of those weeks; None without four such weeks.

    What a flat's registered people use is best read off their own record: a frugal couple uses half of
    what couples in its estate use, and a group that moves in multiplies that, not the estate's median.
    """
    first = min((d.day for d in days), default=None)
    if first is None:
        return None
    if since is not None:
        first = max(first, since)
    used = _PeopleWater(days, policy=policy, lo=first, hi=before)
    best: tuple[float, date] | None = None
    lo = before - timedelta(days=MOVE_SPAN_DAYS)
    while lo >= first:
        level = used.level(lo, lo + timedelta(days=MOVE_SPAN_DAYS), min_days=LEVEL_MIN_DAYS)
        if level is not None and (best is None or level < best[0]):
            best = (level, lo)
        lo -= timedelta(days=7)
    return best


def water_rise(
    days: Sequence[DailyFeatures], *, end: date, policy: ActivityPolicy, ratio: float
) -> tuple[date, float, float] | None:
    """The day on or before ``end`` from which the water people used (``people_water``: a leak left out)
    rose most, as ``water_levels`` compares it (the median over up to four weeks after, cut short by
    ``end``, against as many weeks before; the days of the move and those the flat stood empty left out),
    where it rose by ``ratio`` or more; with the levels before and after. None where it never did: people
    moved in then, whether or not anyone left."""
    used = _PeopleWater(days, policy=policy, lo=date.min, hi=end + timedelta(days=1))
    if not used.on:
        return None

    def level(lo: date, hi: date) -> float | None:
        return used.level(lo, hi, min_days=MOVE_MIN_DAYS)

    # The days of the largest rise (the days either side of a move are left out, so a clean step is as
    # large for a week): the middle one is the move.
    rises: list[tuple[date, float, float]] = []
    t = used.on[0] + timedelta(days=MOVE_SPAN_DAYS)
    while t <= end:
        # The weeks after, cut short by ``end``, against as many weeks before: a group's use grows as
        # its people come, and four weeks of the flat before it against the last days of the record
        # would date its arrival late.
        span = min(MOVE_SPAN_DAYS, (end - t).days + 1 - MOVE_GAP_DAYS)
        before = level(t - timedelta(days=MOVE_GAP_DAYS + span), t - timedelta(days=MOVE_GAP_DAYS))
        after = level(t + timedelta(days=MOVE_GAP_DAYS), t + timedelta(days=MOVE_GAP_DAYS + span))
        if before is not None and after is not None and before > 0 and after >= ratio * before:
            if rises and after / before > rises[0][2] / rises[0][1]:
                rises = []
            if not rises or after / before == rises[0][2] / rises[0][1]:
                rises.append((t, before, after))
        t += timedelta(days=1)
    if not rises:
        return None
    t, before, after = rises[len(rises) // 2]
    # The largest rise tells that people moved in, not quite when (the weeks compared straddle the move,
    # and a group's use grows as its people come): the day is the first, in the weeks before, whose water
    # and the week's from it are nearer the new level than the old.
    mid = (before + after) / 2
    for day, w in zip(used.on, used.water, strict=True):
        if t - timedelta(days=MOVE_SPAN_DAYS) <= day <= t + timedelta(days=MOVE_GAP_DAYS) and w >= mid:
            week = used.level(day, day + timedelta(days=7), min_days=4)
            if week is not None and week >= mid:
                return day, before, after
    return t, before, after
