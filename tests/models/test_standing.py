"""Sublets older than the record: tenants absent throughout, the flat lived in, faces settled on the floor."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from anju.models.features import StrangerTrack, UnitSeries
from anju.models.rules import Outcome, Policy
from anju.models.standing import Standing, sole_candidates
from anju.models.sublet import SubletRule
from tests.models.factories import AS_OF, START, series, with_days

# Someone else living there since before the record: full meters, no registered tenant at the gate.
LIVED_NO_TENANT = dict(elec=7.0, water=0.25, entries=0, strangers=3)


@pytest.fixture
def policy() -> Policy:
    return Policy.load()


def settled(track: str = "s-1") -> StrangerTrack:
    return StrangerTrack(track, first_seen=START + timedelta(days=1), days_in_window=18,
                         days_seen=(AS_OF - START).days - 5, floor=12)


def candidate(policy: Policy, s: UnitSeries) -> Standing | None:
    return SubletRule(policy).standing(s, end=AS_OF)


def on_floor(s: UnitSeries) -> UnitSeries:
    return replace(s, strangers=(settled(),), strangers_scope="floor", building="1", floor=12,
                   faces_enrolled=2)


def test_a_sublet_older_than_the_record_is_flagged_with_what_stands_for_the_missing_departure(
    policy: Policy,
) -> None:
    s = on_floor(series(change_from=START, **LIVED_NO_TENANT))
    # The tenant drops by every two weeks: still absent.
    s = with_days(s, {START + timedelta(days=d): {**LIVED_NO_TENANT, "entries": 1} for d in range(3, 80, 14)})
    found = candidate(policy, s)
    assert found is not None and found.settled == (settled(),)
    rule = SubletRule(policy)
    assert rule.evaluate(s, as_of=AS_OF).outcome is Outcome.CLEAR  # no departure to see ...
    sub = rule.evaluate(s, as_of=AS_OF, standing=found)  # ... but this
    assert sub.outcome is Outcome.FLAGGED
    assert [r.code for r in sub.reasons] == ["tenants_absent_on_record", "flat_lived_in", "settled_strangers"]
    absent = sub.reasons[0]
    assert absent.value is not None and absent.value <= policy.sublet.max_presence_share_after


def test_a_standing_sublet_emptied_in_the_last_weeks_is_not_flagged_as_one(policy: Policy) -> None:
    """Months lived in without the tenants, then the flat empty for the last twelve days: the record still
    makes it a candidate, but the window is the vacancy rule's, not a sublet's."""
    s = on_floor(series(change_from=START, **LIVED_NO_TENANT))
    idle = dict(elec=1.1, water=0.0, gas=0.0, entries=0, strangers=3)
    emptied = with_days(s, {AS_OF - timedelta(days=d): idle for d in range(12)})
    found = candidate(policy, emptied)
    assert found is not None
    rule = SubletRule(policy)
    assert rule.evaluate(emptied, as_of=AS_OF, standing=found).outcome is Outcome.CLEAR
    assert rule.evaluate(s, as_of=AS_OF, standing=candidate(policy, s)).outcome is Outcome.FLAGGED


def test_what_keeps_a_unit_from_being_a_candidate(policy: Policy) -> None:
    gone = on_floor(series(change_from=START, **LIVED_NO_TENANT))
    assert candidate(policy, gone) is not None
    # Entrance gates only: a face cannot be placed near one flat.
    assert candidate(policy, replace(gone, strangers_scope="building")) is None
    # The face arrived later: the main path (a departure and new faces) judges that.
    late = replace(settled(), first_seen=START + timedelta(days=20))
    assert candidate(policy, replace(gone, strangers=(late,))) is None
    # Tenants at the gate on many days; an empty flat; too short a record.
    assert candidate(policy, on_floor(series(change_from=START, **{**LIVED_NO_TENANT, "entries": 1}))) is None
    empty = dict(elec=0.6, water=0.0, gas=0.0, entries=0, strangers=0, water_hours=0)
    assert candidate(policy, on_floor(series(change_from=START, **empty))) is None
    short = replace(gone, days=gone.days[-40:])
    assert candidate(policy, short) is None
    # No face enrolled (or none known): the corridor camera could not have recognised the household on
    # its floor had it come in by another door, so its absence from the record says nothing.
    assert candidate(policy, replace(gone, faces_enrolled=0)) is None
    assert candidate(policy, replace(gone, faces_enrolled=None)) is None


def test_two_flats_without_their_tenants_on_one_floor_leave_the_faces_unplaced(policy: Policy) -> None:
    """A household that always used the car-park door looks the same as the sublet next to it."""
    found = candidate(policy, on_floor(series(change_from=START, **LIVED_NO_TENANT)))
    assert found is not None
    floor12, floor13 = ("E01", "1", 12), ("E01", "1", 13)
    both = (floor12, floor13)
    apart = {"a": (floor12, found), "b": (floor13, found)}
    assert sole_candidates(apart, watched=both) == {"a": found, "b": found}
    assert sole_candidates({"a": (floor12, found), "b": (floor12, found)}, watched=both) == {}


def test_a_floor_whose_camera_knows_no_tenant_places_no_standing_sublet(policy: Policy) -> None:
    """A camera that reports only unrecognised faces sees the strangers but not a household that takes the
    side door past the gate: its flat looks like the sublet beside settled faces (a neighbour's live-in)."""
    found = candidate(policy, on_floor(series(change_from=START, **LIVED_NO_TENANT)))
    assert found is not None
    floor12, floor13 = ("E01", "1", 12), ("E01", "1", 13)
    candidates = {"a": (floor12, found), "b": (floor13, found)}
    assert sole_candidates(candidates, watched=[floor13]) == {"b": found}
    assert sole_candidates(candidates, watched=[]) == {}
