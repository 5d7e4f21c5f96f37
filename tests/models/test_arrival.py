"""A group that moved in beside its tenant (models/arrival.py): its faces came as the flat's water rose."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from anju.models.arrival import group_with
from anju.models.features import Crowding, StrangerTrack, UnitSeries
from anju.models.rules import Outcome, Policy
from anju.models.sublet import SubletRule
from tests.models.factories import AS_OF, series

ROSE = AS_OF - timedelta(days=40)  # the day the water rose from 0.3 to 0.75 m³ a day
# Three people on the lease, 0.35 m³ a day for households of three in the estate: the flat's 0.75 is a
# group's (over 1.5 times theirs) but under the crowding bars (2.5, and 4 with the tenants' faces seen).
CROWD = Crowding(household_size=3, peers=12, window_water=0.75, window_peers=0.35, baseline_water=0.6,
                 baseline_peers=0.35)


@pytest.fixture
def policy() -> Policy:
    return Policy.load()


def face(k: int, first_seen_after_rise: int = 1) -> StrangerTrack:
    first = ROSE + timedelta(days=first_seen_after_rise + k % 3)
    return StrangerTrack(f"g-{k}", first_seen=first, days_in_window=17, days_seen=(AS_OF - first).days - 3)


def flat() -> UnitSeries:
    """The tenants' faces and card at the gate every day throughout; the water up from ROSE."""
    return replace(series(change_from=ROSE, water=0.75), household_size=3)


def judge(policy: Policy, claimed: tuple[StrangerTrack, ...], *, crowd: Crowding = CROWD,
          s: UnitSeries | None = None) -> tuple[Outcome, set[str]]:
    s = s or flat()
    found = SubletRule(policy).evaluate(replace(s, strangers=claimed), as_of=AS_OF, claimed=claimed,
                                        crowd=crowd)
    return found.outcome, {r.code for r in found.reasons}


def test_a_group_that_moved_in_beside_its_tenant_is_a_group_rental(policy: Policy) -> None:
    """Five faces (two more than the lease lists) came within three days as the water rose, and stay: the
    tenant never left, so there is no departure, and the water alone is under every crowding bar."""
    outcome, codes = judge(policy, tuple(face(k) for k in range(5)))
    assert outcome is Outcome.FLAGGED
    assert codes == {"group_moved_in", "water_crowding", "flat_lived_in"}
    # Without the faces (a household that uses a lot of water since its child came home), nothing.
    assert judge(policy, ())[0] is Outcome.CLEAR


def test_what_a_group_that_moved_in_needs(policy: Policy) -> None:
    # A family's number of faces (four: one more than the lease lists) is relatives, not a group.
    assert judge(policy, tuple(face(k) for k in range(4)))[0] is Outcome.CLEAR
    # Faces that came a month after the water rose did not come with it.
    assert judge(policy, tuple(face(k, first_seen_after_rise=30) for k in range(5)))[0] is Outcome.CLEAR
    # Water under a group's (1.4 times the peers'): no group lives there, whatever faces came.
    low = replace(CROWD, window_water=0.49)
    assert judge(policy, tuple(face(k) for k in range(5)), crowd=low)[0] is Outcome.CLEAR
    # The same water on the whole record: no day on which people moved in.
    always = replace(series(change_from=AS_OF - timedelta(days=200), water=0.75), household_size=3)
    assert judge(policy, tuple(face(k) for k in range(5)), s=always)[0] is Outcome.CLEAR


def test_a_group_is_faces_first_seen_within_days_of_each_other() -> None:
    spread = [face(0), face(1), face(2, first_seen_after_rise=12), face(3, first_seen_after_rise=13)]
    assert [t.track for t in group_with(spread, days=7)] == ["g-0", "g-1"]
    assert len(group_with(spread, days=20)) == 4
    assert group_with([], days=7) == ()
