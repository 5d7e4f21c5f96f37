"""Notices to households (告知) through the SMS gateway, by a durable outbox.

``queue_case_notices`` finds cases whose household has not been told yet (a case that opened; with the
policy's ``notify_on_confirm``, a case just confirmed) and writes, in one transaction, the notice and one
outbox row per person who may sign in for the unit, each under a unique event key. ``deliver_notifications``
sends due rows with that key as the gateway's idempotency key, retrying with backoff: a message the
gateway sent but whose answer was lost is sent again under the same key and the gateway drops the
repeat, so each event reaches each phone exactly once. The first delivery of a notice starts its answer
period; a notice not delivered holds the case's filing (``anju.hub.household.answers.filing_hold``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from anju.hub.audit import record_audit
from anju.hub.cases.states import STATUSES
from anju.hub.household.answers import push_filing
from anju.hub.household.gateway import GatewayUnavailable, SmsGateway
from anju.hub.household.policy import HouseholdPolicy
from anju.hub.tenancy.outbox import backoff

log = logging.getLogger(__name__)

ACTOR = "system:notify"
# Cases whose household is told that the case opened (any case still being worked on), and (with
# notify_on_confirm) that it was confirmed.
NOTICE_STATUSES = {"opened": tuple(s for s in STATUSES if s not in ("dismissed", "filed", "closed")),
                   "confirmed": ("confirmed",)}


def notice_text(*, case_id: int, unit_id: str, event: str, policy: HouseholdPolicy) -> str:
    """The text message of a notice: what happened, the answer period, where to read and answer."""
    link = f"{policy.public_url.rstrip('/')}/home/cases/{case_id}"
    what = "有一件住房核查事项" if event == "opened" else "的核查事项经上门核实后已确认"
    return (f"【安居】您家 {unit_id} {what}。您可在收到本短信后 {policy.answer_days} 天内"
            f"查看理由并申辩：{link}"
            f" anju: a housing case about your home; you may answer within {policy.answer_days} days.")


def recipients(conn: psycopg.Connection[Any], *, unit_id: str) -> list[tuple[int, str]]:
    """(member id, phone) of everyone who may sign in for the unit."""
    rows = conn.execute(
        "SELECT id, phone FROM household_members WHERE unit_id = %s AND active"
        " AND (relation = 'tenant' OR adult) ORDER BY id", (unit_id,),
    ).fetchall()
    return [(int(r[0]), r[1]) for r in rows]


def queue_case_notices(
    conn: psycopg.Connection[Any], *, now: datetime | None = None, policy: HouseholdPolicy | None = None,
    limit: int = 200,
) -> int:
    """Write the notices not yet written (and their messages) in one transaction; how many notices."""
    now = now or datetime.now(UTC)
    policy = policy or HouseholdPolicy()
    events = ["opened", "confirmed"] if policy.notify_on_confirm else ["opened"]
    written = 0
    with conn.transaction():
        for event in events:
            rows = conn.execute(
                "SELECT c.id, c.unit_id FROM cases c WHERE c.status = ANY(%s) AND NOT EXISTS ("
                " SELECT 1 FROM household_notices n WHERE n.case_id = c.id AND n.event = %s)"
                " ORDER BY c.id LIMIT %s FOR UPDATE OF c SKIP LOCKED",
                (list(NOTICE_STATUSES[event]), event, limit),
            ).fetchall()
            for case_id, unit_id in rows:
                people = recipients(conn, unit_id=unit_id)
                # Nobody to text: the period runs from now (the bureau tells them by other means).
                answer_by = None if people else now + policy.answer_period
                conn.execute(
                    "INSERT INTO household_notices (case_id, event, created_at, recipients, answer_by)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (case_id, event, now, len(people), answer_by),
                )
                text = notice_text(case_id=case_id, unit_id=unit_id, event=event, policy=policy)
                for member_id, phone in people:
                    conn.execute(
                        "INSERT INTO notification_outbox (event_key, case_id, notice_event, member_id, phone,"
                        " body, next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (event_key) DO NOTHING",
                        (f"case-{case_id}-{event}-member-{member_id}", case_id, event, member_id, phone, text,
                         now),
                    )
                record_audit(conn, actor=ACTOR, action="household.notice_queued", object_type="case",
                             object_id=case_id, detail={"event": event, "recipients": len(people)})
                written += 1
    return written


@dataclass(frozen=True, slots=True)
class NotifyResult:
    """What one drain of the notification outbox did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0


def deliver_notifications(
    conn: psycopg.Connection[Any], *, gateway: SmsGateway, now: datetime | None = None, limit: int = 50,
    max_attempts: int = 12, policy: HouseholdPolicy | None = None,
) -> NotifyResult:
    """Send due messages (rows locked with SKIP LOCKED; the lock is held across the HTTP calls, so two
    hubs never send one row at once, and a hub dying mid-send leaves the row to be sent again)."""
    now = now or datetime.now(UTC)
    policy = policy or HouseholdPolicy()
    sent = retried = dead = 0
    with conn.transaction():
        rows = conn.execute(
            "SELECT id, event_key, case_id, notice_event, phone, body, attempts FROM notification_outbox"
            " WHERE state = 'pending' AND next_attempt_at <= %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        ).fetchall()
        results: list[tuple[Any, ...]] = []
        for row_id, key, case_id, event, phone, body, attempts in rows:
            try:
                answer = gateway.send(idempotency_key=key, to=phone, text=body)
                error = None if answer.accepted else f"HTTP {answer.status}: {answer.text}"
                permanent = not answer.accepted and not answer.retryable
                results.append((row_id, key, case_id, event, attempts, error, permanent, answer.message_id))
            except GatewayUnavailable as err:
                results.append((row_id, key, case_id, event, attempts, str(err), False, None))
        # The audit rows after every HTTP call: appending holds the chain's lock until commit.
        for row_id, key, case_id, event, attempts, error, permanent, message_id in results:
            attempts += 1
            if error is None:
                conn.execute(
                    "UPDATE notification_outbox SET state = 'sent', attempts = %s, sent_at = %s,"
                    " gateway_id = %s, last_error = NULL WHERE id = %s", (attempts, now, message_id, row_id),
                )
                if case_id is not None and event is not None:
                    ends = conn.execute(
                        "UPDATE household_notices SET delivered_at = coalesce(delivered_at, %s),"
                        " answer_by = coalesce(answer_by, %s) WHERE case_id = %s AND event = %s"
                        " RETURNING answer_by", (now, now + policy.answer_period, case_id, event),
                    ).fetchone()
                    if ends is not None:  # a filing held for this notice waits for the period's real end
                        push_filing(conn, case_id=case_id, until=ends[0])
                record_audit(conn, actor=ACTOR, action="household.notified", object_type="case" if case_id
                             else "notification", object_id=case_id or row_id,
                             detail={"event_key": key, "attempts": attempts, "gateway_id": message_id})
                sent += 1
            elif permanent or attempts >= max_attempts:
                conn.execute("UPDATE notification_outbox SET state = 'dead', attempts = %s, last_error = %s"
                             " WHERE id = %s", (attempts, error, row_id))
                record_audit(conn, actor=ACTOR, action="household.notify_failed",
                             object_type="case" if case_id else "notification", object_id=case_id or row_id,
                             detail={"event_key": key, "attempts": attempts, "error": error})
                log.error("notification %s dead after %d attempts: %s", key, attempts, error)
                dead += 1
            else:
                conn.execute("UPDATE notification_outbox SET attempts = %s, last_error = %s,"
                             " next_attempt_at = %s WHERE id = %s",
                             (attempts, error, now + backoff(attempts), row_id))
                retried += 1
    return NotifyResult(sent=sent, retried=retried, dead=dead)
