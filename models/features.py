"""Per-unit daily feature series and the window summaries the rules read (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median
from typing import NamedTuple


class DailyFeatures(NamedTuple):
    """One unit on one local day, as in ``unit_daily``; ``None`` consumption means unknown, not zero.

    A named tuple rather than a frozen dataclass: detection builds about two million of these at 100,000
    units, and a tuple is built about three times faster.
    """

    day: date
    elec_kwh: float | None
    water_m3: float | None
    gas_m3: float | None = None
    tenant_entries: int = 0
    strangers_building: int = 0
    gate_events_building: int = 0
    water_night_m3_h: float | None = None  # smallest hourly water rate over local 01:00-05:00
    # Activity signatures (hub/storage/rollups.py): use above the day's floor, hours with an appliance event
    elec_active_kwh: float | None = None
    elec_active_hours: int | None = None
    water_active_m3: float | None = None
    water_active_hours: int | None = None
    gas_active_hours: int | None = None
    tenant_face_entries: int = 0  # of tenant_entries, those by a recognised face

    @property
    def gate_working(self) -> bool:
        """Whether the building's gate reported anything that day (else absence of entries means nothing)."""
        return self.gate_events_building > 0


@dataclass(frozen=True, slots=True)
class StrangerTrack:
    """A stranger track seen near a unit: when it first appeared and on how many window days.

    ``floor`` is the floor whose corridor camera saw the track most often, or None when only a building
    entrance saw it.
    """

    track: str
    first_seen: date
    days_in_window: int
    floor: int | None = None
    days_seen: int = 0  # distinct days seen from first_seen to the as-of day (0: not counted)
    last_seen: date | None = None

    def resident_share(self, *, end: date) -> float:
        """Share of days from its first sighting to ``end`` on which the track was seen: a subtenant
        passes the gate most days, a weekly visitor or a courier does not."""
        span = (end - self.first_seen).days + 1
        seen = self.days_seen or self.days_in_window
        return seen / span if span > 0 else 0.0


@dataclass(frozen=True, slots=True)
class UnitSeries:
    """The daily features of one unit, sorted by day, with what the registry knows about it."""

    unit_id: str
    estate_id: str
    days: tuple[DailyFeatures, ...]
    lease_start: date | None = None
    strangers: tuple[StrangerTrack, ...] = ()
    strangers_scope: str = "building"  # "floor" when corridor cameras let strangers be placed on a floor
    building: str | None = None  # the building whose gate and strangers the unit shares
    # Each recurring stranger near the unit (same scope as ``strangers``) and when it was first seen, over
    # the whole traced history, whether or not it is still around: how often new faces arrive there.
    arrivals: tuple[tuple[str, date], ...] = ()
    household_size: int | None = None  # people on the lease
    floor: int | None = None
    faces_enrolled: int | None = None  # registered people with a face enrolled at the gates (None: unknown)

    def between(self, start: date, end: date) -> tuple[DailyFeatures, ...]:
        """The days in ``[start, end]``, inclusive."""
        return tuple(d for d in self.days if start <= d.day <= end)


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """Summary of a run of days: medians over known days, coverage, presence and gate activity."""

    start: date
    end: date
    n_days: int
    elec_median: float | None
    water_median: float | None
    gas_median: float | None
    water_night_median: float | None
    elec_known: int
    water_known: int
    tenant_entries: int
    tenant_entry_days: int
    gate_days: int
    strangers_mean: float | None
    last_tenant_entry: date | None

    @property
    def elec_coverage(self) -> float:
        """Share of the window's days with a known electricity consumption."""
        return self.elec_known / self.n_days if self.n_days else 0.0

    @property
    def water_coverage(self) -> float:
        """Share of the window's days with a known water consumption."""
        return self.water_known / self.n_days if self.n_days else 0.0

    @property
    def gate_coverage(self) -> float:
        """Share of the window's days on which the building's gate reported events."""
        return self.gate_days / self.n_days if self.n_days else 0.0

    @property
    def presence_share(self) -> float:
        """Share of gate-working days on which a registered tenant entered."""
        return self.tenant_entry_days / self.gate_days if self.gate_days else 0.0


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(median(known)) if known else None


def summarize(days: Sequence[DailyFeatures], *, start: date, end: date) -> WindowSummary:
    """Summarise the days in ``[start, end]``; days absent from ``days`` count as unknown."""
    # One pass: detection summarises every unit's window and baseline each run (200,000 calls at
    # 100,000 units), so this loop is on the hot path.
    elec: list[float] = []
    water: list[float] = []
    gas: list[float] = []
    night: list[float] = []
    entries = entry_days = gate_days = strangers = 0
    last_entry: date | None = None
    for d in days:
        if d.day < start or d.day > end:
            continue
        if d.elec_kwh is not None:
            elec.append(d.elec_kwh)
        if d.water_m3 is not None:
            water.append(d.water_m3)
        if d.gas_m3 is not None:
            gas.append(d.gas_m3)
        if d.water_night_m3_h is not None:
            night.append(d.water_night_m3_h)
        entries += d.tenant_entries
        if d.tenant_entries > 0:
            entry_days += 1
            if last_entry is None or d.day > last_entry:
                last_entry = d.day
        if d.gate_events_building > 0:
            gate_days += 1
            strangers += d.strangers_building
    return WindowSummary(
        start=start,
        end=end,
        n_days=(end - start).days + 1,
        elec_median=float(median(elec)) if elec else None,
        water_median=float(median(water)) if water else None,
        gas_median=float(median(gas)) if gas else None,
        water_night_median=float(median(night)) if night else None,
        elec_known=len(elec),
        water_known=len(water),
        tenant_entries=entries,
        tenant_entry_days=entry_days,
        gate_days=gate_days,
        strangers_mean=strangers / gate_days if gate_days else None,
        last_tenant_entry=last_entry,
    )


def window_bounds(as_of: date, window_days: int) -> tuple[date, date]:
    """First and last day of the trailing window ending on ``as_of``."""
    return as_of - timedelta(days=window_days - 1), as_of


@dataclass(frozen=True, slots=True)
class PeerStats:
    """Medians of the window medians of the units of one estate."""

    estate_id: str
    units: int
    elec_median: float | None
    water_median: float | None


def peer_stats(windows: Mapping[str, tuple[str, WindowSummary]]) -> dict[str, PeerStats]:
    """Per-estate peer medians from ``{unit_id: (estate_id, window summary)}``."""
    by_estate: dict[str, list[WindowSummary]] = {}
    for estate, summary in windows.values():
        by_estate.setdefault(estate, []).append(summary)
    return {
        estate: PeerStats(
            estate_id=estate,
            units=len(items),
            elec_median=_median(s.elec_median for s in items),
            water_median=_median(s.water_median for s in items),
        )
        for estate, items in by_estate.items()
    }


@dataclass(frozen=True, slots=True)
class Crowding:
    """A unit's water use against the estate's households of the same registered size."""

    household_size: int
    peers: int  # households of that size in the estate with known water use in both spans
    window_water: float  # the unit's median m³/day in the window ...
    window_peers: float  # ... and that of its peers
    baseline_water: float  # the same over the baseline days before the window
    baseline_peers: float

    @property
    def ratio(self) -> float:
        """The smaller of the two spans' ratios to the peers: how far above them the unit stays."""
        return min(self.window_water / self.window_peers, self.baseline_water / self.baseline_peers)

    def window_reaches(self, ratio: float) -> bool:
        """Whether the unit's water over the window is at least ``ratio`` times its peers' (a group's, at
        the policy's ``group_water_ratio``)."""
        return self.window_water >= ratio * self.window_peers


def crowding(units: Mapping[str, tuple[str, int | None, float | None, float | None]], *,
             min_peers: int) -> dict[str, Crowding]:
    """Per unit, from ``{unit_id: (estate_id, household size, window water median, baseline water
    median)}``, its use against the estate's other households of its size (only where at least
    ``min_peers`` of them have known use in both spans, and their medians are above zero)."""
    groups: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for estate, size, window, base in units.values():
        if size is not None and window is not None and base is not None:
            groups.setdefault((estate, size), []).append((window, base))
    medians = {key: (len(peers), median(w for w, _ in peers), median(b for _, b in peers))
               for key, peers in groups.items() if len(peers) >= min_peers}
    out = {}
    for unit_id, (estate, size, window, base) in units.items():
        if size is None or window is None or base is None or (estate, size) not in medians:
            continue
        n, w_med, b_med = medians[(estate, size)]
        if w_med > 0 and b_med > 0:
            out[unit_id] = Crowding(size, n, window, w_med, base, b_med)
    return out


def idle_streak(
    days: Sequence[DailyFeatures], *, end: date, base_load_kwh: float, visit_kwh: float = 0.0,
    max_visit_entries: int = 0,
) -> int:
    """Consecutive days up to ``end`` without tenant entries and with electricity at or below base load.

    Unknown electricity neither breaks nor extends the streak's evidence: such a day is skipped over
    but not counted, so an outage cannot make a flat look idle for longer than it was observed. A short
    drop-by (at most ``max_visit_entries`` entries, electricity within ``visit_kwh`` of base load) is
    skipped the same way: a tenant keeping up appearances does not make a flat lived in, whereas a
    return from travel (a full day's use) ends the streak.
    """
    streak = 0
    for d in sorted((d for d in days if d.day <= end), key=lambda d: d.day, reverse=True):
        if d.elec_kwh is None:
            if d.tenant_entries > max_visit_entries:
                break
            continue
        if d.tenant_entries > 0:
            if d.tenant_entries <= max_visit_entries and d.elec_kwh <= base_load_kwh + visit_kwh:
                continue
            break
        if d.elec_kwh > base_load_kwh:
            break
        streak += 1
    return streak


def evidence_series(days: Sequence[DailyFeatures], *, start: date, end: date) -> dict[str, list[object]]:
    """The daily series for an alert's charts, one entry per calendar day, null where data is missing."""
    by_day = {d.day: d for d in days}
    out: dict[str, list[object]] = {
        "days": [], "electricity": [], "water": [], "gas": [], "tenant_entries": [], "strangers": [],
        "gate_events": [],
    }
    day = start
    while day <= end:
        d = by_day.get(day)
        out["days"].append(day.isoformat())
        out["electricity"].append(None if d is None else d.elec_kwh)
        out["water"].append(None if d is None else d.water_m3)
        out["gas"].append(None if d is None else d.gas_m3)
        out["tenant_entries"].append(None if d is None or not d.gate_working else d.tenant_entries)
        out["strangers"].append(None if d is None or not d.gate_working else d.strangers_building)
        out["gate_events"].append(None if d is None else d.gate_events_building)
        day += timedelta(days=1)
    return out
