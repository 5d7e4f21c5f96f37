"""New faces in an entrance-only building go to the flat whose occupants changed (hand-made units)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from anju.hub.detection.buildings import claimed_strangers
from anju.models.activity import water_shift
from anju.models.features import StrangerTrack, UnitSeries
from anju.models.rules import Outcome, Policy, rule_context
from anju.models.strangers import attribute_strangers
from anju.models.sublet import SubletRule
from tests.models.factories import AS_OF, series, with_days

LEFT = AS_OF - timedelta(days=40)  # both households stopped passing the gate about then
ACT = Policy.load().activity


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load()


def _track(name: str, first_seen: date) -> StrangerTrack:
    return StrangerTrack(name, first_seen=first_seen, days_in_window=15, days_seen=30)


def _flat(unit_id: str, *, left: date, water_after: float, tracks: tuple[StrangerTrack, ...]) -> UnitSeries:
    """A household of two at 0.30 m³ a day that stops entering on ``left``; from then the flat uses
    ``water_after`` a day (the same household by the side door, or the people who moved in)."""
    return replace(series(unit_id=unit_id, change_from=left, tracks=tracks, water=water_after, entries=0,
                          strangers=3),
                   building="1", household_size=2)


def test_water_shift_reads_a_new_households_level_and_not_a_quiet_week() -> None:
    same = series(change_from=LEFT, water=0.3, entries=0)
    others = series(change_from=LEFT, water=0.12, entries=0)
    assert water_shift(same.days, left=LEFT, policy=ACT) == pytest.approx(1.0)
    assert water_shift(others.days, left=LEFT, policy=ACT) == pytest.approx(0.4)
    # A few days of moving out and in (an empty flat) are left out of the comparison.
    moving = series(change_from=LEFT, water=0.3, entries=0)
    moving = replace(moving, days=tuple(d._replace(water_m3=0.0) if abs((d.day - LEFT).days) < 3 else d
                                        for d in moving.days))
    assert water_shift(moving.days, left=LEFT, policy=ACT) == pytest.approx(1.0)
    # Nor does a fortnight's trip after it (the flat empty: fridge and standby, no water) lower the level.
    trip = {LEFT + timedelta(days=k): dict(elec=0.6, water=0.0, gas=0.0, entries=0) for k in range(5, 19)}
    assert water_shift(with_days(same, trip).days, left=LEFT, policy=ACT) == pytest.approx(1.0)
    # Without ten days of water data on each side there is nothing to say.
    gone = replace(same, days=tuple(d._replace(water_m3=None) if d.day > LEFT else d for d in same.days))
    assert water_shift(gone.days, left=LEFT, policy=ACT) is None


def test_a_face_goes_to_the_flat_whose_water_changed_over_a_slightly_nearer_side_door_departure() -> None:
    face = _track("s-1", LEFT + timedelta(days=3))
    claims = {"side-door": (LEFT + timedelta(days=3), (face,)), "sublet": (LEFT, (face,))}
    assert attribute_strangers(claims) == {"side-door": (face,), "sublet": ()}
    moved = attribute_strangers(claims, moved={"sublet"}, move_gap_days=3)
    assert moved == {"side-door": (), "sublet": (face,)}  # 3 days nearer is no better than a move
    # Much nearer, the face stays with the side-door household: timing still counts.
    far = {"side-door": (LEFT + timedelta(days=3), (face,)), "sublet": (LEFT - timedelta(days=1), (face,))}
    assert attribute_strangers(far, moved={"sublet"}, move_gap_days=3) == {"side-door": (face,), "sublet": ()}
    # Where no flat's water changed, the nearest departure keeps the face, as before.
    assert attribute_strangers(claims, moved=(), move_gap_days=3) == attribute_strangers(claims)


def test_side_door_household_and_sublet_leaving_the_same_week(policy: Policy) -> None:
    """A household took to the side door two days after another flat's tenants sublet it: the subtenants'
    faces at the entrance are nearer to the side-door household's last entry, but its water stayed its
    own while the sublet flat's fell to the one person now living there. The sublet is flagged; the side-door
    household is not."""
    faces = (_track("s-1", LEFT + timedelta(days=2)), _track("s-2", LEFT + timedelta(days=3)))
    sublet = _flat("E01-1-0801", left=LEFT, water_after=0.12, tracks=faces)
    side_door = _flat("E01-1-1203", left=LEFT + timedelta(days=2), water_after=0.3, tracks=faces)
    rule = SubletRule(policy)
    units = [sublet, side_door]
    contexts = {s.unit_id: rule_context(s, as_of=AS_OF, policy=policy) for s in units}
    claimed = claimed_strangers(units, contexts, rule, crowds={})
    assert claimed == {sublet.unit_id: faces, side_door.unit_id: ()}
    verdicts = {s.unit_id: rule.evaluate(s, as_of=AS_OF, context=contexts[s.unit_id],
                                         claimed=claimed[s.unit_id]) for s in units}
    assert verdicts[sublet.unit_id].outcome is Outcome.FLAGGED
    assert verdicts[side_door.unit_id].outcome is Outcome.CLEAR
    # The inspector is told what the meters showed: the level before and after, in m³ a day.
    changed = next(r for r in verdicts[sublet.unit_id].reasons if r.code == "water_level_changed")
    assert (changed.baseline, changed.value, changed.unit) == (0.3, 0.12, "m3/day")
    # A sublet whose water stayed its tenant's level says nothing of it.
    alone = _flat("E01-1-0802", left=LEFT, water_after=0.28, tracks=faces)
    kept = rule.evaluate(alone, as_of=AS_OF, claimed=faces)
    assert kept.outcome is Outcome.FLAGGED and "water_level_changed" not in {r.code for r in kept.reasons}


def test_two_sublets_a_few_days_apart_keep_their_own_subtenants(policy: Policy) -> None:
    """Two flats on a floor sublet three days apart; the first flat's water changed, the second's stayed
    about its tenants' level. The second flat's subtenants, first seen the day it left and the day after,
    are its own: a change of water does not pull faces that came three or four days after the other
    departure away from the one they match (households model, seed 28)."""
    first, second = LEFT, LEFT + timedelta(days=3)
    theirs = (_track("a-1", first), _track("a-2", first + timedelta(days=1)))
    ours = (_track("b-1", second), _track("b-2", second + timedelta(days=1)))
    claims = {"moved": (first, (*theirs, *ours)), "stayed": (second, (*theirs, *ours))}
    given = attribute_strangers(claims, moved={"moved"}, move_gap_days=policy.sublet.move_gap_days)
    assert given == {"moved": theirs, "stayed": ours}
