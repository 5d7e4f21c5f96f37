"""Plain factory functions for hand-made daily feature series."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from anju.models.features import DailyFeatures, StrangerTrack, UnitSeries

AS_OF = date(2026, 5, 10)
START = AS_OF - timedelta(days=80)  # 60 baseline days + 21 window days


FLOOR_KWH = 1.0  # a fridge, a router and standby over a day


def day(
    d: date, *, elec: float | None = 8.0, water: float | None = 0.3, gas: float | None = 0.4,
    entries: int = 3, strangers: int = 1, gate: int = 60, faces: int | None = None,
    elec_active: float | None = None, water_hours: int | None = None, gas_hours: int | None = None,
) -> DailyFeatures:
    """One day; defaults are a lived-in flat of a two-person household in a building with a working gate.

    The activity signatures follow the totals unless given: electricity above a 1 kWh floor, one water
    event per 30 L (at most 14 hours), two cooking hours when gas is used; entries are by face unless
    ``faces`` says how many were.
    """
    if elec_active is None and elec is not None:
        elec_active = max(elec - FLOOR_KWH, 0.0)
    if water_hours is None and water is not None:
        water_hours = min(int(water / 0.03), 14)
    if gas_hours is None and gas is not None:
        gas_hours = 2 if gas > 0.05 else 0
    return DailyFeatures(
        day=d, elec_kwh=elec, water_m3=water, gas_m3=gas, tenant_entries=entries,
        strangers_building=strangers, gate_events_building=gate, elec_active_kwh=elec_active,
        elec_active_hours=None if elec_active is None else min(int(elec_active / 0.4), 16),
        water_active_m3=water, water_active_hours=water_hours, gas_active_hours=gas_hours,
        tenant_face_entries=entries if faces is None else faces,
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


def with_days(s: UnitSeries, changes: Mapping[date, Mapping[str, Any]]) -> UnitSeries:
    """``s`` with each day in ``changes`` rebuilt by ``day()`` from its keyword arguments (unset ones default
    to a lived-in day, so give every field that matters)."""
    return replace(s, days=tuple(day(d.day, **changes[d.day]) if d.day in changes else d for d in s.days))
