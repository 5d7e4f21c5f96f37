"""Sign-in throttling, the pure part: how long a name or an address must wait after its failures.

Each failed sign-in counts against the account name and against the client address. A few failures are
free (typos); after that each one doubles the wait before the next try is even checked, up to a cap, and
the account locks after ``LOCK_AFTER`` failures in a row until an admin lifts it (``anju users unlock``
or ``reset-password``). With the defaults an account sees at most 7 checked tries in its first minute
and 10 in all: the issue's target was at most 10 a minute. An address is only slowed, never locked (an
office behind one NAT must not be locked out by one person), and forgets its failures after a quiet hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Scope(StrEnum):
    """What a throttle row counts failures of."""

    ACCOUNT = "account"
    ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Free failures, first delay, cap, lockout threshold and address memory."""

    account_free: int = 3
    address_free: int = 10
    base_delay: timedelta = timedelta(seconds=2)
    max_delay: timedelta = timedelta(minutes=15)
    lock_after: int = 10
    address_memory: timedelta = timedelta(hours=1)

    def delay(self, failures: int, *, free: int) -> timedelta:
        """The wait after ``failures`` failures in a row: none while free, then doubling to the cap."""
        over = failures - free
        if over <= 0:
            return timedelta(0)
        return min(self.max_delay, self.base_delay * 2 ** min(over - 1, 30))


@dataclass(frozen=True, slots=True)
class ThrottleState:
    """One row of ``login_throttle``."""

    failures: int = 0
    last_failure: datetime | None = None
    locked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    """Whether a sign-in may be checked now; if not, why (``locked`` or ``throttled``) and for how long."""

    allowed: bool
    reason: str | None = None
    retry_after_s: int = 0


def current(state: ThrottleState, *, scope: Scope, now: datetime, policy: ThrottlePolicy) -> ThrottleState:
    """The state as it counts now: an address's failures lapse after a quiet ``address_memory``."""
    if (scope is Scope.ADDRESS and state.last_failure is not None
            and now - state.last_failure > policy.address_memory):
        return ThrottleState()
    return state


def judge(account: ThrottleState, address: ThrottleState, *, now: datetime,
          policy: ThrottlePolicy) -> ThrottleDecision:
    """May a sign-in for this account from this address be checked at ``now``?"""
    if account.locked_at is not None:
        return ThrottleDecision(False, "locked")
    waits = []
    for state, free in ((account, policy.account_free), (address, policy.address_free)):
        if state.last_failure is not None:
            until = state.last_failure + policy.delay(state.failures, free=free)
            if until > now:
                waits.append(until - now)
    if waits:
        return ThrottleDecision(False, "throttled", max(1, int(max(waits).total_seconds() + 0.999)))
    return ThrottleDecision(True)
