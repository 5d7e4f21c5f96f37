"""A group that moved into a flat without anyone leaving it: a group rental (群租) beside its tenant, or on
the tenant's card.

The departure path needs the registered household to stop entering. A group that moves in while the
tenant's card stays in daily use (the tenant still there, or one of the group carrying it) shows no such
day. What it shows is what a group rental shows: the flat's water rose to at least twice its own
level on a day (``models.activity.water_rise``), is now at least a group's (``group_water_ratio`` times
what the estate's households of its registered size use), and more new recurring faces than a family's
came to the building as it rose, which the building's attribution gave to this flat rather than to any
departure or other rise (``anju.hub.detection.buildings.claimed_strangers``). "More than a family's" is the
group of ``SubletRule.aligned``: at least ``group_min_faces``, and two more than the lease lists, first seen
within ``group_days`` of each other. Where the water is a group's but under the crowding bars (2.5 times the
peers', or 4 where the tenants' faces are seen), this is what tells a group from a household that uses a lot
of water.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta

from anju.models.activity import life_counts, water_rise
from anju.models.features import Crowding, StrangerTrack, UnitSeries
from anju.models.rules import Outcome, Policy, Reason, RuleContext, RuleFinding, entry_days_between


def crowding_reason(crowd: Crowding, *, baseline_days: int, ending: str) -> Reason:
    """The flat's water against the estate's households of its registered size, in the window and over the
    baseline days before (``water_crowding``; the crowding path's and the group arrival's), ``ending`` what
    the inspector should read into it."""
    now, before = crowd.window_water / crowd.window_peers, crowd.baseline_water / crowd.baseline_peers
    people = "person" if crowd.household_size == 1 else "people"
    return Reason(
        "water_crowding",
        f"Water {crowd.window_water:.2f} m³/day over the window, {now:.1f} times the "
        f"{crowd.window_peers:.2f} of the estate's {crowd.peers} households of {crowd.household_size} "
        f"registered {people}; {before:.1f} times theirs over the {baseline_days} days before{ending}",
        value=round(crowd.window_water, 3), baseline=round(crowd.window_peers, 3), unit="m3/day",
    )


def group_with(tracks: Sequence[StrangerTrack], *, days: int) -> tuple[StrangerTrack, ...]:
    """The largest set of ``tracks`` first seen within ``days`` of each other."""
    ordered = sorted(tracks, key=lambda t: t.first_seen)
    best: tuple[StrangerTrack, ...] = ()
    for i, first in enumerate(ordered):
        span = tuple(t for t in ordered[i:] if (t.first_seen - first.first_seen).days < days)
        if len(span) > len(best):
            best = span
    return best


def by_arrival(
    series: UnitSeries, *, ctx: RuleContext, policy: Policy, crowd: Crowding,
    claimed: Sequence[StrangerTrack], verdict: RuleFinding,
) -> RuleFinding | None:
    """Flagged where a group's faces came as the flat's water rose to a group's (see the module); else None.
    ``claimed``: the faces the building's attribution gave the unit."""
    pol, p = policy, policy.sublet
    if len(claimed) < p.group_min_faces or not crowd.window_reaches(p.group_water_ratio):
        return None
    rise = water_rise(series.days, end=ctx.end, policy=pol.activity, ratio=p.move_alone_ratio)
    if rise is None:
        return None
    day, before, after = rise
    lo, hi = day - timedelta(days=p.stranger_lead_days), day + timedelta(days=p.alignment_days)
    group = group_with([t for t in claimed if lo <= t.first_seen <= hi], days=p.group_days)
    if len(group) < max(p.group_min_faces, (series.household_size or 0) + 2):
        return None
    life = life_counts(series.days, start=ctx.start, end=ctx.end, policy=pol.activity)
    if life.known < pol.min_coverage * ctx.window.n_days or life.lived_share < p.min_lived_share:
        return None
    first: date = min(t.first_seen for t in group)
    last: date = max(t.first_seen for t in group)
    size = series.household_size
    entries = entry_days_between(series.days, start=ctx.start, end=ctx.end)
    reasons = (
        Reason(
            "group_moved_in",
            f"{len(group)} unrecognised faces were first seen at the unit's {series.strangers_scope} between "
            f"{first.isoformat()} and {last.isoformat()} and on most days since, as the flat's water rose "
            f"from {before:.2f} to {after:.2f} m³/day (from {day.isoformat()}); the lease lists "
            f"{size if size is not None else 'an unknown number of'} people.",
            value=len(group), baseline=size, unit="tracks",
        ),
        crowding_reason(crowd, baseline_days=pol.baseline_days, ending=": a group's use, not a household's."),
        Reason(
            "flat_lived_in",
            f"The flat is lived in on {life.lived} of {life.known} days with meter data; the registered "
            f"tenants' card, code or face was used on {entries} of the window's {ctx.window.n_days} days.",
            value=round(life.lived_share, 3), baseline=p.min_lived_share, unit="share of days",
        ),
    )
    score = (0.6 + 0.2 * min(len(group) / (2 * p.group_min_faces), 1.0) + 0.2 * life.lived_share)
    score *= min(ctx.window.water_coverage, 1.0)
    return replace(verdict, outcome=Outcome.FLAGGED, score=round(score, 3), reasons=reasons)
