"""New faces in an entrance-only building go to the flat whose occupants changed (hand-made units)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from anju.hub.detection.buildings import claimed_strangers
from anju.models.activity import moved_in, water_shift
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


def test_a_flat_that_stood_empty_between_its_household_and_the_next_people_dates_them_by_its_return() -> None:
    """The day a flat came back to life after a changeover (it stood empty from within three days of the
    departure) is when the next people came; a flat lived in straight on, or emptied weeks later, has no
    such day."""
    empty = {LEFT + timedelta(days=k): dict(elec=0.6, water=0.0, gas=0.0, entries=0) for k in range(2, 7)}
    changeover = with_days(series(change_from=LEFT, water=0.6, entries=0), empty)
    assert moved_in(changeover.days, left=LEFT, policy=ACT) == LEFT + timedelta(days=7)
    assert moved_in(series(change_from=LEFT, water=0.6, entries=0).days, left=LEFT, policy=ACT) is None
    trip = {LEFT + timedelta(days=k): dict(elec=0.6, water=0.0, gas=0.0, entries=0) for k in range(10, 15)}
    assert moved_in(with_days(series(change_from=LEFT, entries=0), trip).days, left=LEFT, policy=ACT) is None


def test_faces_that_came_when_a_changed_flat_came_back_to_life_are_its_own(policy: Policy) -> None:
    """A tenant gave up a flat on the 14th; it stood empty for five days and a group moved in on the 21st
    (its water doubled), the day a household elsewhere in the building took to the side door (its water
    stayed its own). The group's faces, first seen on the 21st and 22nd, came a week after the one
    departure and on the day of the other; they belong to the flat the meters show people moving into
    (appliance model seed 88: seven faces given to the side-door household, and a false alert)."""
    came = LEFT + timedelta(days=7)
    faces = (_track("s-1", came), _track("s-2", came + timedelta(days=1)))
    empty = {LEFT + timedelta(days=k): dict(elec=0.6, water=0.0, gas=0.0, entries=0) for k in range(2, 7)}
    sublet = with_days(_flat("E01-1-0801", left=LEFT, water_after=0.6, tracks=faces), empty)
    side_door = _flat("E01-1-1203", left=came, water_after=0.3, tracks=faces)
    rule = SubletRule(policy)
    units = [sublet, side_door]
    contexts = {s.unit_id: rule_context(s, as_of=AS_OF, policy=policy) for s in units}
    assert {s.unit_id: rule.departure(s, contexts[s.unit_id]) for s in units} == {
        sublet.unit_id: (LEFT, False), side_door.unit_id: (came, False)}
    claimed = claimed_strangers(units, contexts, rule, crowds={})
    assert claimed == {sublet.unit_id: faces, side_door.unit_id: ()}
    verdict = rule.evaluate(side_door, as_of=AS_OF, context=contexts[side_door.unit_id], claimed=())
    assert verdict.outcome is Outcome.CLEAR
