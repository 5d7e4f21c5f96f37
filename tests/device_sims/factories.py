"""Plain factory functions for device simulator tests."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from anju.device_sims.household import EstateSpec, make_estate

START = datetime(2026, 3, 1, tzinfo=ZoneInfo("Asia/Shanghai"))


def small_estate(*, n_units: int = 8, days: int = 60, seed: int = 5, estate_id: str = "E01") -> EstateSpec:
    """A small estate with one vacant and one sublet unit."""
    return make_estate(estate_id, n_units=n_units, days=days, start=START, seed=seed, n_vacant=1, n_sublet=1)


def private_estate_id() -> str:
    """An estate id no other test uses, so that each test has its own gate topics."""
    return f"T{uuid.uuid4().hex[:8]}"
