"""A lent card on record: a household with faces enrolled at the gate whose face is never recognised.

A card or code counts as presence as much as a face, and a household that enrolled no face (the registry's
``faces_enrolled`` is 0) enters by card alone: nothing here judges it. But where the registry says its
people enrolled their faces at the estate's face gates, a household that lives there shows a face on some
of its entry days. Its card used day after day on every day of the record while no registered face was
recognised (or only on a drop-by's few days) is a card someone else carries: a sublet that began before
the record, whose occupants all use the tenant's card, so that no departure and no new face shows.

The household's habit cannot be read from a record that never shows it, so the test takes the most modest
habit the departure path still judges (``min_face_share_before``: a face on one entry day in five) and asks
the record to be rarer by chance than the card-alone bar (``lent_card_change_chance``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from math import comb

from anju.models.activity import ActivityPolicy, life_counts, occupied_days
from anju.models.features import UnitSeries
from anju.models.rules import (
    Outcome,
    Policy,
    Reason,
    RuleContext,
    RuleFinding,
    SubletPolicy,
)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    return sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@dataclass(frozen=True, slots=True)
class UnseenFaces:
    """The record of an enrolled household whose faces stay unrecognised while its card is used."""

    enrolled: int  # registered people with a face enrolled
    entry_days: int  # gate days (flat not standing empty) with a registered entry by any method
    face_days: int  # ... of which a registered face was recognised
    since: date  # the first such gate day on record
    chance: float  # of so few face days, for a household that shows a face on the policy's share of them


def unseen_faces(
    series: UnitSeries, *, end: date, policy: SubletPolicy, activity: ActivityPolicy
) -> UnseenFaces | None:
    """The unit's record up to ``end`` where its enrolled faces went unrecognised beyond chance, or None.

    Only days of the current lease, on which the flat was not standing empty and the building's gate
    worked, count (the days before were another household's; an empty flat's card is not used; a silent
    gate records nothing)."""
    if not series.faces_enrolled:
        return None
    since = series.lease_start or date.min
    gate = [d for d in occupied_days(series.days, activity)
            if since <= d.day <= end and d.gate_working and d.tenant_entries > 0]
    if len(gate) < policy.min_card_days:
        return None
    faces = sum(1 for d in gate if d.tenant_face_entries > 0)
    chance = binomial_cdf(faces, len(gate), policy.min_face_share_before)
    if chance > policy.lent_card_change_chance:
        return None
    return UnseenFaces(enrolled=series.faces_enrolled, entry_days=len(gate), face_days=faces,
                       since=gate[0].day, chance=chance)


def _card_days(series: UnitSeries, *, ctx: RuleContext, max_face_days: int) -> int | None:
    """The window's days with a registered entry but no recognised face, or None once a face shows on more
    than ``max_face_days`` of them (the household lives there). Read from the window's end back: it is
    judged for every enrolled unit the other paths cleared, and most stop at their fourth face day."""
    card = faces = 0
    for d in reversed(series.days):
        if d.day < ctx.start:
            break
        if d.day > ctx.end:
            continue
        if d.tenant_face_entries > 0:
            faces += 1
            if faces > max_face_days:
                return None
        elif d.tenant_entries > 0:
            card += 1
    return card


def by_enrolment(
    series: UnitSeries, *, ctx: RuleContext, policy: Policy, verdict: RuleFinding
) -> RuleFinding:
    """The sublet rule's verdict where its other paths cleared the unit: flagged where its card is in use in
    the window, its enrolled faces not (drop-bys at most), the flat lived in, and the record beyond chance
    (``unseen_faces``); else ``verdict`` unchanged."""
    p = policy.sublet
    w = ctx.window
    card_days = _card_days(series, ctx=ctx, max_face_days=p.max_face_days)
    if card_days is None or card_days < p.min_card_days:
        return verdict
    life = life_counts(series.days, start=ctx.start, end=ctx.end, policy=policy.activity)
    if life.known < policy.min_coverage * w.n_days or life.lived_share < p.min_lived_share:
        return verdict
    found = unseen_faces(series, end=ctx.end, policy=p, activity=policy.activity)
    if found is None:
        return verdict
    people = "person has" if found.enrolled == 1 else "people have"
    reasons = (
        Reason(
            "enrolled_face_unseen",
            f"{found.enrolled} registered {people} a face enrolled at the estate's gates, yet a registered "
            f"face was recognised on {found.face_days} of the {found.entry_days} days their card or code "
            f"was used since {found.since.isoformat()}: a household that enrolled shows its face on at least "
            f"one such day in {round(1 / p.min_face_share_before)}; by chance this is rarer than 1 in "
            f"{round(1 / p.lent_card_change_chance):,}. Someone else may be using their card (or the gate "
            "fails to recognise their enrolled face: then it needs enrolling again).",
            value=found.face_days, baseline=found.entry_days, unit="days",
        ),
        Reason(
            "flat_lived_in",
            f"The flat is lived in on {life.lived} of {life.known} days with meter data.",
            value=round(life.lived_share, 3), baseline=p.min_lived_share, unit="share of days",
        ),
    )
    score = (0.6 + 0.2 * min(found.entry_days / 90, 1.0) + 0.2 * life.lived_share)
    score *= min(w.elec_coverage, w.water_coverage, 1.0)
    return replace(verdict, outcome=Outcome.FLAGGED, score=round(score, 3), reasons=reasons)
