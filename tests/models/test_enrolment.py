"""A household with faces enrolled whose face the record never shows while its card is used (hand-made
units)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from anju.models.enrolment import binomial_cdf, unseen_faces
from anju.models.features import Crowding, UnitSeries
from anju.models.rules import Outcome, Policy
from anju.models.sublet import SubletRule
from tests.models.factories import AS_OF, START, series, with_days

# Lived in (water, cooking, electricity), the tenant's card used twice a day, no registered face ever.
CARD_ONLY: dict[str, float | int] = dict(elec=7.0, water=0.25, entries=2, faces=0, strangers=3)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load()


def _judge(policy: Policy, s: UnitSeries, crowd: Crowding | None = None) -> tuple[Outcome, set[str]]:
    found = SubletRule(policy).evaluate(s, as_of=AS_OF, crowd=crowd)
    return found.outcome, {r.code for r in found.reasons}


def _card_only(enrolled: int | None) -> UnitSeries:
    return replace(series(change_from=START, **CARD_ONLY), faces_enrolled=enrolled)


def test_a_card_used_for_months_by_a_household_with_enrolled_faces_that_never_show(policy: Policy) -> None:
    """A sublet older than the record, whose occupants all use the tenant's card: no departure, no new face.
    The registry says two people enrolled their faces at the gate; 81 days of the card and not one face."""
    outcome, codes = _judge(policy, _card_only(2))
    assert outcome is Outcome.FLAGGED and codes == {"enrolled_face_unseen", "flat_lived_in"}
    found = SubletRule(policy).evaluate(_card_only(2), as_of=AS_OF)
    unseen = next(r for r in found.reasons if r.code == "enrolled_face_unseen")
    assert (unseen.value, unseen.baseline) == (0, 81)
    assert "2 registered people have a face enrolled" in unseen.text and START.isoformat() in unseen.text


def test_a_household_that_enrolled_no_face_enters_by_card_and_is_not_suspected(policy: Policy) -> None:
    """A card counts as much as a face: where nobody enrolled a face, or the registry does not say, the same
    record is a household coming home."""
    assert _judge(policy, _card_only(0)) == (Outcome.CLEAR, {"no_presence_change"})
    assert _judge(policy, _card_only(None)) == (Outcome.CLEAR, {"no_presence_change"})


def test_a_tenant_who_drops_by_still_leaves_a_card_in_other_hands(policy: Policy) -> None:
    """The tenant shows their face every four weeks (a drop-by: 3 face days of 81); a household that uses
    its face on one entry day in three is living there. (Over these 81 days a fortnightly drop-by, 6 face
    days, could still be a household's chance run; over six months, 12 of 180, it could not.)"""
    s = _card_only(1)
    every_28 = with_days(s, {d.day: dict(CARD_ONLY, faces=1) for i, d in enumerate(s.days) if i % 28 == 3})
    assert _judge(policy, every_28)[0] is Outcome.FLAGGED
    every_3 = with_days(s, {d.day: dict(CARD_ONLY, faces=1) for i, d in enumerate(s.days) if i % 3 == 0})
    assert _judge(policy, every_3)[0] is Outcome.CLEAR


def test_the_record_must_be_long_enough_to_rule_out_chance(policy: Policy) -> None:
    """A household that shows its face on one entry day in five goes 42 such days without one less than
    once in 10,000 (0.8^42): a record of a month is not enough, one of seven weeks is."""
    p = policy.sublet
    assert binomial_cdf(0, 41, p.min_face_share_before) > p.lent_card_change_chance
    assert binomial_cdf(0, 42, p.min_face_share_before) <= p.lent_card_change_chance

    def record_of(days: int) -> UnitSeries:
        s = _card_only(2)
        return replace(s, days=tuple(d for d in s.days if d.day > AS_OF - timedelta(days=days)))

    assert unseen_faces(record_of(41), end=AS_OF, policy=p, activity=policy.activity) is None
    assert unseen_faces(record_of(42), end=AS_OF, policy=p, activity=policy.activity) is not None
    assert _judge(policy, record_of(30))[0] is Outcome.CLEAR
    assert _judge(policy, record_of(50))[0] is Outcome.FLAGGED


def test_only_the_current_lease_counts(policy: Policy) -> None:
    """A lease that began five weeks ago: the card days before it were another household's."""
    s = _card_only(2)
    assert _judge(policy, replace(s, lease_start=AS_OF - timedelta(days=35)))[0] is Outcome.CLEAR
    assert _judge(policy, replace(s, lease_start=AS_OF - timedelta(days=60)))[0] is Outcome.FLAGGED


def test_days_the_flat_stood_empty_or_the_gate_was_silent_do_not_count(policy: Policy) -> None:
    """The card is counted on days the flat was lived in and the gate recorded events: with only five
    weeks of such days in the record the chance is not yet ruled out."""
    s = _card_only(2)
    early = {d.day: dict(CARD_ONLY, gate=0, entries=0, strangers=0) for d in s.days
             if d.day < AS_OF - timedelta(days=35)}
    assert _judge(policy, with_days(s, early))[0] is Outcome.CLEAR


def test_a_card_is_no_proof_of_presence_for_the_group_rental_test(policy: Policy) -> None:
    """Water three times a one-person household's, entries by card only: where nobody enrolled a face the
    card is still no sign of who lives there (a group may carry it), so the card-only crowding bar holds,
    as where enrolment is not known. Only recognised faces raise the bar."""
    crowd = Crowding(household_size=1, peers=12, window_water=0.36, window_peers=0.12,
                     baseline_water=0.36, baseline_peers=0.12)
    card = series(change_from=START, **dict(CARD_ONLY, water=0.36))
    for enrolled in (0, None):
        outcome, codes = _judge(policy, replace(card, faces_enrolled=enrolled), crowd)
        assert outcome is Outcome.FLAGGED and "tenants_card_only" in codes
    faces = series(change_from=START, **dict(CARD_ONLY, water=0.36, faces=2))
    assert _judge(policy, replace(faces, faces_enrolled=1), crowd)[0] is Outcome.CLEAR
