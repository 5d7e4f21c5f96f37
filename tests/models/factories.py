"""Plain factory functions for hand-made daily feature series."""

from __future__ import annotations

from datetime import date, timedelta

from models.features import DailyFeatures, StrangerTrack, UnitSeries

AS_OF = date(2026, 5, 10)
START = AS_OF - timedelta(days=80)  # 60 baseline days + 21 window days


def day(
    d: date, *, elec: float | None = 8.0, water: float | None = 0.3, gas: float | None = 0.4,
    entries: int = 3, strangers: int = 1, gate: int = 60,
) -> DailyFeatures:
    """One day; defaults are a lived-in flat of a two-person household in a building with a working gate."""
    return DailyFeatures(
        day=d, elec_kwh=elec, water_m3=water, gas_m3=gas, tenant_entries=entries,
        strangers_building=strangers, gate_events_building=gate,
    )


def in_window(d: date, *, days: int = 21) -> bool:
    """Whether ``d`` is in the trailing window that ends on AS_OF."""
    return d > AS_OF - timedelta(days=days)


def series(
    *, unit_id: str = "E01-1-0101", change_from: date | None = None, tracks: tuple[StrangerTrack, ...] = (),
    lease_start: date | None = None, **after: float | int | None,
) -> UnitSeries:
    """Normal days from START to AS_OF; from ``change_from`` (default: the window start) use ``after``."""
    change = change_from or AS_OF - timedelta(days=20)
    out = []
    d = START
    while d <= AS_OF:
        out.append(day(d, **after) if d >= change else day(d))  # type: ignore[arg-type]
        d += timedelta(days=1)
    return UnitSeries(
        unit_id=unit_id, estate_id="E01", days=tuple(out), lease_start=lease_start, strangers=tracks
    )
