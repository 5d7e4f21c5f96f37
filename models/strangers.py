"""New faces and the departures they support: whom a building's new recurring faces go to, and how likely
so many would have arrived near a unit by chance (pure, no I/O; used by ``anju.models.sublet``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, timedelta
from math import exp, factorial, inf

from anju.models.features import StrangerTrack, UnitSeries
from anju.models.rules import SubletPolicy

SETTLING_DAYS = 7  # faces first seen in the record's first week were there before it began


def settled(series: UnitSeries) -> date:
    """The last day of the unit's record's first week: a face first seen by then was already there (its
    first sighting is the record's start, not an arrival)."""
    return series.days[0].day + timedelta(days=SETTLING_DAYS) if series.days else date.min


def stranger_chance(
    series: UnitSeries, *, aligned: Sequence[StrangerTrack], end: date, policy: SubletPolicy,
    explained: Collection[str] = (),
) -> float:
    """The chance that at least as many arrivals of new recurring faces as ``aligned`` shows would have
    come near the unit within the alignment span of any day, at the rate unexplained arrivals came there
    over its traced history (a Poisson tail). Not arrivals: a face already there in the first week of the
    history, the aligned ones, and those ``explained`` by other departures in the building (their
    subtenants).

    An arrival is a moving in, not a face: faces first seen a day or two apart came together (a group
    renting a flat elsewhere is one arrival, not nine; see ``arrival_events``), in the history and among
    the aligned faces alike. Counted by the face, one group moving in elsewhere would make every departure
    in the building look like chance, and several subtenants moving in together would count as several
    coincidences.
    """
    if not aligned or not series.days:
        return 1.0
    since = settled(series)
    observed = (end - since).days
    if observed <= 0:
        return 0.0
    own = {t.track for t in aligned}
    others = arrival_events(
        [d for track, d in series.arrivals
         if since < d <= end and track not in own and track not in explained])
    mean = others / observed * (policy.stranger_lead_days + policy.alignment_days + 1)
    k = arrival_events([t.first_seen for t in aligned])
    return 1.0 - sum(exp(-mean) * mean**i / factorial(i) for i in range(k))


TOGETHER_DAYS = 2  # faces first seen at most this many days after the one before came together


def arrival_events(days: Sequence[date]) -> int:
    """How many movings-in ``days`` (first sightings) make: each first seen within ``TOGETHER_DAYS`` of
    the one before joins its group (a steady stream, a face every few days, stays a stream)."""
    events = 0
    last: date | None = None
    for d in sorted(days):
        if last is None or (d - last).days > TOGETHER_DAYS:
            events += 1
        last = d
    return events


def attribute_strangers(
    claims: dict[str, tuple[date, tuple[StrangerTrack, ...]]], *, grouped: Collection[str] = (),
    moved: Collection[str] = (), move_gap_days: int = 0, arrived: Mapping[str, date] | None = None,
) -> dict[str, tuple[StrangerTrack, ...]]:
    """Give each new face to the unit(s) whose household left closest to its first sighting.

    ``claims``: per unit of one building, the day its household left and the aligned tracks near it. In a
    building with one entrance gate, the subtenants of one flat also line up, by chance, with a household
    elsewhere that took to the car-park door at about the same time; a face moves into one flat, so it
    supports only the departure it matches best. People moving in show on the meters of the flat they
    moved into: a flat whose water changed as its household left (``moved``: see
    ``anju.models.activity.changed_water_levels``) matches a face better than one whose water did not,
    even if that household left up to ``move_gap_days`` closer to its first sighting. Ties go to all of
    them, unless some of the tied flats' water rose to a group's (``grouped``: see ``SubletRule.aligned``):
    those take the face, and a household whose use stayed a household's does not. ``arrived``: per flat
    whose water changed and that stood empty between its household and the next people, the day it came
    back to life (``anju.models.activity.moved_in``); a face is as close to that day as to the departure.
    """
    came_back = arrived or {}

    def gap(unit: str, left: date, t: StrangerTrack) -> float:
        if unit not in moved:
            return abs((t.first_seen - left).days) + move_gap_days + 0.5
        came = came_back.get(unit)
        return min(abs((t.first_seen - left).days), abs((t.first_seen - came).days) if came else inf)

    best: dict[str, float] = {}
    for unit, (left, tracks) in claims.items():
        for t in tracks:
            g = gap(unit, left, t)
            best[t.track] = min(best.get(t.track, g), g)
    nearest = {
        unit: tuple(t for t in tracks if gap(unit, left, t) == best[t.track])
        for unit, (left, tracks) in claims.items()
    }
    taken_by_group = {t.track for unit in grouped if unit in nearest for t in nearest[unit]}
    return {
        unit: tracks if unit in grouped else tuple(t for t in tracks if t.track not in taken_by_group)
        for unit, tracks in nearest.items()
    }
