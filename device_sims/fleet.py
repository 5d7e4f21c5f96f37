"""The fleets' meter totals: closed-form, never-decreasing use curves, one exact total per instant.

Shared by every fleet simulator (Modbus SDM120s, self-reporting MQTT meters, DL/T 645 and CJ/T 188
meters) and by the tests that check what an agent read against them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

FLEET_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # fleet meters count from here


def fleet_energy_kwh(unit: int, t: datetime) -> float:
    """Cumulative kWh of fleet unit ``unit`` (1-based) at ``t``: a closed-form, never-decreasing use curve.

    Each unit draws its own base load plus an evening peak; the integral is analytic, so any instant
    has one exact total, whoever asks and however often.
    """
    hours = (t - FLEET_EPOCH).total_seconds() / 3600.0
    base_kw = 0.08 + 0.03 * (unit % 11)  # 80 W .. 380 W
    peak_kw = 0.5 * base_kw
    # integral of base + peak * (1 - cos(2 pi h / 24)): never negative, so never decreasing
    diurnal = peak_kw * (hours - 24.0 / (2 * math.pi) * math.sin(2 * math.pi * hours / 24.0))
    return 1000.0 + 37.0 * unit + base_kw * hours + diurnal


def fleet_water_litres(unit: int, t: datetime) -> int:
    """Cumulative litres of fleet unit ``unit``'s NB-IoT water meter at ``t``: closed form, never falling."""
    hours = (t - FLEET_EPOCH).total_seconds() / 3600.0
    base_lph = 3.0 + 1.5 * (unit % 7)  # a dripping cistern to a busy household
    peak_lph = 2.0 * base_lph
    diurnal = peak_lph * (hours - 24.0 / (2 * math.pi) * math.sin(2 * math.pi * hours / 24.0))
    return int(20_000 + 500 * unit + base_lph * hours + diurnal)
