"""Drain the tenancy outbox: send due rows with their idempotency key, retry with backoff, never delete.

A case's rows (its filing, then updates) go out in order: a row waits while an earlier row of its case
is not sent (nor due in the same drain, which sends them in id order and stops at a case's first
failure), so the tenancy system never hears of a decision on a case it has not received.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from hub.audit import record_audit
from hub.tenancy.client import TenancyClient, TenancyUnavailable

log = logging.getLogger(__name__)

ACTOR = "system:tenancy"
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one drain of the outbox did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """Delay before the next try after ``attempts`` failures: exponential, capped, jittered to [½, 1]."""
    rng = rng or random.Random()
    raw = min(BACKOFF_CAP.total_seconds(), BACKOFF_BASE.total_seconds() * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=raw * rng.uniform(0.5, 1.0))


def deliver_pending(
    conn: psycopg.Connection, *, client: TenancyClient, limit: int = 50, max_attempts: int = 10,
    now: datetime | None = None,
) -> DeliveryResult:
    """Send due pending rows (locked with SKIP LOCKED, so several hubs never send the same row at once).

    The row lock is held across the HTTP call: if this process dies after the tenancy system accepted a
    case but before the commit, the row is sent again later and the idempotency key makes that harmless.
    """
    now = now or datetime.now(UTC)
    sent = retried = dead = 0
    with conn.transaction():
        rows = conn.execute(
            "SELECT o.id, o.case_id, o.idempotency_key, o.payload, o.attempts, o.kind FROM tenancy_outbox o"
            " WHERE o.state = 'pending' AND o.next_attempt_at <= %(now)s AND NOT EXISTS ("
            "   SELECT 1 FROM tenancy_outbox e WHERE e.case_id = o.case_id AND e.id < o.id"
            "   AND e.state <> 'sent' AND NOT (e.state = 'pending' AND e.next_attempt_at <= %(now)s))"
            " ORDER BY o.id LIMIT %(limit)s FOR UPDATE OF o SKIP LOCKED",
            {"now": now, "limit": limit},
        ).fetchall()
        # All HTTP calls first, then the row updates and audit rows: appending to the audit chain takes
        # a lock held until commit, which must not wait on the tenancy system's answers.
        outcomes: list[tuple[int, int, str, int, int | None, dict[str, object] | None, str | None, bool,
                             str]] = []
        failed: set[int] = set()  # cases whose earlier row failed this drain: their later rows wait
        for outbox_id, case_id, key, payload, attempts, kind in rows:
            if case_id in failed:
                continue
            status: int | None = None
            send = client.update_case if kind == "update" else client.file_case
            try:
                resp = send(idempotency_key=key, payload=payload)
            except TenancyUnavailable as err:
                outcomes.append((outbox_id, case_id, key, attempts, None, None, str(err), False, kind))
                failed.add(case_id)
                continue
            status = resp.status
            if resp.accepted:
                outcomes.append((outbox_id, case_id, key, attempts, status, resp.body, None, False, kind))
            else:
                outcomes.append((outbox_id, case_id, key, attempts, status, None,
                                 f"HTTP {status}: {resp.text}", not resp.retryable, kind))
                failed.add(case_id)
        for outbox_id, case_id, key, attempts, status, body, error, permanent, kind in outcomes:
            if error is None:
                assert status is not None
                _mark_sent(conn, outbox_id=outbox_id, case_id=case_id, key=key, status=status, now=now,
                           body=body, kind=kind)
                sent += 1
                continue
            attempts += 1
            if permanent or attempts >= max_attempts:
                # A 4xx such as 409 (same key, different body) will not heal by retrying: dead-letter it
                # now so a person looks at it; the row and its payload stay for that.
                conn.execute(
                    "UPDATE tenancy_outbox SET state = 'dead', attempts = %s, last_error = %s,"
                    " response_status = %s WHERE id = %s",
                    (attempts, error, status, outbox_id),
                )
                record_audit(conn, actor=ACTOR, action="tenancy.dead", object_type="case", object_id=case_id,
                             detail={"idempotency_key": key, "attempts": attempts, "error": error})
                log.error("tenancy filing of case %s dead after %d attempts: %s", case_id, attempts, error)
                dead += 1
            else:
                conn.execute(
                    "UPDATE tenancy_outbox SET attempts = %s, last_error = %s, response_status = %s,"
                    " next_attempt_at = %s WHERE id = %s",
                    (attempts, error, status, now + backoff(attempts), outbox_id),
                )
                retried += 1
    if retried:
        log.warning("tenancy system: %d filing(s) to retry later", retried)
    return DeliveryResult(sent=sent, retried=retried, dead=dead)


def _mark_sent(
    conn: psycopg.Connection, *, outbox_id: int, case_id: int, key: str, status: int, now: datetime,
    body: dict[str, object] | None, kind: str = "filing",
) -> None:
    conn.execute(
        "UPDATE tenancy_outbox SET state = 'sent', attempts = attempts + 1, sent_at = %s,"
        " response_status = %s, last_error = NULL WHERE id = %s",
        (now, status, outbox_id),
    )
    # Filing never moves the workflow on: a lead filed when it opened (ANJU_AUTO_FILE) stays open to
    # assign, visit and decide. Only a confirmed case becomes 'filed', once the tenancy system holds
    # everything queued for it (the filing, or the update that carries the confirmation).
    # The tenancy system's own number of the case (its answer to the filing) is the city's case number.
    city_no = (body or {}).get("tenancy_case_id") if kind == "filing" else None
    conn.execute(
        "UPDATE cases SET filed_at = CASE WHEN %s::text = 'filing' THEN coalesce(filed_at, %s)"
        " ELSE filed_at END, city_case_no = coalesce(city_case_no, %s), updated_at = now(),"
        " status = CASE WHEN status = 'confirmed' AND NOT EXISTS ("
        "   SELECT 1 FROM tenancy_outbox o WHERE o.case_id = cases.id AND o.state <> 'sent')"
        " THEN 'filed' ELSE status END WHERE id = %s",
        (kind, now, str(city_no) if city_no else None, case_id),
    )
    if kind == "update":
        record_audit(conn, actor=ACTOR, action="tenancy.update_sent", object_type="case", object_id=case_id,
                     detail={"idempotency_key": key, "response_status": status})
        return
    record_audit(conn, actor=ACTOR, action="case.filed", object_type="case", object_id=case_id,
                 detail={"idempotency_key": key, "response_status": status,
                         "tenancy_case_id": (body or {}).get("tenancy_case_id")})
