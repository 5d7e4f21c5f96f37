"""Sublets older than the records: the registered household was already gone when anju's data begins.

The sublet rule's main path looks for the day a household stopped entering. A city that switches anju on
with six months of records also has sublets that began before them: there is no such day to see. What is
left to see, where corridor cameras place faces on floors and know the household's faces:

- over the whole record (at least ``min_record_days`` days with a working gate), the registered household
  entered on at most the share of gate days a drop-by gives;
- the flat is lived in on most days of the record with meter data, and of the window (the sublet rule
  checks the window: a flat emptied in the last three weeks is the vacancy rule's);
- unrecognised faces that were on the unit's floor from the first week of the record are still there,
  seen like residents;
- and no other flat on that floor is in the same state, so the faces are this flat's (one candidate per
  floor; with two, nothing is said: a household that always used the car-park door looks the same).

A household that takes another door past the building's gate still walks its own corridor: its absence
from the record means something only where the corridor camera would have recognised it. So the household
must have faces enrolled (``faces_enrolled``: a card-only household is a stranger to every camera), and the
floor's camera must be seen recognising registered residents (``watched``, read by detection from the
events: cameras set to report unrecognised faces only place strangers but see no tenant). Where either
fails, a household on its side door and a sublet look the same, and nothing is said.

Entrance-only buildings cannot place a face near one flat among many, so they are left out (pure, no I/O).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

from anju.models.activity import ActivityPolicy, life_counts
from anju.models.features import StrangerTrack, UnitSeries

SETTLED_DAYS = 7  # a face seen in the record's first week was there before it began


@dataclass(frozen=True, slots=True)
class Standing:
    """What makes a unit a candidate for a sublet older than the record."""

    record_start: date
    gate_days: int  # days on record with a working building gate
    entry_days: int  # of those, days with a registered entry (card, code or face)
    lived: int  # days on record the flat was lived in ...
    known: int  # ... of the days with meter data
    settled: tuple[StrangerTrack, ...]  # faces on its floor since the record's first week, still there


def standing_candidate(
    series: UnitSeries, *, end: date, min_record_days: int, max_presence_share: float,
    min_lived_share: float, stranger_min_days: int, min_resident_share: float, activity: ActivityPolicy,
) -> Standing | None:
    """The unit's evidence of a sublet older than its record, or None where it has none."""
    if series.strangers_scope != "floor" or not series.days or not series.faces_enrolled:
        return None
    start = series.days[0].day
    gate = [d for d in series.days if d.day <= end and d.gate_working]
    if len(gate) < min_record_days:
        return None
    entry_days = sum(1 for d in gate if d.tenant_entries > 0)
    if entry_days > max_presence_share * len(gate):
        return None
    life = life_counts(series.days, start=start, end=end, policy=activity)
    if life.known < min_record_days or life.lived < min_lived_share * life.known:
        return None
    settled = tuple(
        t for t in series.strangers
        if t.first_seen <= start + timedelta(days=SETTLED_DAYS - 1) and t.days_in_window >= stranger_min_days
        and t.resident_share(end=end) >= min_resident_share
    )
    if not settled:
        return None
    return Standing(record_start=start, gate_days=len(gate), entry_days=entry_days, lived=life.lived,
                    known=life.known, settled=settled)


Floor = tuple[str, str | None, int | None]  # estate, building, floor


def sole_candidates(
    candidates: dict[str, tuple[Floor, Standing]], *, watched: Collection[Floor]
) -> dict[str, Standing]:
    """Of ``{unit_id: ((estate, building, floor), evidence)}``, those alone in that state on their floor,
    of the floors whose corridor camera is seen recognising registered residents (``watched``)."""
    per_floor: dict[Floor, list[str]] = {}
    for unit_id, (where, _) in candidates.items():
        if where in watched:
            per_floor.setdefault(where, []).append(unit_id)
    return {units[0]: candidates[units[0]][1] for units in per_floor.values() if len(units) == 1}
