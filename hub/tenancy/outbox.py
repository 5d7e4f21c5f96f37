"""Drain the tenancy outbox: send due rows with their idempotency key, retry with backoff, never delete.

A case's rows (its filing, then updates) go out in order: a row waits while an earlier row of its case
is not sent (nor due in the same drain, which sends them in id order and stops at a case's first
failure), so the tenancy system never hears of a decision on a case it has not received.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from anju.hub.audit import record_audit
from anju.hub.tenancy.client import TenancyClient, TenancyUnavailable
from anju_mqtt.backoff import backoff_delay

log = logging.getLogger(__name__)

ACTOR = "system:tenancy"
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(hours=1)
# How long a claimed row is left alone by other hubs while this one sends it (well above a send's time-out).
LEASE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one drain of the outbox did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """Delay before the next try after ``attempts`` failures: 2 s, 4 s, 8 s ... capped at an hour, jittered
    to [½, 1] of that.

    The curve is ``anju_mqtt.backoff.backoff_delay``'s, the one helper the edge, the simulators and the
    tenancy feed use; only the base and cap are the outbox's own. What differs is where the wait lives:
    the outbox stores it as the row's ``next_attempt_at`` (it survives a restart and is shared by every
    hub draining the table), where the MQTT links hold theirs in memory."""
    seconds = backoff_delay(max(attempts - 1, 0), base=BACKOFF_BASE.total_seconds(),
                            cap=BACKOFF_CAP.total_seconds(), rng=rng)
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What one try of one outbox row came to (the HTTP part; the row is updated afterwards)."""

    outbox_id: int
    case_id: int
    key: str
    kind: str
    attempts: int
    status: int | None = None  # the HTTP status that settled it (None: no answer)
    body: dict[str, object] | None = None
    error: str | None = None  # None: the tenancy system holds it now
    permanent: bool = False  # an answer that retrying will not change
    found: bool = False  # it was there already (looked up by anju's case reference): not sent again


# What a filing found under its reference must agree on with the one queued, to count as the same.
FILING_FIELDS = ("unit_id", "estate_id", "kind", "summary", "evidence_sha256")


def _held_already(client: TenancyClient, *, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The tenancy system's record of this row if it holds it already: the case filed under the row's
    ``case_ref`` (a filing), or that case with the row's update among its updates (an update)."""
    case = client.find_case(case_ref=str(payload["case_ref"]))
    if case is None or kind == "filing":
        return case
    seqs = {u.get("update_seq") for u in case.get("updates") or [] if isinstance(u, dict)}
    return case if payload.get("update_seq") in seqs else None


def _try(client: TenancyClient, row: tuple[Any, ...]) -> _Attempt:
    """Send one outbox row; when it was sent before (``uncertain_since``: its answer never came, or was
    not recorded), look it up first and send only if the tenancy system does not hold it: exactly once
    even where Idempotency-Key is ignored."""
    outbox_id, case_id, key, payload, attempts, kind, uncertain_since = row
    base = _Attempt(outbox_id=outbox_id, case_id=case_id, key=key, kind=kind, attempts=attempts)
    try:
        if uncertain_since is not None:
            held = _held_already(client, kind=kind, payload=payload)
            compared = FILING_FIELDS if held and kind == "filing" else ()
            differs = [f for f in compared if held and held.get(f) != payload.get(f)]
            if differs:  # what a key-honouring system answers 409: it will not heal by sending again
                return replace(base, error=f"filed under {payload['case_ref']} with a different"
                               f" {', '.join(differs)}", permanent=True)
            if held is not None:
                return replace(base, status=200, found=True,
                               body={"tenancy_case_id": held.get("tenancy_case_id")})
        send = client.update_case if kind == "update" else client.file_case
        resp = send(idempotency_key=key, payload=payload)
    except TenancyUnavailable as err:  # no answer: it may or may not be there (the next try looks first)
        return replace(base, error=str(err))
    if resp.accepted:
        return replace(base, status=resp.status, body=resp.body)
    return replace(base, status=resp.status, error=f"HTTP {resp.status}: {resp.text}",
                   permanent=not resp.retryable)


def deliver_pending(
    conn: psycopg.Connection, *, client: TenancyClient, limit: int = 50, max_attempts: int = 10,
    now: datetime | None = None, lease: timedelta = LEASE,
) -> DeliveryResult:
    """Send due pending rows (locked with SKIP LOCKED, so several hubs never send the same row at once).

    Exactly once does not rest on the tenancy system honouring Idempotency-Key. Before anything is sent,
    the rows are claimed in their own transaction: each is marked as sent-and-unanswered
    (``uncertain_since``) and leased (``next_attempt_at`` moves ``lease`` ahead, so no other hub takes
    it). Any later try of a row so marked (after a time-out, a connection reset, an error answer, or this
    process dying before it recorded the answer) first looks the case up by anju's case reference and
    sends again only if the tenancy system does not hold it. What a lookup cannot see is a request still
    being processed: the backoff before the next try (a second at least, then growing) is what lets such
    a request land first. Call it outside a transaction: inside one, the claim commits only with it.
    """
    now = now or datetime.now(UTC)
    sent = retried = dead = 0
    with conn.transaction():
        rows = conn.execute(
            "SELECT o.id, o.case_id, o.idempotency_key, o.payload, o.attempts, o.kind, o.uncertain_since"
            " FROM tenancy_outbox o"
            " WHERE o.state = 'pending' AND o.next_attempt_at <= %(now)s AND NOT EXISTS ("
            "   SELECT 1 FROM tenancy_outbox e WHERE e.case_id = o.case_id AND e.id < o.id"
            "   AND e.state <> 'sent' AND NOT (e.state = 'pending' AND e.next_attempt_at <= %(now)s))"
            " ORDER BY o.id LIMIT %(limit)s FOR UPDATE OF o SKIP LOCKED",
            {"now": now, "limit": limit},
        ).fetchall()
        conn.execute(
            "UPDATE tenancy_outbox SET uncertain_since = coalesce(uncertain_since, %s), next_attempt_at = %s"
            " WHERE id = ANY(%s)", (now, now + lease, [r[0] for r in rows]),
        )
    # The HTTP calls, outside any transaction: the audit chain's lock (taken by the rows' audit entries
    # below) must not wait on the tenancy system's answers.
    outcomes: list[_Attempt] = []
    failed: set[int] = set()  # cases whose earlier row failed this drain: their later rows wait
    for row in rows:
        if row[1] in failed:
            continue
        outcome = _try(client, row)
        outcomes.append(outcome)
        if outcome.error is not None:
            failed.add(outcome.case_id)
    # Rows claimed but not tried (an earlier row of their case failed) are due again at once, as they were.
    tried = {o.outbox_id for o in outcomes}
    untried = [(r[0], r[6]) for r in rows if r[0] not in tried]
    with conn.transaction():
        for outbox_id, uncertain_since in untried:
            conn.execute("UPDATE tenancy_outbox SET next_attempt_at = %s, uncertain_since = %s WHERE id = %s",
                         (now, uncertain_since, outbox_id))
        for o in outcomes:
            if o.error is None:
                assert o.status is not None
                _mark_sent(conn, outbox_id=o.outbox_id, case_id=o.case_id, key=o.key, status=o.status,
                           now=now, body=o.body, kind=o.kind, found=o.found)
                sent += 1
                continue
            attempts = o.attempts + 1
            if o.permanent or attempts >= max_attempts:
                # A 4xx such as 409 (same key, different body) will not heal by retrying: dead-letter it
                # now so a person looks at it; the row and its payload stay for that.
                conn.execute(
                    "UPDATE tenancy_outbox SET state = 'dead', attempts = %s, last_error = %s,"
                    " response_status = %s WHERE id = %s",
                    (attempts, o.error, o.status, o.outbox_id),
                )
                record_audit(conn, actor=ACTOR, action="tenancy.dead", object_type="case",
                             object_id=o.case_id,
                             detail={"idempotency_key": o.key, "attempts": attempts, "error": o.error})
                log.error("tenancy filing of case %s dead after %d attempts: %s", o.case_id, attempts,
                          o.error)
                dead += 1
            else:
                conn.execute(
                    "UPDATE tenancy_outbox SET attempts = %s, last_error = %s, response_status = %s,"
                    " next_attempt_at = %s WHERE id = %s",
                    (attempts, o.error, o.status, now + backoff(attempts), o.outbox_id),
                )
                retried += 1
    if retried:
        log.warning("tenancy system: %d filing(s) to retry later", retried)
    return DeliveryResult(sent=sent, retried=retried, dead=dead)


@dataclass(frozen=True, slots=True)
class Requeued:
    """A dead outbox row put back in the queue: its id, case, kind and why it had died."""

    outbox_id: int
    case_id: int
    kind: str
    last_error: str | None


def requeue_dead(
    conn: psycopg.Connection, *, actor: str, case_ids: list[int] | None = None, now: datetime | None = None,
) -> list[Requeued]:
    """Put dead-lettered rows (all, or those of ``case_ids``) back in the queue, due now with a fresh
    count of attempts, one audit row each under ``actor``, in the caller's transaction.

    Once an operator has fixed what killed them (a rejected body, a long outage). A row sent before keeps
    its mark, so it is looked up by case reference before it is sent again; the error it died of stays
    on the row until the next try and in the audit trail."""
    now = now or datetime.now(UTC)
    rows = conn.execute(
        "UPDATE tenancy_outbox SET state = 'pending', attempts = 0, next_attempt_at = %s"
        " WHERE state = 'dead' AND (%s::bigint[] IS NULL OR case_id = ANY(%s::bigint[]))"
        " RETURNING id, case_id, kind, last_error, attempts",
        (now, case_ids, case_ids),
    ).fetchall()
    out = [Requeued(int(r[0]), int(r[1]), str(r[2]), r[3]) for r in sorted(rows)]
    for row in out:
        record_audit(conn, actor=actor, action="tenancy.requeued", object_type="case", object_id=row.case_id,
                     detail={"outbox_id": row.outbox_id, "kind": row.kind, "last_error": row.last_error})
    return out


def _mark_sent(
    conn: psycopg.Connection, *, outbox_id: int, case_id: int, key: str, status: int, now: datetime,
    body: dict[str, object] | None, kind: str = "filing", found: bool = False,
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
    # found: an earlier send without an answer had got through; the lookup saw it, nothing was sent again.
    seen = {"found_by_lookup": True} if found else {}
    if kind == "update":
        record_audit(conn, actor=ACTOR, action="tenancy.update_sent", object_type="case", object_id=case_id,
                     detail={"idempotency_key": key, "response_status": status, **seen})
        return
    record_audit(conn, actor=ACTOR, action="case.filed", object_type="case", object_id=case_id,
                 detail={"idempotency_key": key, "response_status": status,
                         "tenancy_case_id": (body or {}).get("tenancy_case_id"), **seen})
