"""Time bounds of wire contract v1: how far a record's timestamp may lie from the receiver's clock.

A timestamp the schema accepts (any aware datetime from year 1 to 9999) is not yet a plausible one: a
reading dated 2999 or 1901 comes from a broken clock or from someone probing, and stored it drags every
daily rollup across centuries. Each receiver checks records against its own clock: more than
``max_future`` ahead (clock skew) or more than ``max_age`` behind (the retention horizon) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from anju_wire.errors import ContractError

DEFAULT_MAX_FUTURE = timedelta(days=1)
DEFAULT_MAX_AGE = timedelta(days=3660)  # about ten years: what the hub keeps by default


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """The accepted window of record timestamps around the receiver's ``now``."""

    max_future: timedelta = DEFAULT_MAX_FUTURE
    max_age: timedelta = DEFAULT_MAX_AGE

    def __post_init__(self) -> None:
        if self.max_future < timedelta(0) or self.max_age <= timedelta(0):
            raise ValueError("max_future must be >= 0 and max_age > 0")

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The earliest and latest accepted timestamps at ``now`` (clipped to what datetime can hold)."""
        lowest = datetime.min.replace(tzinfo=UTC)
        highest = datetime.max.replace(tzinfo=UTC)
        now = now.astimezone(UTC)
        earliest = now - self.max_age if now - lowest > self.max_age else lowest
        latest = now + self.max_future if highest - now > self.max_future else highest
        return earliest, latest

    def check(self, ts: datetime, *, now: datetime, what: str = "timestamp") -> None:
        """Raise ContractError (code ``ts_future`` or ``ts_too_old``) when ``ts`` lies outside the window."""
        earliest, latest = self.window(now)
        # Aware datetimes compare without converting (no overflow at 9999-12-31 with a negative offset).
        if ts > latest:
            raise ContractError(
                f"{what} {ts.isoformat()} is more than {_days(self.max_future)} ahead of {now.isoformat()}",
                code="ts_future",
            )
        if ts < earliest:
            raise ContractError(
                f"{what} {ts.isoformat()} is older than the retention horizon of {_days(self.max_age)}",
                code="ts_too_old",
            )


def _days(span: timedelta) -> str:
    days = span.total_seconds() / 86400
    return f"{days:g} day" + ("" if days == 1 else "s")
