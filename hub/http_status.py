"""What an HTTP status from a city system (tenancy filing, SMS gateway) means to our outboxes.

Both outboxes send with an idempotency key, so a repeat of an accepted request answers 200 where the first
answered 201; server trouble, time-outs and throttling are worth sending again, anything else is not.
"""

from __future__ import annotations

RETRY_STATUSES = frozenset({408, 425, 429})


def accepted(status: int) -> bool:
    """201 for a new request, 200 for one accepted before under the same key."""
    return status in (200, 201)


def retryable(status: int) -> bool:
    """Whether the same request may succeed later (server trouble, time-outs, throttling)."""
    return status >= 500 or status in RETRY_STATUSES
