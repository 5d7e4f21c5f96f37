"""Vacancy and sublet rules (rules-9: activity signatures) on hand-made series, with the hard negatives
they must survive and the reasons an inspector reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from anju.models.features import Crowding, PeerStats, StrangerTrack, UnitSeries, crowding
from anju.models.habit import face_change_chance, presence_change_chance
from anju.models.rules import (
    POLICY_PATH,
    RULE_VERSION,
    Outcome,
    Policy,
    Reason,
    RuleFinding,
    VacancyRule,
    face_days_between,
    rule_context,
)
from anju.models.strangers import arrival_events, attribute_strangers, stranger_chance
from anju.models.sublet import SubletRule
from tests.models.factories import AS_OF, START, series, with_days

# An empty flat: fridge and standby only (0.6 kWh, nothing above the floor), no water, no gas, nobody.
EMPTY: dict[str, Any] = dict(elec=0.6, water=0.0, gas=0.0, entries=0, strangers=0)
# A drop-by: one entry, water in 2 hours, the light on for a while.
VISIT: dict[str, Any] = dict(elec=1.5, water=0.06, gas=0.0, entries=1, strangers=0)
OUTAGE: dict[str, Any] = dict(elec=None, water=None, gas=None, entries=0, strangers=0)
# Someone else living there: full meters, no registered tenant through the gate.
SUBLET: dict[str, Any] = dict(elec=7.0, water=0.25, entries=0, strangers=3)
MOVED_OUT = AS_OF - timedelta(days=30)
WINDOW_START = AS_OF - timedelta(days=20)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load()


def judge(policy: Policy, s: UnitSeries, peers: PeerStats | None = None) -> tuple[RuleFinding, RuleFinding]:
    return (
        VacancyRule(policy).evaluate(s, as_of=AS_OF, peers=peers),
        SubletRule(policy).evaluate(s, as_of=AS_OF, peers=peers),
    )


def codes(v: RuleFinding) -> set[str]:
    return {r.code for r in v.reasons}


def reason(v: RuleFinding, code: str) -> Reason:
    return next(r for r in v.reasons if r.code == code)


def empty_since(since: date, **kw: Any) -> UnitSeries:
    return series(change_from=since, **{**EMPTY, **kw})


def subtenant(first_seen: date = MOVED_OUT + timedelta(days=2), *, days_seen: int = 25,
              days_in_window: int = 15) -> StrangerTrack:
    return StrangerTrack("s-17", first_seen=first_seen, days_in_window=days_in_window, days_seen=days_seen)


def days_between(first: date, last: date, step: int = 1) -> list[date]:
    return [first + timedelta(days=i) for i in range(0, (last - first).days + 1, step)]


# --- policy ----------------------------------------------------------------------------------------------


def test_policy_carries_the_legal_horizon_and_a_versioned_digest(policy: Policy, tmp_path: Path) -> None:
    assert policy.legal_idle_horizon_days == 180
    assert policy.window_days == 21 and policy.history_days == 180
    assert RULE_VERSION == "rules-9"
    assert policy.version.startswith("rules-9+p") and len(policy.version) == len("rules-9+p") + 8
    text = POLICY_PATH.read_text(encoding="utf-8")
    assert "min_idle_days: 22" in text
    changed = tmp_path / "p.yaml"
    changed.write_text(text.replace("min_idle_days: 22", "min_idle_days: 23"), encoding="utf-8")
    other = Policy.load(changed)
    assert other.vacancy.min_idle_days == 23 and other.version != policy.version
    assert other.version.startswith("rules-9+p")


# --- vacancy -----------------------------------------------------------------------------------------------


def test_vacant_unit_is_flagged_with_reasons(policy: Policy) -> None:
    vac, sub = judge(policy, empty_since(AS_OF - timedelta(days=30)))
    assert vac.outcome is Outcome.FLAGGED and 0 < vac.score <= 1
    assert {"no_tenant_entries", "electricity_base_load", "water_near_zero", "idle_streak"} <= codes(vac)
    assert "water_constant_flow" not in codes(vac) and "drop_by_visits" not in codes(vac)
    streak = reason(vac, "idle_streak")
    assert (streak.value, streak.baseline, streak.unit) == (31, 180, "days")
    assert (AS_OF - timedelta(days=30)).isoformat() in streak.text
    entries = reason(vac, "no_tenant_entries")
    assert (entries.value, entries.baseline) == (0, 50)  # entry days of the 60-day baseline, till empty
    elec = reason(vac, "electricity_base_load")
    assert (elec.value, elec.baseline, elec.unit) == (0.0, 7.0, "kWh/day")
    water = reason(vac, "water_near_zero")
    assert (water.value, water.baseline, water.unit) == (0.0, 10.0, "hours/day")
    assert all(set(r.to_dict()) == {"code", "text", "value", "baseline", "unit"} for r in vac.reasons)
    assert vac.window_start == WINDOW_START and vac.window_end == AS_OF
    assert vac.rule_version == policy.version
    assert sub.outcome is Outcome.CLEAR


def test_fridge_and_water_heater_do_not_make_an_empty_flat_lived_in(policy: Policy) -> None:
    # 1.5 to 2.5 kWh a day in all, above any old absolute limit: the shape (nothing above the floor but a
    # water heater's reheats, no water event) is the evidence, not the total.
    s = empty_since(AS_OF - timedelta(days=35), elec=2.5)  # 1.5 above the floor
    s = with_days(s, {d: {**EMPTY, "elec": 3.0, "elec_active": 2.0}
                      for d in days_between(AS_OF - timedelta(days=35), AS_OF, step=2)})
    vac, _ = judge(policy, s)
    assert vac.outcome is Outcome.FLAGGED
    assert reason(vac, "idle_streak").value == 36
    elec = reason(vac, "electricity_base_load")
    assert elec.value is not None and 1.5 <= elec.value <= 2.0
    assert "total 2.50 kWh/day" in elec.text
    # The same totals with water events every day are a household.
    lived, _ = judge(policy, empty_since(AS_OF - timedelta(days=35), elec=2.5, water=0.1))
    assert lived.outcome is Outcome.CLEAR and lived.reasons == ()


def test_flat_empty_since_before_the_data_is_a_long_vacancy(policy: Policy) -> None:
    vac, sub = judge(policy, empty_since(START))
    assert vac.outcome is Outcome.FLAGGED
    streak = reason(vac, "idle_streak")
    assert (streak.value, streak.baseline) == (81, 180)
    assert START.isoformat() in streak.text
    assert reason(vac, "no_tenant_entries").baseline == 0  # no change needed: empty in the baseline too
    assert reason(vac, "electricity_base_load").baseline == 0.0
    assert sub.outcome is Outcome.CLEAR
    shorter, _ = judge(policy, empty_since(AS_OF - timedelta(days=30)))
    assert vac.score > shorter.score  # closer to the legal horizon


def test_three_weeks_of_travel_is_not_vacancy_but_a_22nd_idle_day_is(policy: Policy) -> None:
    trip, sub = judge(policy, empty_since(AS_OF - timedelta(days=20)))
    assert trip.outcome is Outcome.CLEAR and sub.outcome is Outcome.CLEAR
    short = reason(trip, "idle_streak_short")
    assert (short.value, short.baseline, short.unit) == (21, 22, "days")
    longer, _ = judge(policy, empty_since(AS_OF - timedelta(days=21)))
    assert longer.outcome is Outcome.FLAGGED and reason(longer, "idle_streak").value == 22


def test_two_weeks_in_hospital_is_clear(policy: Policy) -> None:
    # Still away: 14 idle days, and the tenants entered on the window's first 7 days.
    still_away, sub = judge(policy, empty_since(AS_OF - timedelta(days=13)))
    assert still_away.outcome is Outcome.CLEAR and sub.outcome is Outcome.CLEAR
    # Without gate entries to clear it, the idle run alone is short.
    no_gate = with_days(empty_since(AS_OF - timedelta(days=13)),
                        {d: {"entries": 0} for d in days_between(WINDOW_START, AS_OF - timedelta(days=14))})
    alone, _ = judge(policy, no_gate)
    assert alone.outcome is Outcome.CLEAR and reason(alone, "idle_streak_short").value == 14
    stay = {d: EMPTY for d in days_between(AS_OF - timedelta(days=18), AS_OF - timedelta(days=5))}
    back, sub = judge(policy, with_days(series(), stay))
    assert back.outcome is Outcome.CLEAR and back.reasons == ()
    assert sub.outcome is Outcome.CLEAR


def test_drop_by_visits_every_one_to_three_weeks_do_not_reset_the_idle_run(policy: Policy) -> None:
    visits = [AS_OF - timedelta(days=n) for n in (30, 19, 5)]
    s = with_days(empty_since(AS_OF - timedelta(days=40)), {d: VISIT for d in visits})
    vac, _ = judge(policy, s)
    assert vac.outcome is Outcome.FLAGGED
    assert reason(vac, "idle_streak").value == 41 - 3  # visit days skipped, not counted
    drops = reason(vac, "drop_by_visits")
    assert (drops.value, drops.unit) == (3, "days")
    assert reason(vac, "no_tenant_entries").value == 2  # the two visits in the window


def test_visits_on_consecutive_days_are_someone_living_on_little(policy: Policy) -> None:
    # An elderly tenant: one water hour and a little light a day, rarely through the gate.
    frugal: dict[str, Any] = dict(elec=1.3, water=0.03, gas=0.0, entries=0, strangers=0)
    vac, sub = judge(policy, series(change_from=START, **frugal))
    assert vac.outcome is Outcome.CLEAR and vac.reasons == ()
    assert sub.outcome is Outcome.CLEAR
    through_the_gate, _ = judge(policy, series(change_from=START, **{**frugal, "entries": 1}))
    assert through_the_gate.outcome is Outcome.CLEAR


def test_leaking_cistern_in_an_empty_flat_is_vacancy_but_a_household_is_not(policy: Policy) -> None:
    since = AS_OF - timedelta(days=40)
    # A constant flow rises the meter every hour by the same amount: no event above the day's floor.
    vac, sub = judge(policy, empty_since(since, water=0.1, water_hours=0))
    assert vac.outcome is Outcome.FLAGGED and sub.outcome is Outcome.CLEAR
    leak = reason(vac, "water_constant_flow")
    assert (leak.value, leak.baseline, leak.unit) == (0.1, 0.02, "m3/day")
    assert reason(vac, "water_near_zero").value == 0.0
    household, _ = judge(policy, empty_since(since, water=0.1))  # same total, in 3 hours of the day
    assert household.outcome is Outcome.CLEAR and household.reasons == ()


def test_unknown_days_are_skipped_never_counted_as_idle(policy: Policy) -> None:
    outage = {d: OUTAGE for d in days_between(AS_OF - timedelta(days=12), AS_OF - timedelta(days=8))}
    vac, _ = judge(policy, with_days(empty_since(AS_OF - timedelta(days=30)), outage))
    assert vac.outcome is Outcome.FLAGGED and reason(vac, "idle_streak").value == 31 - 5
    # 28 days without life, 8 of them unknown: 20 observed idle days are not enough.
    outage = {d: OUTAGE for d in days_between(AS_OF - timedelta(days=15), AS_OF - timedelta(days=8))}
    vac, _ = judge(policy, with_days(empty_since(AS_OF - timedelta(days=27)), outage))
    assert vac.outcome is Outcome.CLEAR and reason(vac, "idle_streak_short").value == 20


def test_electricity_only_days_are_idle_only_near_the_floor(policy: Policy) -> None:
    since = AS_OF - timedelta(days=29)
    dry, _ = judge(policy, empty_since(since, elec=1.5))
    unknown, _ = judge(policy, empty_since(since, elec=1.5, water=None))  # 0.5 above the floor
    assert unknown.outcome is Outcome.FLAGGED and "water_unknown" in codes(unknown)
    assert "water_near_zero" not in codes(unknown)
    assert reason(unknown, "water_unknown").value == 0.0
    assert unknown.score < dry.score
    # 1.5 kWh above the floor is idle with a still water meter, not without one to confirm it.
    confirmed, _ = judge(policy, empty_since(since, elec=2.5))
    assert confirmed.outcome is Outcome.FLAGGED
    unconfirmed, _ = judge(policy, empty_since(since, elec=2.5, water=None))
    assert unconfirmed.outcome is Outcome.CLEAR


def test_more_than_three_entry_days_is_not_vacancy(policy: Policy) -> None:
    entry_days = [AS_OF - timedelta(days=n) for n in (18, 13, 8, 3)]
    s = with_days(empty_since(AS_OF - timedelta(days=40)), {d: {**EMPTY, "entries": 1} for d in entry_days})
    vac, _ = judge(policy, s)
    assert vac.outcome is Outcome.CLEAR and vac.reasons == ()
    three = with_days(empty_since(AS_OF - timedelta(days=40)),
                      {d: {**EMPTY, "entries": 1} for d in entry_days[:3]})
    assert judge(policy, three)[0].outcome is Outcome.FLAGGED


def test_silent_gate_vacancy_is_judged_on_the_meters(policy: Policy) -> None:
    vac, sub = judge(policy, empty_since(AS_OF - timedelta(days=30), gate=0))
    assert vac.outcome is Outcome.FLAGGED
    entries = reason(vac, "no_tenant_entries")
    assert "judged on the meters" in entries.text
    assert sub.outcome is Outcome.NO_VERDICT and codes(sub) == {"gate_silent"}


def test_peers_add_a_reason_but_do_not_decide(policy: Policy) -> None:
    peers = PeerStats("E01", units=40, elec_median=5.0, water_median=0.2)
    vac, _ = judge(policy, empty_since(AS_OF - timedelta(days=30)), peers)
    assert vac.outcome is Outcome.FLAGGED
    peer = reason(vac, "peer_electricity")
    assert (peer.value, peer.baseline) == (0.6, 5.0)
    normal, _ = judge(policy, series(), peers)
    assert normal.outcome is Outcome.CLEAR


# --- sublet ------------------------------------------------------------------------------------------------


def test_normal_unit_is_not_flagged(policy: Policy) -> None:
    vac, sub = judge(policy, series())
    assert vac.outcome is Outcome.CLEAR and sub.outcome is Outcome.CLEAR
    assert vac.reasons == () and sub.reasons == ()


def test_sublet_is_flagged_when_tenants_stop_and_a_resident_stranger_appears(policy: Policy) -> None:
    s = series(change_from=MOVED_OUT, tracks=(subtenant(),), **SUBLET)
    vac, sub = judge(policy, s)
    assert sub.outcome is Outcome.FLAGGED and 0 < sub.score <= 1
    assert {"no_tenant_entries", "flat_lived_in", "tenant_presence_ended",
            "recurring_strangers"} <= codes(sub)
    assert "tenant_faces_vanished" not in codes(sub)
    entries = reason(sub, "no_tenant_entries")
    assert (entries.value, entries.baseline) == (0, 50)
    lived = reason(sub, "flat_lived_in")
    assert (lived.value, lived.baseline) == (1.0, 0.6)
    ended = reason(sub, "tenant_presence_ended")
    assert (ended.value, ended.baseline) == (0.0, 1.0)
    strangers = reason(sub, "recurring_strangers")
    assert (strangers.value, strangers.baseline) == (1, 0)
    assert (MOVED_OUT + timedelta(days=2)).isoformat() in strangers.text
    assert vac.outcome is Outcome.CLEAR


def test_sublet_reason_dates_the_departure(policy: Policy) -> None:
    _, sub = judge(policy, series(change_from=MOVED_OUT, tracks=(subtenant(),), **SUBLET))
    assert reason(sub, "tenant_presence_ended").text.startswith(
        f"Until {(MOVED_OUT - timedelta(days=1)).isoformat()} ")
    # A face that appeared 8 days before the tenants left is outside the 7-day lead.
    early = subtenant(first_seen=MOVED_OUT - timedelta(days=8), days_seen=35)
    _, sub = judge(policy, series(change_from=MOVED_OUT, tracks=(early,), **SUBLET))
    assert sub.outcome is Outcome.CLEAR


def test_a_frugal_subtenant_is_flagged_on_the_shape_of_the_day(policy: Policy) -> None:
    # 3 kWh and 0.12 m³ against 8 and 0.3 before: still cooking and washing every day.
    s = series(change_from=MOVED_OUT, tracks=(subtenant(),), **{**SUBLET, "elec": 3.0, "water": 0.12})
    _, alone = judge(policy, s)
    assert alone.outcome is Outcome.FLAGGED
    _, with_peers = judge(policy, s, PeerStats("E01", units=40, elec_median=5.0, water_median=0.2))
    assert with_peers.outcome is Outcome.FLAGGED
    in_use = reason(with_peers, "electricity_in_use")
    assert (in_use.value, in_use.baseline) == (3.0, 5.0)


def test_sublet_where_the_tenant_still_drops_by_is_flagged(policy: Policy) -> None:
    drops = {AS_OF - timedelta(days=12): {**SUBLET, "entries": 1}, AS_OF - timedelta(days=4): {
        **SUBLET, "entries": 1}}
    s = with_days(series(change_from=MOVED_OUT, tracks=(subtenant(),), **SUBLET), drops)
    _, sub = judge(policy, s)
    assert sub.outcome is Outcome.FLAGGED
    assert reason(sub, "no_tenant_entries").value == 2
    assert "recurring_strangers" in codes(sub)


@pytest.mark.parametrize("drop_by", [6, 10, 15, 18])
def test_a_drop_by_at_any_time_after_leaving_does_not_hide_the_sublet(policy: Policy, drop_by: int) -> None:
    s = with_days(series(change_from=MOVED_OUT, tracks=(subtenant(),), **SUBLET),
                  {AS_OF - timedelta(days=drop_by): {**SUBLET, "entries": 1}})
    _, sub = judge(policy, s)
    assert sub.outcome is Outcome.FLAGGED and "recurring_strangers" in codes(sub)


def test_side_door_household_is_not_a_sublet(policy: Policy) -> None:
    vac, sub = judge(policy, series(change_from=MOVED_OUT, **SUBLET))
    assert sub.outcome is Outcome.CLEAR and codes(sub) == {"no_new_faces"}
    assert vac.outcome is Outcome.CLEAR
    # Took to the side door before the data starts: no moment at which they stopped.
    _, always = judge(policy, series(change_from=START, **SUBLET))
    assert always.outcome is Outcome.CLEAR and codes(always) == {"no_presence_change"}


@pytest.mark.parametrize("water", [0.12, 0.15, 0.6, 0.75])
def test_tenants_gone_and_the_water_halved_or_doubled_is_a_sublet_without_a_new_face(
        policy: Policy, water: float) -> None:
    # Subtenants who all came in behind someone, or whose faces went to another departure in the
    # building: the flat's water (0.30 m³/day before) says other people live there.
    _, sub = judge(policy, series(change_from=MOVED_OUT, **{**SUBLET, "water": water}))
    assert sub.outcome is Outcome.FLAGGED and "recurring_strangers" not in codes(sub)
    changed = reason(sub, "water_level_changed")
    assert (changed.baseline, changed.value) == (0.3, water)


@pytest.mark.parametrize("water", [0.16, 0.25, 0.45, 0.58])
def test_a_side_door_household_whose_water_moved_less_than_twofold_is_not_a_sublet(
        policy: Policy, water: float) -> None:
    # Within a factor of two of the 0.30 before: the household's own use, give or take (a guest, a trip
    # short of a whole day away, the season).
    _, sub = judge(policy, series(change_from=MOVED_OUT, **{**SUBLET, "water": water}))
    assert sub.outcome is Outcome.CLEAR and codes(sub) == {"no_new_faces"}


def test_a_weekly_relative_is_not_a_new_occupant(policy: Policy) -> None:
    # Seen on 1 day in 7 since the first sighting (resident share ~0.14), though on 3 window days.
    relative = subtenant(days_seen=4, days_in_window=3)
    assert relative.resident_share(end=AS_OF) == pytest.approx(4 / 29)
    _, sub = judge(policy, series(change_from=MOVED_OUT, tracks=(relative,), **SUBLET))
    assert sub.outcome is Outcome.CLEAR and codes(sub) == {"no_new_faces"}


def test_strangers_who_were_always_there_or_came_much_later_are_not_support(policy: Policy) -> None:
    old = subtenant(first_seen=START, days_seen=70)
    _, sub = judge(policy, series(change_from=MOVED_OUT, tracks=(old,), **SUBLET))
    assert sub.outcome is Outcome.CLEAR and codes(sub) == {"no_new_faces"}
    late = subtenant(first_seen=AS_OF - timedelta(days=4), days_seen=5, days_in_window=5)
    _, sub = judge(policy, series(change_from=MOVED_OUT, tracks=(late,), **SUBLET))
    assert sub.outcome is Outcome.CLEAR and codes(sub) == {"no_new_faces"}


def test_an_empty_flat_is_never_a_sublet(policy: Policy) -> None:
    _, sub = judge(policy, empty_since(MOVED_OUT, strangers=3, tracks=(subtenant(),)))
    assert sub.outcome is Outcome.CLEAR and sub.reasons == ()


def test_lent_card_is_flagged_when_faces_vanish_while_the_card_is_used(policy: Policy) -> None:
    s = series(change_from=MOVED_OUT, elec=7.0, water=0.25, entries=2, faces=0, strangers=3)
    vac, sub = judge(policy, s)
    assert sub.outcome is Outcome.FLAGGED
    assert {"tenant_faces_vanished", "flat_lived_in", "tenant_presence_ended"} <= codes(sub)
    assert "no_tenant_entries" not in codes(sub) and "recurring_strangers" not in codes(sub)
    vanished = reason(sub, "tenant_faces_vanished")
    assert (vanished.value, vanished.baseline) == (0, 21)  # faces on 0 days, the card on 21
    assert vac.outcome is Outcome.CLEAR
    # With the new face placed too, it says so.
    _, both = judge(policy, series(change_from=MOVED_OUT, faces=0, tracks=(subtenant(),),
                                   **{**SUBLET, "entries": 2}))
    assert both.outcome is Outcome.FLAGGED and {"tenant_faces_vanished", "recurring_strangers"} <= codes(both)


def test_a_lent_card_to_a_lodger_who_lives_on_little_is_a_sublet(policy: Policy) -> None:
    # The household (faces at the gate, 0.3 m³ and 8 kWh a day) left; a lodger carries its card home every
    # night and lives on little: 60 L of water in two hours, 1.5 kWh, no cooking. Each such day alone looks
    # like a drop-by; day after day they are a life (as the vacancy rule's idle run already read them).
    lodger = dict(elec=1.5, water=0.06, gas=0.0, entries=1, faces=0, strangers=3)
    _, sub = judge(policy, series(change_from=MOVED_OUT, **lodger))
    assert sub.outcome is Outcome.FLAGGED and "tenant_faces_vanished" in codes(sub)
    assert reason(sub, "flat_lived_in").value == 1.0
    # The same light days once a week, the flat empty between them, are the tenant dropping by.
    weekly = with_days(series(change_from=MOVED_OUT, **EMPTY),
                       {d: lodger for d in days_between(MOVED_OUT, AS_OF, step=7)})
    _, visits = judge(policy, weekly)
    assert visits.outcome is Outcome.CLEAR


def test_lent_card_needs_seven_card_days(policy: Policy) -> None:
    lived_no_entry = {**SUBLET, "strangers": 0}
    card = {**lived_no_entry, "entries": 1, "faces": 0}

    def used_on(n: int) -> UnitSeries:
        last = WINDOW_START + timedelta(days=3 * n - 1)
        return with_days(series(change_from=MOVED_OUT, **lived_no_entry),
                         {d: card for d in days_between(WINDOW_START, last, step=3)})

    _, seven = judge(policy, used_on(7))
    assert seven.outcome is Outcome.FLAGGED and "tenant_faces_vanished" in codes(seven)
    _, six = judge(policy, used_on(6))
    assert six.outcome is Outcome.CLEAR and codes(six) == {"no_new_faces"}


def test_lent_card_presence_reason_shows_the_faces_drop(policy: Policy) -> None:
    s = series(change_from=MOVED_OUT, elec=7.0, water=0.25, entries=2, faces=0, strangers=3)
    _, sub = judge(policy, s)
    ended = reason(sub, "tenant_presence_ended")
    assert ended.value is not None and ended.baseline is not None and ended.value < ended.baseline


def test_household_whose_faces_still_appear_is_not_a_lent_card(policy: Policy) -> None:
    """Faces on four days of the window, one every five days: more than a tenant dropping by."""
    s = series(change_from=MOVED_OUT, elec=7.0, water=0.25, entries=2, faces=0, strangers=3)
    faces = {AS_OF - timedelta(days=d): {**SUBLET, "entries": 2, "faces": 1} for d in (17, 12, 7, 2)}
    _, sub = judge(policy, with_days(s, faces))
    assert sub.outcome is Outcome.CLEAR and sub.reasons == ()


def test_a_lent_card_where_the_tenant_drops_by_is_still_a_lent_card(policy: Policy) -> None:
    """The subtenant uses the tenant's card every day; the tenant shows a face once in ten days (a visit).
    Two visits in the window do not clear it, as two entries do not clear a sublet."""
    s = series(change_from=MOVED_OUT, tracks=(subtenant(),), elec=7.0, water=0.25, entries=2, faces=0,
               strangers=3)
    visits = {AS_OF - timedelta(days=d): {**SUBLET, "entries": 2, "faces": 1} for d in (15, 5)}
    _, sub = judge(policy, with_days(s, visits))
    assert sub.outcome is Outcome.FLAGGED and "tenant_faces_vanished" in codes(sub)


# --- no verdict --------------------------------------------------------------------------------------------


def test_silent_gate_is_no_verdict_not_a_sublet(policy: Policy) -> None:
    silent = {d: {**SUBLET, "gate": 0} for d in days_between(WINDOW_START, AS_OF) if d.day % 4}
    s = with_days(series(change_from=MOVED_OUT, tracks=(subtenant(),), **SUBLET), silent)
    _, sub = judge(policy, s)
    assert sub.outcome is Outcome.NO_VERDICT and codes(sub) == {"gate_silent"}
    gate = reason(sub, "gate_silent")
    assert gate.value is not None and gate.value < 0.6 and gate.baseline == 0.6
    assert sub.score == 0.0


def test_three_week_meter_outage_is_no_verdict_not_vacancy(policy: Policy) -> None:
    vac, sub = judge(policy, series(**OUTAGE))
    assert vac.outcome is Outcome.NO_VERDICT and codes(vac) == {"low_coverage"}
    low = reason(vac, "low_coverage")
    assert (low.value, low.baseline) == (0.0, 0.6)
    assert sub.outcome is Outcome.NO_VERDICT and codes(sub) == {"low_coverage"}


def test_low_coverage_blocks_both_rules_at_nine_unknown_days(policy: Policy) -> None:
    base = empty_since(AS_OF - timedelta(days=40))
    nine = with_days(base, {d: OUTAGE for d in days_between(AS_OF - timedelta(days=8), AS_OF)})
    vac, sub = judge(policy, nine)
    assert vac.outcome is Outcome.NO_VERDICT and reason(vac, "low_coverage").value == round(12 / 21, 3)
    assert sub.outcome is Outcome.NO_VERDICT
    eight = with_days(base, {d: OUTAGE for d in days_between(AS_OF - timedelta(days=7), AS_OF)})
    assert judge(policy, eight)[0].outcome is Outcome.FLAGGED


def test_partial_outage_counts_only_known_days(policy: Policy) -> None:
    # 8 unknown days and 13 lived-in ones: the unknown days must not drag anything to zero.
    vac, sub = judge(policy, series(change_from=AS_OF - timedelta(days=7), elec=None, water=None, gas=None))
    assert vac.outcome is Outcome.CLEAR and sub.outcome is Outcome.CLEAR


def test_new_lease_gets_no_verdict(policy: Policy) -> None:
    vac, sub = judge(policy, empty_since(START, lease_start=AS_OF - timedelta(days=10)))
    assert vac.outcome is Outcome.NO_VERDICT and codes(vac) == {"new_lease"}
    assert sub.outcome is Outcome.NO_VERDICT and codes(sub) == {"new_lease"}
    settled, _ = judge(policy, empty_since(START, lease_start=AS_OF - timedelta(days=30)))
    assert settled.outcome is Outcome.FLAGGED


def test_a_household_that_often_uses_its_card_is_not_a_lent_card_after_weeks_without_a_face(
    policy: Policy,
) -> None:
    """A face on 2 entry days in 5 before; since, the card on every third day and no face: 0.6^7 (0.6^10
    counting the days without a face just before), about 6 in 1,000, happens by chance to some household
    every few runs. A household that showed its face on every entry day is another matter after the same
    days."""
    mixed = with_days(series(), {d.day: {"entries": 2, "faces": 1 if i % 5 < 2 else 0}
                                 for i, d in enumerate(series().days) if d.day < WINDOW_START})
    card_days = set(days_between(WINDOW_START, AS_OF, step=3))
    s = with_days(mixed, {d.day: {**SUBLET, "strangers": 0, "entries": 1 if d.day in card_days else 0,
                                  "faces": 0} for d in mixed.days if d.day >= WINDOW_START})
    _, sub = judge(policy, s)
    assert sub.outcome is Outcome.CLEAR
    assert face_change_chance(s.days, left=WINDOW_START, end=AS_OF) > policy.sublet.max_face_change_chance
    always = with_days(series(), {d.day: {**SUBLET, "strangers": 0, "entries": 1 if d.day in card_days else 0,
                                          "faces": 0} for d in series().days if d.day >= WINDOW_START})
    assert face_change_chance(always.days, left=WINDOW_START, end=AS_OF) < 1e-6
    _, lent = judge(policy, always)
    assert lent.outcome is Outcome.FLAGGED and "tenant_faces_vanished" in codes(lent)


def test_one_new_face_is_no_evidence_where_new_faces_arrive_every_few_days(policy: Policy) -> None:
    """Tenants who took to the side door while one more stranger moved in somewhere in a large building:
    with a new recurring face every three days there, one near the departure is what chance gives."""
    quiet = series(change_from=MOVED_OUT, tracks=(subtenant(),), **SUBLET)
    _, sub = judge(policy, quiet)
    assert sub.outcome is Outcome.FLAGGED and "recurring_strangers" in codes(sub)
    every_third_day = days_between(START + timedelta(days=8), AS_OF, step=3)
    arrivals = tuple((f"a-{i}", d) for i, d in enumerate(every_third_day))
    busy_building = replace(quiet, arrivals=arrivals)
    assert stranger_chance(busy_building, aligned=[subtenant()], end=AS_OF, policy=policy.sublet) > 0.99
    _, sub = judge(policy, busy_building)
    assert sub.outcome is Outcome.CLEAR and codes(sub) == {"no_new_faces"}
    assert stranger_chance(quiet, aligned=[subtenant()], end=AS_OF, policy=policy.sublet) == 0.0
    # Faces that other departures in the building explain (their subtenants) do not make it busy.
    others = {track for track, _ in arrivals}
    assert stranger_chance(busy_building, aligned=[subtenant()], end=AS_OF, policy=policy.sublet,
                           explained=others) == 0.0
    explained = SubletRule(policy).evaluate(busy_building, as_of=AS_OF, explained=others)
    assert explained.outcome is Outcome.FLAGGED


def test_a_group_moving_in_elsewhere_is_one_arrival_not_nine(policy: Policy) -> None:
    """Nine faces that moved in together after the departure (a group rental elsewhere in the building)
    are one moving in: one new face at the departure is still unlikely by chance. Nine faces arriving a
    fortnight apart are nine: there, one near the departure is what chance gives."""
    quiet = series(change_from=MOVED_OUT, tracks=(subtenant(),), **SUBLET)
    group = tuple((f"g-{i}", MOVED_OUT + timedelta(days=20 + i // 4)) for i in range(9))
    spread = tuple((f"g-{i}", START + timedelta(days=8 + 8 * i)) for i in range(9))
    assert arrival_events([d for _, d in group]) == 1 and arrival_events([d for _, d in spread]) == 9
    together = stranger_chance(replace(quiet, arrivals=group), aligned=[subtenant()], end=AS_OF,
                               policy=policy.sublet)
    apart = stranger_chance(replace(quiet, arrivals=spread), aligned=[subtenant()], end=AS_OF,
                            policy=policy.sublet)
    assert together <= policy.sublet.max_stranger_chance < apart
    assert judge(policy, replace(quiet, arrivals=group))[1].outcome is Outcome.FLAGGED
    assert judge(policy, replace(quiet, arrivals=spread))[1].outcome is Outcome.CLEAR


def test_faces_tied_between_two_departures_go_to_the_flat_whose_water_rose(policy: Policy) -> None:
    """A group moved into one flat the week a household two floors up took to the side door: both left on
    the same day, so each new face is as near to either. The faces show on the meters of the flat they
    moved into; a household whose use stayed its own keeps none. With no such flat, ties go to both."""
    left = MOVED_OUT
    group = tuple(replace(subtenant(left + timedelta(days=1 + i % 3)), track=f"g-{i}") for i in range(5))
    claims = {"side-door": (left, group), "group-flat": (left, group)}
    assert attribute_strangers(claims) == {"side-door": group, "group-flat": group}
    settled = attribute_strangers(claims, grouped={"group-flat"})
    assert settled == {"side-door": (), "group-flat": group}
    # A face nearer to the side-door household's departure than to the group flat's stays its own.
    own = replace(subtenant(left + timedelta(days=9)), track="own")
    later = {"side-door": (left + timedelta(days=9), (own,)), "group-flat": (left, (*group, own))}
    assert attribute_strangers(later, grouped={"group-flat"})["side-door"] == (own,)


def _crowd(window: float, base: float, *, peers: float = 0.12, size: int = 1) -> Crowding:
    return Crowding(household_size=size, peers=12, window_water=window, window_peers=peers,
                    baseline_water=base, baseline_peers=peers)


def test_a_group_rental_is_a_sublet_even_while_the_tenants_card_is_in_daily_use(policy: Policy) -> None:
    """群租: the tenant of record still comes and goes (no departure), but a one-person lease uses the water
    of ten people, in the window and for the two months before it."""
    s = series(water=1.2)
    vac, sub = SubletRule(policy).evaluate(s, as_of=AS_OF), None
    assert vac.outcome is Outcome.CLEAR
    sub = SubletRule(policy).evaluate(s, as_of=AS_OF, crowd=_crowd(1.2, 1.1))
    assert sub.outcome is Outcome.FLAGGED and {"water_crowding", "flat_lived_in"} <= codes(sub)
    crowd = reason(sub, "water_crowding")
    assert (crowd.value, crowd.baseline) == (1.2, 0.12) and "10.0 times" in crowd.text
    # Relatives staying for the window only: the baseline days before were ordinary.
    assert SubletRule(policy).evaluate(s, as_of=AS_OF, crowd=_crowd(1.2, 0.13)).outcome is Outcome.CLEAR
    # A busy household, twice its peers: within what one lease's people can use.
    assert SubletRule(policy).evaluate(s, as_of=AS_OF, crowd=_crowd(0.25, 0.24)).outcome is Outcome.CLEAR
    # An empty flat with a leak is not crowded, whatever its meter says.
    leak = empty_since(START, water=1.2, water_hours=0)  # a constant flow: no event above the floor
    assert SubletRule(policy).evaluate(leak, as_of=AS_OF, crowd=_crowd(1.2, 1.2)).outcome is Outcome.CLEAR


def test_a_group_in_a_frugal_households_flat_is_found_against_its_own_record(policy: Policy) -> None:
    """A couple that taps its card (no face enrolled) and uses 0.12 m³ a day, half of what the estate's
    couples use (0.22). Seven weeks ago the water rose to 0.40: 1.8 times its peers, under the crowding
    bar, but 3.3 times its own. A group (群租) lives there; relatives on a holiday visit leave within weeks,
    and a rise to twice its own, or to no more than a household's use, is a household's."""
    rule = SubletRule(policy)
    card = dict(entries=2, faces=0)

    def flat(water: float, since_days: int) -> UnitSeries:
        return series(change_from=AS_OF - timedelta(days=since_days - 1), water=water, **card)

    def judged(s: UnitSeries, window: float, base: float, peers: float = 0.22) -> RuleFinding:
        return rule.evaluate(replace(s, days=tuple(d._replace(tenant_face_entries=0) for d in s.days)),
                             as_of=AS_OF, crowd=_crowd(window, base, peers=peers, size=2))

    frugal = replace(flat(0.4, 49), days=tuple(
        d if d.day >= AS_OF - timedelta(days=48) else d._replace(water_m3=0.12, water_active_m3=0.12)
        for d in flat(0.4, 49).days))
    group = judged(frugal, 0.4, 0.3)
    assert group.outcome is Outcome.FLAGGED and {"water_grown", "water_crowding"} <= codes(group)
    grown = reason(group, "water_grown")
    assert (grown.value, grown.baseline) == (0.4, 0.12) and "3.3 times" in grown.text
    assert "more people live here than the lease lists" not in reason(group, "water_crowding").text
    # Four weeks of it: a long visit, not yet a group (the bar holds for 42 days, window and before).
    visit = replace(frugal, days=tuple(
        d._replace(water_m3=0.12, water_active_m3=0.12) if d.day < AS_OF - timedelta(days=27) else d
        for d in frugal.days))
    assert judged(visit, 0.4, 0.2).outcome is Outcome.CLEAR
    # Twice its own use: a household's (a guest, the season).
    twice = replace(frugal, days=tuple(d._replace(water_m3=0.24, water_active_m3=0.24)
                                       if d.day >= AS_OF - timedelta(days=48) else d for d in frugal.days))
    assert judged(twice, 0.24, 0.2, peers=0.12).outcome is Outcome.CLEAR
    # The same rise where the estate's couples use 0.3: no more than a household's use, not asked.
    assert judged(frugal, 0.4, 0.3, peers=0.3).outcome is Outcome.CLEAR
    # A leak: 0.28 m³ a day flowing day and night, the couple's own use (above the floor) unchanged.
    leak = replace(frugal, days=tuple(d._replace(water_active_m3=0.12) for d in frugal.days))
    assert judged(leak, 0.4, 0.3).outcome is Outcome.CLEAR


def test_a_household_with_someone_living_in_is_no_group_rental_but_the_same_water_without_the_tenants_is(
    policy: Policy,
) -> None:
    """A single tenant whose face is seen at the gate, with a carer living in: three times the water of the
    estate's singles, which a heavy user or a second person reaches. Not a group rental (群租). The same
    water in a flat whose tenant is gone from the gate (drop-bys at most), or where only the tenant's card
    is used: others live there."""
    rule = SubletRule(policy)
    present = series(water=0.36)  # the factory's household enters on most days
    carer = rule.evaluate(present, as_of=AS_OF, crowd=_crowd(0.36, 0.36))
    assert carer.outcome is Outcome.CLEAR
    group = rule.evaluate(present, as_of=AS_OF, crowd=_crowd(0.6, 0.6))  # five times: a group
    assert group.outcome is Outcome.FLAGGED and "tenants_present" in codes(group)
    gone = series(change_from=START, water=0.36, entries=0)
    gone = with_days(gone, {AS_OF - timedelta(days=d): {"water": 0.36, "entries": 1} for d in (3, 40)})
    others = rule.evaluate(gone, as_of=AS_OF, crowd=_crowd(0.36, 0.36))
    assert others.outcome is Outcome.FLAGGED and "tenants_absent" in codes(others)
    assert reason(others, "tenants_absent").value == 1
    # Only the tenant's card at the gate, never a face: it says nothing of who carries it.
    card = series(change_from=START, water=0.36, faces=0)
    held = rule.evaluate(card, as_of=AS_OF, crowd=_crowd(0.36, 0.36))
    assert held.outcome is Outcome.FLAGGED and "tenants_card_only" in codes(held)


def test_a_household_that_mixes_card_and_face_as_it_always_did_is_present_for_the_crowding_bar(
    policy: Policy,
) -> None:
    """Three face days in the window are a drop-by's where others use the card on every other day, but the
    household itself where it showed its face on about that share of its entry days all along (a pensioner
    who mostly taps the card): three times its peers' water is then a heavy user or a carer, not a group."""
    rule = SubletRule(policy)
    window = [AS_OF - timedelta(days=k) for k in range(21)]
    faces_in_window = set(window[2::7])  # 3 of the window's 21 entry days

    def mixed(face_day: Callable[[date, int], bool]) -> UnitSeries:
        s = series(water=0.36)
        return with_days(s, {d.day: {"water": 0.36, "entries": 1, "faces": int(face_day(d.day, i))}
                             for i, d in enumerate(s.days)})

    always = mixed(lambda d, i: d in faces_in_window if d in window else i % 5 == 0)  # a face 1 day in 5
    assert face_days_between(always.days, start=window[-1], end=AS_OF) == 3
    kept = rule.evaluate(always, as_of=AS_OF, crowd=_crowd(0.36, 0.36))
    assert kept.outcome is Outcome.CLEAR
    # The same window after a face on every entry day before: the card is someone else's now.
    changed = mixed(lambda d, i: d in faces_in_window if d in window else True)
    held = rule.evaluate(changed, as_of=AS_OF, crowd=_crowd(0.36, 0.36))
    assert held.outcome is Outcome.FLAGGED and "tenants_card_only" in codes(held)
    # A drop-by's faces alone (no more entry days than drop-bys give) never make a household present.
    drops = with_days(series(change_from=WINDOW_START, water=0.36, entries=0),
                      {d: {"water": 0.36, "entries": 1} for d in window[2::7]})
    assert rule.evaluate(drops, as_of=AS_OF, crowd=_crowd(0.36, 0.36)).outcome is Outcome.FLAGGED
    # Seven card entries and no face in the window, after a face on one entry day in three: ordinary for
    # that household (a 1 in 20 chance), which is present; after a face on every entry day, a card lent out.
    card_week = set(window[::3])  # 7 entry days

    def weekly(face_day: Callable[[date, int], bool]) -> UnitSeries:
        s = series(water=0.36)
        return with_days(s, {d.day: {"water": 0.36, "entries": int(d.day in card_week or d.day not in window),
                                     "faces": int(d.day not in window and face_day(d.day, i))}
                             for i, d in enumerate(s.days)})

    third = weekly(lambda d, i: i % 3 == 0)
    assert face_days_between(third.days, start=window[-1], end=AS_OF) == 0
    assert rule.evaluate(third, as_of=AS_OF, crowd=_crowd(0.36, 0.36)).outcome is Outcome.CLEAR
    lent = rule.evaluate(weekly(lambda d, i: True), as_of=AS_OF, crowd=_crowd(0.36, 0.36))
    assert lent.outcome is Outcome.FLAGGED  # (its faces vanished: the departure path says so first)
    # A household that never showed a face says nothing by its card: the card-only bar.
    never = weekly(lambda d, i: False)
    assert rule.evaluate(never, as_of=AS_OF, crowd=_crowd(0.36, 0.36)).outcome is Outcome.FLAGGED


def test_a_card_without_faces_since_before_the_window_is_not_the_household_present(policy: Policy) -> None:
    """A household showed its face on one entry day in three for four months; for the last five weeks only
    its card, every day, and the flat uses three times its peers' water. Weighed from the window's start,
    the weeks without a face before it lower the household's habit until three more weeks look like chance
    (present: the bar of 4). Its faces vanished five weeks ago, as the departure path judges it: the card
    is someone else's, and the card-only bar (2.5) applies (a group rental on the tenant's card). The run
    alone, no face placed and the water unchanged, is no lent card: rarer than 1 in 10,000 only on its own
    first day, not on whichever day of the record such a run could have begun."""
    from tests.models.factories import day  # one day of a longer record than series() makes

    left = AS_OF - timedelta(days=34)
    days = tuple(day(AS_OF - timedelta(days=k), water=0.36, entries=1,
                     faces=int(AS_OF - timedelta(days=k) < left and k % 3 == 0)) for k in range(159, -1, -1))
    s = UnitSeries(unit_id="E01-1-0101", estate_id="E01", days=days)
    rule = SubletRule(policy)
    ctx = rule_context(s, as_of=AS_OF, policy=policy)
    found = rule._left(s, ctx, faces_only=True)
    assert found is not None and abs((found[0] - left).days) <= 3
    assert face_change_chance(s.days, left=ctx.start, end=ctx.end) > policy.sublet.max_face_change_chance
    assert rule.evaluate(s, as_of=AS_OF).outcome is Outcome.CLEAR  # no lent card by the run alone
    crowded = rule.evaluate(s, as_of=AS_OF, crowd=_crowd(0.36, 0.36))
    assert crowded.outcome is Outcome.FLAGGED and "tenants_card_only" in codes(crowded)


def test_crowding_compares_households_of_the_same_registered_size_in_the_same_estate() -> None:
    units = {f"E1-{i}": ("E1", 1, 0.1 + i / 1000, 0.1) for i in range(6)}
    units |= {f"E1-big-{i}": ("E1", 5, 0.6, 0.6) for i in range(6)}
    units |= {"E1-x": ("E1", 1, 0.9, 0.8), "E2-x": ("E2", 1, 0.9, 0.8), "E1-y": ("E1", None, 0.9, 0.8)}
    out = crowding(units, min_peers=5)
    assert round(out["E1-x"].ratio, 1) == 8.0  # against the one-person households, not the families of five
    assert round(out["E1-big-0"].ratio, 1) == 1.0
    assert "E2-x" not in out and "E1-y" not in out  # too few peers; size unknown


def test_a_face_supports_a_distant_departure_only_once_a_closer_one_would_have_shown(policy: Policy) -> None:
    """A household took to the side door; 16 days later a subtenant moves in elsewhere in the building,
    whose tenants left 3 days before that. Judged while the subtenant's own flat cannot show its departure
    yet, the face must not go to the side-door household (attribute_strangers settles it later)."""
    rule = SubletRule(policy)
    arrived = AS_OF - timedelta(days=16)  # 17 days around: 3 + 14, what the closer departure needs
    face = StrangerTrack("s-9", first_seen=arrived, days_in_window=15, days_seen=17)
    s = series(tracks=(face,))
    side_door, subtenants_flat = arrived - timedelta(days=16), arrived - timedelta(days=3)
    assert rule.aligned(s, left=subtenants_flat, end=AS_OF) == (face,)
    assert rule.aligned(s, left=side_door, end=AS_OF) == ()
    # Long enough after, a closer departure would have shown: the attribution decides between them.
    later = AS_OF + timedelta(days=13)
    assert rule.aligned(s, left=side_door, end=later - timedelta(days=1)) == ()
    assert rule.aligned(s, left=side_door, end=later) == (face,)


def test_a_pensioner_who_goes_out_twice_a_week_has_not_left_after_weeks_indoors(policy: Policy) -> None:
    """Entries on one gate day in four for months, then 19 days without: 0.75^19, about 4 in 1,000,
    which some pensioner in an estate shows every few weeks. A household that entered every day has left
    after the same weeks, and a new face moving in then makes it a sublet."""
    rule = SubletRule(policy)
    indoors_from = AS_OF - timedelta(days=18)
    twice_a_week = {d.day: {**SUBLET, "strangers": 0, "entries": 1 if i % 4 == 0 else 0}
                    for i, d in enumerate(series().days) if d.day < indoors_from}
    moved_in = (subtenant(indoors_from + timedelta(days=1)),)
    pensioner = with_days(series(change_from=indoors_from, tracks=moved_in, **SUBLET), twice_a_week)
    chance = presence_change_chance(pensioner.days, left=indoors_from, end=AS_OF)
    assert chance > policy.sublet.max_change_chance
    assert rule.evaluate(pensioner, as_of=AS_OF).outcome is Outcome.CLEAR
    daily = series(change_from=indoors_from, tracks=moved_in, **SUBLET)
    assert presence_change_chance(daily.days, left=indoors_from, end=AS_OF) < 1e-6
    assert rule.evaluate(daily, as_of=AS_OF).outcome is Outcome.FLAGGED


def test_a_household_that_left_its_flat_empty_is_not_a_sublet_by_its_days_away_from_the_gate(
    policy: Policy,
) -> None:
    """Entries on every other day, then none for nine lived-in days (staying in), then the flat empty for
    eight: the gate alone shows a fortnight's absence, but the days the flat stood empty say nothing about
    who lives there, and nine days indoors are no departure. The same gate record over a flat lived in
    throughout, with a new face as the entries stopped, is a sublet."""
    rule = SubletRule(policy)
    stopped = AS_OF - timedelta(days=16)
    empty_from = AS_OF - timedelta(days=7)
    every_other = {d.day: {"entries": 1 if i % 2 == 0 else 0} for i, d in enumerate(series().days)
                   if d.day < stopped}
    indoors = {d: {**SUBLET, "strangers": 1} for d in days_between(stopped, empty_from - timedelta(days=1))}
    empty = {d: dict(elec=1.2, water=0.0, gas=0.0, entries=0, strangers=1)
             for d in days_between(empty_from, AS_OF)}
    newcomer = (subtenant(stopped, days_seen=15),)
    left_empty = with_days(with_days(series(tracks=newcomer), every_other), {**indoors, **empty})
    assert rule.evaluate(left_empty, as_of=AS_OF).outcome is Outcome.CLEAR
    lived_on = with_days(with_days(series(tracks=newcomer), every_other),
                         {d: {**SUBLET, "strangers": 1} for d in days_between(stopped, AS_OF)})
    assert rule.evaluate(lived_on, as_of=AS_OF).outcome is Outcome.FLAGGED


def test_a_card_alone_must_be_stranger_than_a_card_with_a_new_face(policy: Policy) -> None:
    """Faces on three entry days in five for months, then three weeks of the card every other day and no
    face: a run that happens to some household every few weeks (faces come and go in runs), but less
    often than the ordinary departure test allows. With a new recurring face as the faces stopped, that
    is two signs and a sublet; the card alone needs the stricter ``lent_card_change_chance``, and needs it
    on whichever day of the record such a run had begun (detection asks every day: a household's rarest
    run of the half-year turns up somewhere), so six weeks of it, not a month."""
    rule = SubletRule(policy)
    habit = {d.day: {"entries": 1, "faces": 1 if i % 5 < 3 or (WINDOW_START - d.day).days <= 3 else 0}
             for i, d in enumerate(series().days) if d.day < WINDOW_START}  # faces up to the change

    def card_since(first: date, tracks: tuple[Any, ...] = ()) -> UnitSeries:
        card = {d: {**SUBLET, "strangers": 0, "entries": 1 if (AS_OF - d).days % 2 == 0 else 0, "faces": 0}
                for d in days_between(first, AS_OF)}
        return with_days(with_days(series(tracks=tracks), habit), card)

    fortnight = card_since(WINDOW_START)
    chance = face_change_chance(fortnight.days, left=WINDOW_START, end=AS_OF)
    assert policy.sublet.lent_card_change_chance < chance <= policy.sublet.max_face_change_chance
    assert rule.evaluate(fortnight, as_of=AS_OF).outcome is Outcome.CLEAR
    with_face = card_since(WINDOW_START, (subtenant(WINDOW_START + timedelta(days=2), days_seen=16),))
    assert rule.evaluate(with_face, as_of=AS_OF).outcome is Outcome.FLAGGED
    left = AS_OF - timedelta(days=32)
    month = card_since(left)
    chance = face_change_chance(month.days, left=left, end=AS_OF)
    starts = sum(1 for d in month.days if d.day < left)  # gate days on which such a run could have begun
    assert chance <= policy.sublet.lent_card_change_chance < chance * starts
    assert rule.evaluate(month, as_of=AS_OF).outcome is Outcome.CLEAR
    six_weeks = card_since(AS_OF - timedelta(days=44))
    assert rule.evaluate(six_weeks, as_of=AS_OF).outcome is Outcome.FLAGGED


def test_faces_there_when_the_record_began_neither_line_up_with_a_departure_nor_make_a_group(
        policy: Policy) -> None:
    """A record that began ten days before the tenants left: six of the building's residents are first
    seen in its first week (they were there before it began), the subtenant the day after the departure.
    Taken for arrivals, the first week's faces make a group moving in, the subtenant one of it, and the
    departure has no face of its own; or, nearer it, they pass for its subtenants (seed 80 of the
    appliance model: twelve faces "first seen from" the record's first day given to a departure in its
    second week, and a flat missed). Only the subtenant lines up."""
    rule = SubletRule(policy)
    left = START + timedelta(days=10)
    there = tuple(replace(subtenant(START + timedelta(days=4 + i % 3), days_seen=70), track=f"r-{i}")
                  for i in range(6))
    moved_in = replace(subtenant(left + timedelta(days=1), days_seen=60), track="s-1")
    s = series(change_from=left, tracks=(*there, moved_in), **SUBLET)
    assert rule.aligned(s, left=left, end=AS_OF) == (moved_in,)
    # Seen from the eighth day on, the same faces are arrivals: a group, and no one flat's.
    later = tuple(replace(t, first_seen=t.first_seen + timedelta(days=5)) for t in there)
    assert rule.aligned(replace(s, strangers=(*later, moved_in)), left=left, end=AS_OF) == ()


def test_a_group_that_moved_in_together_is_not_a_side_door_households_subtenants(policy: Policy) -> None:
    """Five new faces through the only entrance within three days, as a household took to the side door:
    a group rental elsewhere in the building. They support that household's departure only if its own
    water rose to a group's."""
    rule = SubletRule(policy)
    group = tuple(replace(subtenant(MOVED_OUT + timedelta(days=2 + i % 3)), track=f"g-{i}") for i in range(5))
    s = series(change_from=MOVED_OUT, tracks=group, **SUBLET)
    assert rule.aligned(s, left=MOVED_OUT, end=AS_OF) == ()
    _, sub = judge(policy, s)
    assert sub.outcome is Outcome.CLEAR and codes(sub) == {"no_new_faces"}
    household = Crowding(household_size=2, peers=12, window_water=0.25, window_peers=0.24,
                         baseline_water=0.24, baseline_peers=0.24)
    assert rule.aligned(s, left=MOVED_OUT, end=AS_OF, crowd=household) == ()
    crowded = replace(household, window_water=0.9)
    assert rule.aligned(s, left=MOVED_OUT, end=AS_OF, crowd=crowded) == group
    assert rule.evaluate(s, as_of=AS_OF, crowd=crowded).outcome is Outcome.FLAGGED
    # One face, or a floor camera that places the faces on the unit's own floor: as before.
    one = series(change_from=MOVED_OUT, tracks=group[:1], **SUBLET)
    assert rule.aligned(one, left=MOVED_OUT, end=AS_OF) == group[:1]
    on_floor = replace(s, strangers_scope="floor")
    assert rule.aligned(on_floor, left=MOVED_OUT, end=AS_OF) == group
    # A family of five replacing a lease of four is no group: the faces count as before.
    assert rule.aligned(replace(s, household_size=4), left=MOVED_OUT, end=AS_OF) == group
