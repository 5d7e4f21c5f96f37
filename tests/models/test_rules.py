"""Vacancy and sublet rules on hand-made series, including the hard negatives they must survive."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from models.features import PeerStats, StrangerTrack, UnitSeries
from models.rules import POLICY_PATH, RULE_VERSION, Outcome, Policy, SubletRule, VacancyRule, Verdict
from tests.models.factories import AS_OF, series


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load()


def judge(policy: Policy, s: UnitSeries, peers: PeerStats | None = None) -> tuple[Verdict, Verdict]:
    return (
        VacancyRule(policy).evaluate(s, as_of=AS_OF, peers=peers),
        SubletRule(policy).evaluate(s, as_of=AS_OF, peers=peers),
    )


def codes(v: Verdict) -> set[str]:
    return {r.code for r in v.reasons}


def test_policy_carries_the_legal_horizon_and_a_versioned_digest(policy: Policy, tmp_path: Path) -> None:
    assert policy.legal_idle_horizon_days == 180
    assert policy.window_days == 21
    assert policy.version.startswith(RULE_VERSION + "+p")
    changed = tmp_path / "p.yaml"
    changed.write_text(POLICY_PATH.read_text().replace("base_load_kwh: 1.2", "base_load_kwh: 1.5"))
    assert Policy.load(changed).version != policy.version


def test_vacant_unit_is_flagged_with_reasons(policy: Policy) -> None:
    empty_since = AS_OF - timedelta(days=29)
    vac, sub = judge(policy, series(change_from=empty_since, elec=0.6, water=0.0, gas=0.0, entries=0,
                                    strangers=0))
    assert vac.outcome is Outcome.FLAGGED and 0 < vac.score <= 1
    assert {"no_tenant_entries", "electricity_base_load", "water_near_zero", "idle_streak"} <= codes(vac)
    streak = next(r for r in vac.reasons if r.code == "idle_streak")
    assert streak.value == 30 and streak.baseline == 180 and streak.unit == "days"
    elec = next(r for r in vac.reasons if r.code == "electricity_base_load")
    assert elec.value == 0.6 and elec.baseline == 8.0 and "kWh" in elec.text
    assert all(set(r.to_dict()) == {"code", "text", "value", "baseline", "unit"} for r in vac.reasons)
    assert vac.window_start == AS_OF - timedelta(days=20) and vac.window_end == AS_OF
    assert sub.outcome is Outcome.CLEAR


def test_base_load_limit_scales_with_own_baseline(policy: Policy) -> None:
    rule = VacancyRule(policy)
    assert rule.base_load_limit(None) == 1.2
    assert rule.base_load_limit(20.0) == 5.0  # a big household's fridge and standby


def test_sublet_needs_new_faces_as_the_tenants_stop_appearing(policy: Policy) -> None:
    moved_out = AS_OF - timedelta(days=30)
    strangers = (StrangerTrack("s-17", first_seen=moved_out + timedelta(days=2), days_in_window=15),)
    # Same meters, no new faces: tenants who took to the car-park door, not a sublet.
    s = series(change_from=moved_out, elec=7.0, water=0.25, entries=0, strangers=3)
    vac, sub = judge(policy, s)
    assert sub.outcome is Outcome.CLEAR and "no_new_faces" in codes(sub)
    _, with_strangers = judge(
        policy, series(change_from=moved_out, elec=7.0, water=0.25, entries=0, strangers=3, tracks=strangers)
    )
    assert with_strangers.outcome is Outcome.FLAGGED
    assert {"no_tenant_entries", "electricity_in_use", "water_in_use", "tenant_presence_ended",
            "recurring_strangers"} <= codes(with_strangers)
    assert vac.outcome is Outcome.CLEAR


def test_sublet_compares_to_peers_when_use_is_lower_than_own_history(policy: Policy) -> None:
    moved_out = AS_OF - timedelta(days=30)
    new = (StrangerTrack("s-9", first_seen=moved_out + timedelta(days=1), days_in_window=15),)
    s = series(change_from=moved_out, elec=3.0, water=0.12, entries=0, tracks=new)
    _, alone = judge(policy, s)
    assert alone.outcome is Outcome.CLEAR  # 3.0 < 0.5 x 8.0 of its own history
    _, with_peers = judge(policy, s, PeerStats("E01", units=40, elec_median=5.0, water_median=0.2))
    assert with_peers.outcome is Outcome.FLAGGED


def test_normal_unit_is_not_flagged(policy: Policy) -> None:
    vac, sub = judge(policy, series())
    assert vac.outcome is Outcome.CLEAR and sub.outcome is Outcome.CLEAR


def test_ten_days_of_travel_is_not_flagged(policy: Policy) -> None:
    s = series(change_from=AS_OF - timedelta(days=9), elec=0.7, water=0.0, entries=0)
    vac, sub = judge(policy, s)
    assert vac.outcome is Outcome.CLEAR and sub.outcome is Outcome.CLEAR


def test_three_week_meter_outage_is_no_verdict_not_vacancy(policy: Policy) -> None:
    s = series(elec=None, water=None, gas=None, entries=0)
    vac, sub = judge(policy, s)
    assert vac.outcome is Outcome.NO_VERDICT and "low_coverage" in codes(vac)
    assert sub.outcome is Outcome.NO_VERDICT


def test_partial_outage_counts_only_known_days(policy: Policy) -> None:
    # 8 unknown days and 13 lived-in ones: the unknown days must not drag the median to zero.
    s = series(change_from=AS_OF - timedelta(days=7), elec=None, water=None)
    vac, sub = judge(policy, s)
    assert vac.outcome is Outcome.CLEAR and sub.outcome is Outcome.CLEAR


def test_silent_gate_is_not_a_sublet(policy: Policy) -> None:
    s = series(change_from=AS_OF - timedelta(days=30), entries=0, strangers=0, gate=0)
    vac, sub = judge(policy, s)
    assert sub.outcome is Outcome.NO_VERDICT and "gate_silent" in codes(sub)
    assert vac.outcome is Outcome.NO_VERDICT


def test_side_entrance_household_is_not_a_sublet(policy: Policy) -> None:
    s = series(change_from=AS_OF - timedelta(days=80), entries=0)
    _, sub = judge(policy, s)
    assert sub.outcome is Outcome.CLEAR and "no_new_faces" in codes(sub)


def test_elderly_household_with_tiny_use_is_not_vacant(policy: Policy) -> None:
    s = series(change_from=AS_OF - timedelta(days=80), elec=1.0, water=0.06, entries=1)
    vac, _ = judge(policy, s)
    assert vac.outcome is Outcome.CLEAR


def test_new_lease_gets_no_verdict(policy: Policy) -> None:
    s = series(elec=0.5, water=0.0, entries=0, lease_start=AS_OF - timedelta(days=10))
    vac, sub = judge(policy, s)
    assert vac.outcome is Outcome.NO_VERDICT and "new_lease" in codes(vac)
    assert sub.outcome is Outcome.NO_VERDICT


def test_vacant_since_before_the_data_uses_absolute_limits(policy: Policy) -> None:
    s = series(change_from=AS_OF - timedelta(days=80), elec=0.8, water=0.0, entries=0, strangers=0)
    vac, sub = judge(policy, s)
    assert vac.outcome is Outcome.FLAGGED
    assert sub.outcome is Outcome.CLEAR


def test_vacancy_with_unknown_water_is_flagged_with_lower_score(policy: Policy) -> None:
    since = AS_OF - timedelta(days=29)
    dry, _ = judge(policy, series(change_from=since, elec=0.6, water=0.0, entries=0))
    unknown, _ = judge(policy, series(change_from=since, elec=0.6, water=None, entries=0))
    assert unknown.outcome is Outcome.FLAGGED and "water_unknown" in codes(unknown)
    assert unknown.score < dry.score


def test_strangers_who_were_always_there_are_not_support(policy: Policy) -> None:
    moved_out = AS_OF - timedelta(days=30)
    old = (StrangerTrack("s-1", first_seen=AS_OF - timedelta(days=80), days_in_window=15),)
    _, sub = judge(policy, series(change_from=moved_out, elec=7.0, water=0.25, entries=0, tracks=old))
    assert sub.outcome is Outcome.CLEAR and "no_new_faces" in codes(sub)


def test_three_weeks_of_travel_is_not_vacancy_but_a_fourth_idle_week_is(policy: Policy) -> None:
    trip = series(change_from=AS_OF - timedelta(days=20), elec=0.7, water=0.0, entries=0)
    vac, _ = judge(policy, trip)
    assert vac.outcome is Outcome.CLEAR and "idle_streak_short" in codes(vac)
    longer, _ = judge(policy, series(change_from=AS_OF - timedelta(days=27), elec=0.7, water=0.0, entries=0))
    assert longer.outcome is Outcome.FLAGGED


def test_drop_by_visit_does_not_reset_the_idle_streak(policy: Policy) -> None:
    s = series(change_from=AS_OF - timedelta(days=40), elec=0.8, water=0.0, entries=0)
    visit = AS_OF - timedelta(days=10)
    days = tuple(replace(d, tenant_entries=1, elec_kwh=1.1, water_m3=0.02) if d.day == visit else d
                 for d in s.days)
    vac, _ = judge(policy, replace(s, days=days))
    assert vac.outcome is Outcome.FLAGGED
    assert next(r for r in vac.reasons if r.code == "idle_streak").value == 40  # the visit day not counted


def test_leaking_cistern_in_an_empty_flat_is_vacancy_but_a_household_is_not(policy: Policy) -> None:
    since = AS_OF - timedelta(days=40)
    s = series(change_from=since, elec=0.8, water=0.2, entries=0, strangers=0)
    leaking = replace(s, days=tuple(replace(d, water_night_m3_h=0.008 if d.day >= since else 0.0)
                                    for d in s.days))
    vac, sub = judge(policy, leaking)
    assert vac.outcome is Outcome.FLAGGED and "water_constant_flow" in codes(vac)
    assert sub.outcome is Outcome.CLEAR
    quiet_nights = replace(s, days=tuple(replace(d, water_night_m3_h=0.0) for d in s.days))
    vac, _ = judge(policy, quiet_nights)
    assert vac.outcome is Outcome.CLEAR
