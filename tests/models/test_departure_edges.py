"""Departures the sublet rule must see although the record says little before them (hand-made units)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from anju.models.features import StrangerTrack, UnitSeries
from anju.models.habit import presence_change_chance
from anju.models.rules import Outcome, Policy, rule_context
from anju.models.sublet import SubletRule
from tests.models.factories import AS_OF, day, series, with_days

# A lent card: from the day they left, the household's card is used twice a day and no face of theirs is seen.
LENT: dict[str, float | int] = dict(elec=7.0, water=0.25, entries=2, faces=0, strangers=3)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load()


def _subtenant(first_seen: date) -> StrangerTrack:
    return StrangerTrack("s-1", first_seen=first_seen, days_in_window=18, days_seen=40)


def _verdict(policy: Policy, s: UnitSeries) -> tuple[Outcome, set[str]]:
    found = SubletRule(policy).evaluate(s, as_of=AS_OF)
    return found.outcome, {r.code for r in found.reasons}


def test_a_household_that_left_in_the_first_week_of_the_data_is_seen_leaving(policy: Policy) -> None:
    """A city switched anju on eight days before the tenants sublet the flat: their faces at the gate on
    those eight days are all the record has of their habit, and it is enough against months of a card used
    by somebody else. Five days are not (a household seen for five days has shown no habit yet)."""
    left = AS_OF - timedelta(days=50)

    def record_from(days_before: int) -> UnitSeries:
        s = series(change_from=left, tracks=(_subtenant(left + timedelta(days=2)),), **LENT)
        return replace(s, days=tuple(d for d in s.days if d.day >= left - timedelta(days=days_before)))

    outcome, codes = _verdict(policy, record_from(8))
    assert outcome is Outcome.FLAGGED and {"tenant_faces_vanished", "recurring_strangers"} <= codes
    assert _verdict(policy, record_from(5))[0] is Outcome.CLEAR


def test_a_lent_card_where_the_tenants_showed_a_face_on_one_entry_day_in_four(policy: Policy) -> None:
    """Before they left, a household of card users whose face was recognised on a quarter of its entry
    days; since, the card every day for seven weeks and no face: no household keeps such a habit by
    chance. One that showed a face on one entry day in ten has no face habit to lose."""
    left = AS_OF - timedelta(days=50)

    def faces_every(n: int) -> UnitSeries:
        s = series(change_from=left, tracks=(_subtenant(left + timedelta(days=2)),), **LENT)
        before = {d.day: dict(entries=2, faces=1 if i % n == 0 else 0)
                  for i, d in enumerate(s.days) if d.day < left}
        return with_days(s, before)

    outcome, codes = _verdict(policy, faces_every(4))
    assert outcome is Outcome.FLAGGED and "tenant_faces_vanished" in codes
    assert _verdict(policy, faces_every(10))[0] is Outcome.CLEAR


def test_a_week_of_record_is_held_to_a_rarer_chance_than_a_full_lookback(policy: Policy) -> None:
    """A household seen on every other day of the record's first eight days, then on none of the four weeks
    since: for a habit known from four days in eight the gap is rare (about 1 in 2,000) but not rare enough
    (1 in 10,000); the same gap after a full three weeks of every other day is a departure."""
    left = AS_OF - timedelta(days=27)
    alternate = {d: dict(entries=1 if (left - d).days % 2 == 1 else 0, water=0.3, elec=8.0)
                 for d in (left - timedelta(days=k) for k in range(1, 60))}

    def record_from(days_before: int) -> UnitSeries:
        s = with_days(series(change_from=left, tracks=(_subtenant(left + timedelta(days=2)),), elec=7.0,
                             water=0.25, entries=0, strangers=3), alternate)
        return replace(s, days=tuple(d for d in s.days if d.day >= left - timedelta(days=days_before)))

    short = record_from(8)
    chance = presence_change_chance(short.days, left=left, end=AS_OF)
    assert policy.sublet.short_record_change_chance < chance <= policy.sublet.max_change_chance
    assert _verdict(policy, short)[0] is Outcome.CLEAR
    outcome, codes = _verdict(policy, record_from(22))
    assert outcome is Outcome.FLAGGED and {"no_tenant_entries", "recurring_strangers"} <= codes


def test_a_departure_after_a_trip_and_weeks_back_home_is_dated_by_the_last_faces(policy: Policy) -> None:
    """Half a year of record: a household that showed its face on every other entry day used only its
    card for the five days before a ten-day trip (the flat stood empty) and the first four back, then
    went on as before for two weeks, and since has given the flat to a subtenant who carries its card
    (eleven weeks). Its largest drop in face share is before the trip (the three weeks before that show
    its usual share, those before the departure take in the card-only days), but dated there the faces
    of the weeks back home make the change far less rare (1.1e-14 against 5.2e-17), and the subtenant,
    first seen a month later, lines up with nothing: the day the faces stopped is the departure. On seed
    81 of the appliance model (once) the change from the trip was 1.6e-5, too common for a lent card
    alone, and the flat was missed."""
    first = AS_OF - timedelta(days=179)
    left = AS_OF - timedelta(days=77)
    trip, back = left - timedelta(days=28), left - timedelta(days=18)

    def faces(i: int, d: date) -> int:
        if trip - timedelta(days=5) <= d < back + timedelta(days=4):
            return 0
        return 0 if i % 2 else 1

    record = []
    for i in range(180):
        d = first + timedelta(days=i)
        if trip <= d < back:
            record.append(day(d, elec=1.0, water=0.0, gas=0.0, entries=0))
        else:
            record.append(day(d, entries=2, faces=faces(i, d)) if d < left else day(d, **LENT))
    s = UnitSeries(unit_id="E01-1-0101", estate_id="E01", days=tuple(record),
                   strangers=(_subtenant(left + timedelta(days=2)),))
    rule = SubletRule(policy)
    ctx = rule_context(s, as_of=AS_OF, policy=policy)
    found = rule._left(s, ctx, faces_only=True)
    last_face = max(d.day for d in s.days if d.tenant_face_entries)
    assert found is not None and found[0] == last_face + timedelta(days=1) and last_face > back
    outcome, codes = _verdict(policy, s)
    assert outcome is Outcome.FLAGGED and {"tenant_faces_vanished", "recurring_strangers"} <= codes
