"""Day states, idle runs, life counts and presence ends on hand-made days (models/activity.py)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from anju.models.activity import (
    ActivityPolicy,
    DayState,
    day_state,
    idle_run,
    life_counts,
    presence_end,
    water_rise,
)
from anju.models.features import DailyFeatures
from anju.models.rules import Policy
from tests.models.factories import AS_OF, day

EMPTY: dict[str, Any] = dict(elec=0.6, water=0.0, gas=0.0, entries=0, strangers=0)
VISIT: dict[str, Any] = dict(elec=1.5, water=0.06, gas=0.0, entries=1, strangers=0)  # 2 water hours
OUTAGE: dict[str, Any] = dict(elec=None, water=None, gas=None, entries=0)


@pytest.fixture(scope="module")
def act() -> ActivityPolicy:
    return Policy.load().activity


def run_of(*kinds: dict[str, Any], end: date = AS_OF) -> list[DailyFeatures]:
    """Consecutive days ending on ``end``, the last one built from the last keyword set."""
    first = end - timedelta(days=len(kinds) - 1)
    return [day(first + timedelta(days=i), **kw) for i, kw in enumerate(kinds)]


def state(act: ActivityPolicy, **kw: Any) -> DayState:
    return day_state(day(AS_OF, **kw), act)


# --- day_state ---------------------------------------------------------------------------------------


def test_outage_day_is_unknown_never_idle(act: ActivityPolicy) -> None:
    assert state(act, **OUTAGE) is DayState.UNKNOWN
    assert state(act, elec=None, water=None, gas=None, entries=2) is DayState.UNKNOWN  # entries say nothing


def test_household_day_is_lived(act: ActivityPolicy) -> None:
    assert state(act) is DayState.LIVED
    # A frugal pensioner: little kWh, but water in 2 hours of the day and no entry through the gate.
    assert state(act, elec=1.0, water=0.06, gas=0.0, entries=0) is DayState.LIVED
    # Cooking alone (one burner hour) is life.
    assert state(act, elec=0.6, water=0.0, gas=0.1, gas_hours=1, entries=0) is DayState.LIVED
    # Electricity well above its floor alone is life (lights, TV, washing machine).
    assert state(act, elec=4.0, elec_active=3.0, water=0.0, gas=0.0, entries=0) is DayState.LIVED


def test_empty_flat_with_fridge_and_water_heater_is_idle_whatever_its_total(act: ActivityPolicy) -> None:
    # 2.5 kWh a day in all (above any old absolute base-load limit) but only 1.5-2.0 above the floor.
    assert state(act, **{**EMPTY, "elec": 2.5}) is DayState.IDLE
    assert state(act, **{**EMPTY, "elec": 3.0, "elec_active": 2.0}) is DayState.IDLE  # the limit itself
    # More than that on a day without a water event or an entry: still an appliance (a water heater
    # reheating what a leak draws), not a person; with an entry it is a visit.
    assert state(act, **{**EMPTY, "elec": 3.5, "elec_active": 2.5}) is DayState.IDLE
    assert state(act, **{**EMPTY, "elec": 3.5, "elec_active": 2.5, "entries": 1}) is DayState.VISIT


def test_leak_without_water_events_is_idle_but_water_with_events_is_lived(act: ActivityPolicy) -> None:
    assert state(act, **{**EMPTY, "water": 0.1, "water_hours": 0}) is DayState.IDLE
    assert state(act, **{**EMPTY, "water": 0.1}) is DayState.LIVED  # 3 water hours


def test_a_leaks_wandering_flow_is_no_sign_of_life(act: ActivityPolicy) -> None:
    """Water that flows in the quietest night hour is a leak; a few hours a little above its floor, with no
    flame, nobody at the gate and only appliances' electricity, are its flow wandering (held-out household
    seed 41: an 8 L/h leak showed 3 such hours on one day and ended a vacant flat's idle run)."""
    leak = {**EMPTY, "water": 0.19}
    assert state(act, **leak, water_hours=3) is DayState.LIVED  # no night flow known: as before
    night = DailyFeatures._replace
    for hours in (1, 3, 4):
        d = night(day(AS_OF, **leak, water_hours=hours), water_night_m3_h=0.007)
        assert day_state(d, act) is DayState.IDLE, hours
    base = night(day(AS_OF, **leak, water_hours=3), water_night_m3_h=0.007)
    # Anything more is somebody: five water hours, a burner, an entry, electricity above the appliances'.
    assert day_state(base._replace(water_active_hours=5), act) is DayState.LIVED
    assert day_state(base._replace(gas_active_hours=1), act) is DayState.LIVED
    assert day_state(base._replace(tenant_entries=1), act) is DayState.VISIT
    assert day_state(base._replace(elec_active_kwh=3.5), act) is DayState.LIVED
    # Electricity unknown: nothing confirms that nobody is there.
    assert day_state(base._replace(elec_active_kwh=None, elec_kwh=None), act) is DayState.LIVED
    # A vacant flat's run goes on through such days.
    days = [night(d, water_night_m3_h=0.007) for d in run_of(*([{**leak, "water_hours": 0}] * 25))]
    days[10] = days[10]._replace(water_active_hours=3)
    days[12] = days[12]._replace(water_active_hours=1)
    assert idle_run(days, end=AS_OF, policy=act).idle_days == 25


def test_drop_by_is_a_visit_only_with_an_entry_and_little_activity(act: ActivityPolicy) -> None:
    assert state(act, **VISIT) is DayState.VISIT
    assert state(act, **{**VISIT, "water": 0.12}) is DayState.VISIT  # 4 water hours: still a drop-by
    assert state(act, **{**VISIT, "water": 0.15}) is DayState.LIVED  # 5 water hours: a day's life
    assert state(act, **{**VISIT, "elec": 4.5}) is DayState.LIVED  # 3.5 kWh above the floor
    assert state(act, **{**VISIT, "gas": 0.2, "gas_hours": 2}) is DayState.LIVED  # a cooked meal
    assert state(act, **{**VISIT, "entries": 0}) is DayState.LIVED  # no entry: whoever it was lives there
    # One water hour and nothing else is a visit with or without an entry.
    assert state(act, **{**EMPTY, "water": 0.03}) is DayState.VISIT


def test_electricity_only_day_is_idle_only_near_its_floor(act: ActivityPolicy) -> None:
    assert state(act, **{**EMPTY, "water": None, "elec": 1.8}) is DayState.IDLE  # 0.8 above the floor
    assert state(act, **{**EMPTY, "water": None, "elec": 1.9}) is DayState.VISIT
    assert state(act, **{**EMPTY, "water": None, "elec": 2.5}) is DayState.VISIT  # idle if water were known
    assert state(act, **{**EMPTY, "water": 0.0, "elec": 2.5}) is DayState.IDLE
    assert state(act, **{**EMPTY, "water": None, "elec": 4.0}) is DayState.LIVED


# --- idle_run --------------------------------------------------------------------------------------------


def test_idle_run_counts_idle_days_back_to_the_last_lived_day(act: ActivityPolicy) -> None:
    days = run_of(*[{}] * 5, *[EMPTY] * 30)
    run = idle_run(days, end=AS_OF, policy=act)
    assert (run.idle_days, run.visits, run.unknown_days) == (30, 0, 0)
    assert run.since == AS_OF - timedelta(days=29)


def test_idle_run_ignores_days_after_end_and_input_order(act: ActivityPolicy) -> None:
    days = run_of(*[{}] * 3, *[EMPTY] * 10, *[{}] * 4)
    run = idle_run(list(reversed(days)), end=AS_OF - timedelta(days=4), policy=act)
    assert run.idle_days == 10 and run.since == AS_OF - timedelta(days=13)
    assert idle_run(days, end=AS_OF, policy=act).idle_days == 0  # they came back


def test_idle_run_of_a_flat_empty_since_before_the_data_is_the_whole_series(act: ActivityPolicy) -> None:
    days = run_of(*[EMPTY] * 81)
    run = idle_run(days, end=AS_OF, policy=act)
    assert run.idle_days == 81 and run.since == days[0].day


def test_unknown_days_are_skipped_not_counted(act: ActivityPolicy) -> None:
    days = run_of({}, *[EMPTY] * 10, *[OUTAGE] * 7, *[EMPTY] * 5)
    run = idle_run(days, end=AS_OF, policy=act)
    assert (run.idle_days, run.unknown_days) == (15, 7)
    assert run.since == AS_OF - timedelta(days=21)


def test_drop_by_visits_every_week_or_more_do_not_reset_the_run(act: ActivityPolicy) -> None:
    days = run_of({}, *[EMPTY] * 10, VISIT, *[EMPTY] * 13, VISIT, *[EMPTY] * 6, VISIT, *[EMPTY] * 4)
    run = idle_run(days, end=AS_OF, policy=act)
    assert (run.idle_days, run.visits) == (33, 3)
    assert run.since == days[1].day


def test_visits_closer_than_the_gap_are_someone_living_on_little(act: ActivityPolicy) -> None:
    gap = act.min_visit_gap_days
    assert gap == 5
    # Visits exactly min_visit_gap_days apart are still drop-bys ...
    apart = run_of({}, *[EMPTY] * 3, VISIT, *[EMPTY] * (gap - 1), VISIT, *[EMPTY] * 2)
    run = idle_run(apart, end=AS_OF, policy=act)
    assert (run.idle_days, run.visits) == (3 + gap - 1 + 2, 2)
    # ... a day closer, the earlier one ends the run.
    closer = run_of({}, *[EMPTY] * 3, VISIT, *[EMPTY] * (gap - 2), VISIT, *[EMPTY] * 2)
    run = idle_run(closer, end=AS_OF, policy=act)
    assert (run.idle_days, run.visits) == (gap - 2 + 2, 1)


def test_elderly_tenant_with_one_water_hour_a_day_is_not_idle(act: ActivityPolicy) -> None:
    frugal = dict(elec=1.3, water=0.03, gas=0.0, entries=0)  # 1 water hour, 0.3 kWh above the floor
    days = run_of(*[frugal] * 60)
    assert day_state(days[-1], act) is DayState.VISIT
    run = idle_run(days, end=AS_OF, policy=act)
    assert run.idle_days == 0 and run.visits == 1


# --- life_counts -----------------------------------------------------------------------------------------


def test_life_counts_count_each_state_and_missing_days_as_unknown(act: ActivityPolicy) -> None:
    days = run_of(*[{}] * 10, *[EMPTY] * 4, VISIT, *[OUTAGE] * 2, *[{}] * 2)  # 19 of the 21 days present
    start = AS_OF - timedelta(days=20)
    counts = life_counts(days, start=start, end=AS_OF, policy=act)
    assert (counts.lived, counts.visit, counts.idle, counts.unknown) == (12, 1, 4, 4)
    assert counts.known == 17
    assert counts.lived_share == pytest.approx(12 / 17)


def test_life_counts_without_any_data_have_no_lived_share(act: ActivityPolicy) -> None:
    counts = life_counts([], start=AS_OF - timedelta(days=20), end=AS_OF, policy=act)
    assert counts.known == 0 and counts.unknown == 21 and counts.lived_share == 0.0


def test_visits_days_apart_stay_visits_but_visits_day_after_day_are_someone_living_on_little(
        act: ActivityPolicy) -> None:
    # A drop-by once a week in an empty flat: visits. The same light days (an entry, two water hours,
    # a little light) day after day: a lodger who showers at work and cooks nothing lives there.
    start = AS_OF - timedelta(days=20)
    weekly = run_of(*([VISIT] + [EMPTY] * 6) * 3)
    counts = life_counts(weekly, start=start, end=AS_OF, policy=act)
    assert (counts.lived, counts.visit, counts.idle) == (0, 3, 18)
    daily = run_of(*[VISIT] * 21)
    counts = life_counts(daily, start=start, end=AS_OF, policy=act)
    assert (counts.lived, counts.visit, counts.lived_share) == (21, 0, 1.0)
    # Every other day is living on little too; so is a visit whose partner lies the day before the window.
    alternate = run_of(*[VISIT, EMPTY] * 10, VISIT)
    counts = life_counts(alternate, start=start, end=AS_OF, policy=act)
    assert (counts.lived, counts.visit, counts.idle) == (11, 0, 10)
    edge = run_of(VISIT, VISIT, *[EMPTY] * 20)  # 22 days: the first is the day before the window
    counts = life_counts(edge, start=start, end=AS_OF, policy=act)
    assert (counts.lived, counts.visit, counts.idle) == (1, 0, 20)
    # Five days apart (min_visit_gap_days) is a drop-by's rhythm, not a life.
    five = run_of(*([VISIT] + [EMPTY] * 4) * 4, VISIT)
    counts = life_counts(five, start=start, end=AS_OF, policy=act)
    assert (counts.lived, counts.visit) == (0, 5)


# --- presence_end ----------------------------------------------------------------------------------------


def ended(days: list[DailyFeatures], *, faces_only: bool = False) -> date | None:
    return presence_end(days, end=AS_OF, lookback_days=21, min_share_before=0.2, max_share_after=0.15,
                        min_days_after=10, faces_only=faces_only)


LEFT = AS_OF - timedelta(days=29)  # first day without tenants in the series below
GONE = [*[{}] * 40, *[{"entries": 0}] * 30]



def test_tenants_who_left_have_a_presence_end_no_later_than_their_last_absence() -> None:
    found = ended(run_of(*GONE))
    assert found is not None and found <= LEFT
    # A drop-by two weeks after leaving does not move the end to the drop-by.
    drop_by = [*[{}] * 40, *[{"entries": 0}] * 14, {"entries": 1}, *[{"entries": 0}] * 15]
    found = ended(run_of(*drop_by))
    assert found is not None and found <= LEFT


def test_presence_end_is_the_first_day_without_tenants() -> None:
    assert ended(run_of(*GONE)) == LEFT
    drop_by = [*[{}] * 40, *[{"entries": 0}] * 14, {"entries": 1}, *[{"entries": 0}] * 15]
    assert ended(run_of(*drop_by)) == LEFT


def test_days_the_flat_stood_empty_between_households_open_the_absence(act: ActivityPolicy) -> None:
    """The household leaves on LEFT; the flat stands empty for two days before the subtenants move in; the
    tenant drops by on the seventh day. The sublet rule leaves the empty days out of the shares (they are
    the vacancy rule's question), but they are days of nobody at the gate: with them, the first week after
    LEFT is clean and the departure is dated to it, not to the weeks after the drop-by."""
    days = run_of(*[{}] * 40, {"entries": 0}, EMPTY, EMPTY, *[{"entries": 0}] * 4, {"entries": 1},
                  *[{"entries": 0}] * 22)
    kept = [d for d in days if day_state(d, act) is not DayState.IDLE]
    empty = [d for d in days if day_state(d, act) is DayState.IDLE]
    assert len(empty) == 2

    def end(**kw: Any) -> date | None:
        return presence_end(kept, end=AS_OF, lookback_days=21, min_share_before=0.2, max_share_after=0.15,
                            min_days_after=10, **kw)

    assert end(empty=empty) == LEFT
    assert end() == LEFT + timedelta(days=8)  # without them: dated after the drop-by
    # An empty day does not hide an entry: a drop-by on an empty day still breaks the first week.
    visited = [d._replace(tenant_entries=1) if d.day == empty[0].day else d for d in empty]
    assert end(empty=visited) == LEFT + timedelta(days=8)


def test_a_trip_before_the_household_left_is_not_the_start_of_its_absence(act: ActivityPolicy) -> None:
    """A household away for nine days (the flat empty), back for a fortnight, then gone for good (others
    live there). Only the days of a move itself (up to three after the last day with entries) count
    towards the absence's clean first week: the trip's would open the absence before it and fold the
    fortnight back into it (the sharpest drop), dating the departure a month early."""
    back = [{}, {}, {}, {"entries": 0}] * 3 + [{}]  # 13 days back, entries on 10 of them
    days = run_of(*[{}] * 40, {"entries": 0}, *[EMPTY] * 9, *back, *[{"entries": 0}] * 110)
    kept = [d for d in days if day_state(d, act) is not DayState.IDLE]
    empty = [d for d in days if day_state(d, act) is DayState.IDLE]
    left = presence_end(kept, end=AS_OF, lookback_days=21, min_share_before=0.2, max_share_after=0.15,
                        min_days_after=10, empty=empty)
    assert left == days[63].day  # the first day after the fortnight back, not days[40] before the trip


def test_presence_end_is_none_while_tenants_keep_entering() -> None:
    assert ended(run_of(*[{}] * 70)) is None
    # Tenants who enter on one day in three still live there: no end.
    assert ended(run_of(*[{} if i % 3 == 0 else {"entries": 0} for i in range(70)])) is None


def test_a_household_out_for_five_days_has_not_left() -> None:
    assert ended(run_of(*[{}] * 60, *[{"entries": 0}] * 5)) is None


def test_an_absence_needs_ten_gate_days_without_tenants() -> None:
    assert ended(run_of(*[{}] * 60, *[{"entries": 0}] * 9)) is None
    assert ended(run_of(*[{}] * 60, *[{"entries": 0}] * 10)) == AS_OF - timedelta(days=9)
    # Only 9 working gate days since the entries stopped, then the gate went silent: too few.
    mostly_dead = [{"entries": 0, "gate": 60 if i < 9 else 0} for i in range(30)]
    assert ended(run_of(*[{}] * 40, *mostly_dead)) is None


def test_tenants_who_rarely_used_the_gate_have_no_presence_end() -> None:
    rare = [{} if i % 10 == 5 else {"entries": 0} for i in range(40)]  # 1 gate day in 10: below 0.2
    assert ended(run_of(*rare, *[{"entries": 0}] * 30)) is None


def test_one_day_of_data_is_no_evidence_of_presence_before() -> None:
    rare = [{} if i % 10 == 0 else {"entries": 0} for i in range(40)]
    assert ended(run_of(*rare, *[{"entries": 0}] * 30)) is None


def test_days_without_a_working_gate_are_not_absence() -> None:
    # The gate went silent as the entries stopped: nothing shows that the tenants left.
    assert ended(run_of(*[{}] * 40, *[{"entries": 0, "gate": 0}] * 30)) is None
    assert ended(run_of(*[{"entries": 0, "gate": 0}] * 70)) is None


def test_faces_only_sees_a_lent_card() -> None:
    days = run_of(*[{}] * 40, *[{"entries": 1, "faces": 0}] * 30)
    assert ended(days) is None  # the card is used every day
    found = ended(days, faces_only=True)
    assert found is not None and found <= LEFT


def test_faces_only_end_is_the_first_day_without_faces() -> None:
    days = run_of(*[{}] * 40, *[{"entries": 1, "faces": 0}] * 30)
    assert ended(days, faces_only=True) == LEFT


def test_a_household_that_left_while_the_gate_was_down_left_when_the_gate_came_back() -> None:
    """Present daily, then the gate silent for 25 days, then nobody: the days the gate last saw them
    (before the outage) are what they are compared with, and the absence starts when it works again."""
    days = run_of(*[{}] * 40, *[{"entries": 0, "gate": 0}] * 25, *[{"entries": 0}] * 20)
    assert ended(days) == AS_OF - timedelta(days=19)
    # An outage alone, with the household back at the gate afterwards, is no departure.
    assert ended(run_of(*[{}] * 40, *[{"entries": 0, "gate": 0}] * 25, *[{}] * 20)) is None


# --- water_rise ------------------------------------------------------------------------------------------


def test_water_rise_dates_the_step_where_people_moved_in(act: ActivityPolicy) -> None:
    moved_in = AS_OF - timedelta(days=50)
    days = [day(AS_OF - timedelta(days=k), water=0.12 if AS_OF - timedelta(days=k) < moved_in else 0.4)
            for k in range(120, -1, -1)]
    assert water_rise(days, end=AS_OF, policy=act, ratio=2.0) == (moved_in, 0.12, 0.4)
    # Less than twice: a household's own variation, no rise.
    less = [d._replace(water_m3=0.2, water_active_m3=0.2) if d.day >= moved_in else d for d in days]
    assert water_rise(less, end=AS_OF, policy=act, ratio=2.0) is None
    # A leak that began then: the water above the day's floor stayed the household's.
    leak = [d._replace(water_active_m3=0.12) for d in days]
    assert water_rise(leak, end=AS_OF, policy=act, ratio=2.0) is None
    # Nothing after ``end`` is read: judged before the step, there was none.
    assert water_rise(days, end=moved_in - timedelta(days=1), policy=act, ratio=2.0) is None


def test_a_rise_judged_soon_after_it_is_dated_where_it_began_not_where_the_record_ends(
        act: ActivityPolicy) -> None:
    # A group's use grows as its people come (0.40 m³ a day on the first, 0.02 more each day after, against
    # 0.15 before). The largest rise compares weeks that straddle the move and grows as the record goes on:
    # judged a month in, it lies a fortnight after the move; the day is where the water first stays nearer
    # the new level than the old.
    moved_in = AS_OF - timedelta(days=30)

    def water(d: date) -> float:
        k = (d - moved_in).days
        return 0.15 if k < 0 else min(0.4 + 0.02 * k, 0.9)

    days = [day(AS_OF - timedelta(days=k), water=water(AS_OF - timedelta(days=k))) for k in range(90, -1, -1)]
    found = water_rise(days, end=AS_OF, policy=act, ratio=2.0)
    assert found is not None and 0 <= (found[0] - moved_in).days <= 7
