"""What a building's units share: the new faces its departures (and the flats people moved into without
one) claim, those each unit's neighbours were given, and the sublets older than the record that stand
alone on their floor. Pure: the series are loaded already (``anju.hub.detection.load``); the one question
for the database, which candidate floors' cameras know their tenants, comes in as a function."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection
from datetime import date

from anju.models.activity import changed_water_levels, moved_in, water_rise
from anju.models.features import Crowding, StrangerTrack, UnitSeries
from anju.models.rules import RuleContext
from anju.models.standing import Floor, Standing, sole_candidates
from anju.models.strangers import attribute_strangers
from anju.models.sublet import SubletRule


def claimed_strangers(
    all_series: list[UnitSeries], contexts: dict[str, RuleContext], rule: SubletRule,
    crowds: dict[str, Crowding],
) -> dict[str, tuple[StrangerTrack, ...]]:
    """Per unit, the new faces its building's attribution gives it (see ``attribute_strangers``).

    Faces that two or more departures in a building line up with are several households moving in, not
    one group (``SubletRule.aligned``): first each departure's faces with no group rule, to count them.
    """
    p = rule.policy.sublet
    grouped = {u for u, c in crowds.items() if c.window_reaches(p.group_water_ratio)}
    departures: list[tuple[UnitSeries, date]] = []
    for s in all_series:
        if s.strangers:
            found = rule.departure(s, contexts[s.unit_id])
            if found is not None:
                departures.append((s, found[0]))
            elif s.unit_id in grouped:
                # People moved in whether or not anyone left (a group on the tenant's card, or with the
                # tenant): the day its water doubled claims the faces that came then, as a departure
                # does, so that they do not line up with a household elsewhere that took to a side door.
                rise = water_rise(s.days, end=contexts[s.unit_id].end, policy=rule.policy.activity,
                                  ratio=p.move_alone_ratio)
                if rise is not None:
                    departures.append((s, rise[0]))
    lined_up: dict[tuple[str, str | None], Counter[str]] = defaultdict(Counter)
    for s, left in departures:
        every = rule.aligned(s, left=left, end=contexts[s.unit_id].end, shared=[t.track for t in s.strangers])
        lined_up[(s.estate_id, s.building)].update(t.track for t in every)
    Claims = dict[str, tuple[date, tuple[StrangerTrack, ...]]]
    claims: dict[tuple[str, str | None], Claims] = defaultdict(dict)
    for s, left in departures:
        counts = lined_up[(s.estate_id, s.building)]
        shared = [track for track, n in counts.items() if n >= 2]
        tracks = rule.aligned(s, left=left, end=contexts[s.unit_id].end, crowd=crowds.get(s.unit_id),
                              shared=shared)
        claims[(s.estate_id, s.building)][s.unit_id] = (left, tracks)
    moved = {s.unit_id for s, left in departures if changed_water_levels(
        s.days, left=left, policy=rule.policy.activity, ratio=p.move_water_ratio) is not None}
    arrived = {s.unit_id: came for s, left in departures if s.unit_id in moved
               and (came := moved_in(s.days, left=left, policy=rule.policy.activity)) is not None}
    out: dict[str, tuple[StrangerTrack, ...]] = {}
    for building in claims.values():
        out.update(attribute_strangers(building, grouped=grouped, moved=moved, move_gap_days=p.move_gap_days,
                                       arrived=arrived))
    return out


def explained_by_others(
    all_series: list[UnitSeries], claimed: dict[str, tuple[StrangerTrack, ...]],
) -> dict[str, frozenset[str]]:
    """Per unit with claims around it, the new faces its building gave to other units' departures."""
    by_building: dict[tuple[str, str | None], dict[str, set[str]]] = defaultdict(dict)
    for s in all_series:
        if claimed.get(s.unit_id):
            by_building[(s.estate_id, s.building)][s.unit_id] = {t.track for t in claimed[s.unit_id]}
    out: dict[str, frozenset[str]] = {}
    for s in all_series:
        owners = by_building.get((s.estate_id, s.building))
        if owners:
            out[s.unit_id] = frozenset().union(*(v for u, v in owners.items() if u != s.unit_id))
    return out


def standing_alone(
    all_series: list[UnitSeries], *, as_of: date, rule: SubletRule,
    watched: Callable[[set[Floor]], Collection[Floor]],
) -> dict[str, Standing]:
    """Per unit, its evidence of a sublet older than the record, where it alone on its floor has it and the
    floor's corridor camera recognises registered residents (``watched``: of the candidates' floors, those
    whose camera was seen to; asked only when there are candidates, a few units in a city)."""
    candidates: dict[str, tuple[Floor, Standing]] = {}
    for s in all_series:
        found = rule.standing(s, end=as_of)
        if found is not None:
            candidates[s.unit_id] = ((s.estate_id, s.building, s.floor), found)
    if not candidates:
        return {}
    return sole_candidates(candidates, watched=watched({where for where, _ in candidates.values()}))
