"""The time base every party agrees on: real wall time, or an accelerated simulated clock.

The simulators, the edge agent and the demo share one ``AcceleratedClock`` so that a meter's register,
the agent's timestamps and the ground truth all speak of the same simulated instant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

# The estates' civil time zone by default: the hub's ``estate_tz`` setting (ANJU_ESTATE_TZ) starts as it,
# and the simulated households live in it (the demo and ``anju eval`` give the hub this one).
ESTATE_TZ = "Asia/Shanghai"


class Clock(Protocol):
    """Something that tells the current (possibly simulated) time and converts durations to wall time."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def wall_seconds(self, clock_seconds: float) -> float:
        """How many real seconds pass while ``clock_seconds`` pass on this clock."""
        ...


class WallClock:
    """Real time."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    def wall_seconds(self, clock_seconds: float) -> float:
        """Real time runs at speed 1."""
        return clock_seconds


@dataclass(frozen=True, slots=True)
class AcceleratedClock:
    """Simulated time = ``origin_sim`` + (wall - ``origin_wall``) x ``speed``."""

    origin_wall: float
    origin_sim: datetime
    speed: float

    def __post_init__(self) -> None:
        if self.origin_sim.tzinfo is None:
            raise ValueError("origin_sim must be timezone-aware")
        if self.speed <= 0:
            raise ValueError("speed must be positive")

    def now(self) -> datetime:
        """The simulated time now."""
        return self.at_wall(time.time())

    def at_wall(self, wall: float) -> datetime:
        """The simulated time at a given wall-clock instant (unix seconds)."""
        return self.origin_sim + timedelta(seconds=(wall - self.origin_wall) * self.speed)

    def wall_at(self, sim: datetime) -> float:
        """The wall-clock instant (unix seconds) at which simulated time reaches ``sim``."""
        return self.origin_wall + (sim - self.origin_sim).total_seconds() / self.speed

    def wall_seconds(self, clock_seconds: float) -> float:
        """Real seconds for a simulated duration."""
        return clock_seconds / self.speed
