"""Capped exponential backoff with jitter, so a fleet that lost its broker does not return in lockstep."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator


def backoff_delay(
    attempt: int, *, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): uniform between half and all of the ceiling
    ``min(cap, base * 2**attempt)`` ("equal jitter")."""
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def backoff_delays(
    *, first: float = 0.2, cap: float = 10.0, rng: random.Random | None = None
) -> Iterator[float]:
    """The delays of ``backoff_delay`` for attempts 0, 1, 2 ... without end: ~first, ~2x, ~4x ... ~cap."""
    return (backoff_delay(n, base=first, cap=cap, rng=rng) for n in itertools.count())
