"""The household side's step of the hub's background pipeline: write due notices, sweep welfare signals,
forget spent codes, send the notification outbox. Each part is idempotent, so a step cut short is simply
done again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from anju.hub.household.gateway import SmsGateway
from anju.hub.household.notify import NotifyResult, deliver_notifications, queue_case_notices
from anju.hub.household.policy import HouseholdPolicy
from anju.hub.household.welfare import sweep_elderly_signals


def household_step(
    conn: psycopg.Connection[Any], *, gateway: SmsGateway, now: datetime | None = None,
    policy: HouseholdPolicy | None = None,
) -> NotifyResult:
    """One pass: notices for newly opened (and confirmed) cases, elderly-low-use verdicts onto the welfare
    queue, then the due text messages through the gateway."""
    now = now or datetime.now(UTC)
    policy = policy or HouseholdPolicy()
    queue_case_notices(conn, now=now, policy=policy)
    with conn.transaction():
        sweep_elderly_signals(conn)
        forget_spent_codes(conn, now=now)
    return deliver_notifications(conn, gateway=gateway, now=now, policy=policy)


def forget_spent_codes(conn: psycopg.Connection[Any], *, now: datetime) -> int:
    """Delete sign-in codes and sessions a day past their end (the audit log keeps that they were
    issued and used); how many rows went. The hour's codes stay: the limits count them."""
    day_ago = now - timedelta(days=1)
    codes = conn.execute("DELETE FROM household_codes WHERE expires_at < %s", (day_ago,)).rowcount
    sessions = conn.execute("DELETE FROM household_sessions WHERE expires_at < %s", (day_ago,)).rowcount
    return codes + sessions
