"""Status changes in the tenancy system flow back: poll its changes feed and apply each to the case.

A case the tenancy system reports ``closed`` or ``moved_out`` (the household moved out) is closed, and
so are its open alerts (they leave the inspectors' queue), all audited as ``system:tenancy``: closing is
the case workflow's to do, so the caller hands it in (``close_case``; the hub passes
``anju.hub.cases.service.close_for_tenancy``) and this module never imports the cases.
Other statuses are recorded on the case's trail without a transition. The feed's position is stored
in ``tenancy_feed`` and moves in the same transaction as the case changes, so each change is applied
exactly once however often the hub polls or restarts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from anju.hub.audit import record_audit
from anju.hub.tenancy.client import TenancyClient, TenancyUnavailable
from anju.hub.tenancy.filing import case_of_ref
from anju_mqtt.backoff import backoff_delay

log = logging.getLogger(__name__)

ACTOR = "system:tenancy"
FEED = "changes"
CLOSING_STATUSES = frozenset({"closed", "moved_out"})

# Closes a case the tenancy system ended, with its alerts, audited: (conn, case id, audit detail).
CaseCloser = Callable[[psycopg.Connection[Any], int, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class ChangesResult:
    """What one poll of the changes feed did."""

    seen: int = 0
    closed: int = 0
    noted: int = 0
    unknown: int = 0
    last_seq: int = 0
    error: str | None = None


@dataclass(slots=True)
class FeedBackoff:
    """When a caller polling the feed in a loop may call again after failures: capped exponential backoff
    with jitter (about ``base`` s, then twice that ... up to ``cap``), one WARNING when the feed goes down,
    DEBUG while it stays down, one INFO when it is back."""

    base_s: float = 2.0
    cap_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    next_try: float = field(default=0.0)

    def due(self) -> bool:
        """Whether the feed may be polled now."""
        return self.clock() >= self.next_try

    def failed(self, err: Exception) -> None:
        """Note a failed poll and when to try again."""
        delay = backoff_delay(self.failures, base=self.base_s, cap=self.cap_s)
        self.failures += 1
        self.next_try = self.clock() + delay
        level = logging.WARNING if self.failures == 1 else logging.DEBUG
        log.log(level, "tenancy changes feed unavailable (%d in a row), next try in %.0f s: %s",
                self.failures, delay, err)  # fmt: skip

    def succeeded(self) -> None:
        """Note a poll that reached the feed."""
        if self.failures:
            log.info("tenancy changes feed is back after %d failed polls", self.failures)
        self.failures, self.next_try = 0, 0.0


def apply_tenancy_changes(
    conn: psycopg.Connection[Any], *, client: TenancyClient, close_case: CaseCloser, limit: int = 100,
    max_pages: int = 10, backoff: FeedBackoff | None = None,
) -> ChangesResult:
    """Fetch the changes after the stored position and apply them, a page per transaction.

    The HTTP call is made before the transaction opens, so the audit chain's lock never waits on the
    tenancy system. An unreachable feed is logged and reported in the result, not raised: the next
    poll resumes from the same position. With ``backoff``, a feed that keeps failing is not called
    again before its next try is due (the result then says so in ``error``)."""
    seen = closed = noted = unknown = 0
    last = _position(conn)
    if backoff is not None and not backoff.due():
        return ChangesResult(last_seq=last, error="backing off after failures")
    for _ in range(max_pages):
        try:
            page = client.changes(since=last, limit=limit)
        except TenancyUnavailable as err:
            if backoff is None:
                log.warning("tenancy changes feed unavailable, will retry: %s", err)
            else:
                backoff.failed(err)
            return ChangesResult(seen, closed, noted, unknown, last, str(err))
        if backoff is not None:
            backoff.succeeded()
        fresh = [c for c in page if isinstance(c.get("seq"), int) and c["seq"] > last]
        if not fresh:
            break
        with conn.transaction():
            # Lock the position: two hubs polling at once apply each change once (the second waits,
            # then sees the moved position and skips what the first applied).
            stored = conn.execute(
                "SELECT last_seq FROM tenancy_feed WHERE feed = %s FOR UPDATE", (FEED,)
            ).fetchone()
            start = int(stored[0]) if stored else 0
            for change in sorted(fresh, key=lambda c: int(c["seq"])):
                if change["seq"] <= start:
                    continue
                outcome = _apply(conn, change, close_case)
                seen += 1
                closed += outcome == "closed"
                noted += outcome == "noted"
                unknown += outcome == "unknown"
                start = int(change["seq"])
            conn.execute(
                "INSERT INTO tenancy_feed (feed, last_seq) VALUES (%s, %s) ON CONFLICT (feed)"
                " DO UPDATE SET last_seq = excluded.last_seq, updated_at = now()",
                (FEED, start),
            )
        last = start
        if len(page) < limit:
            break
    return ChangesResult(seen, closed, noted, unknown, last)


def _position(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT last_seq FROM tenancy_feed WHERE feed = %s", (FEED,)).fetchone()
    return int(row[0]) if row else 0


def _apply(conn: psycopg.Connection[Any], change: dict[str, Any], close_case: CaseCloser) -> str:
    """Apply one change in the caller's transaction: ``closed``, ``noted``, ``unknown`` or ``unchanged``."""
    key = change.get("idempotency_key")
    # By anju's case reference, as the tenancy system files it; the key only where the change carries no
    # reference (a system that ignores keys need not echo them). Either way only a case we filed.
    ref = change.get("case_ref")
    by, value = ("o.case_id", case_of_ref(ref)) if isinstance(ref, str) else ("o.idempotency_key", key)
    row = conn.execute(
        f"SELECT c.id, c.status FROM tenancy_outbox o JOIN cases c ON c.id = o.case_id"
        f" WHERE o.kind = 'filing' AND {by} = %s FOR UPDATE OF c", (value,),
    ).fetchone()
    if row is None:
        log.warning("tenancy change %s names no case of ours (reference %r, key %r)", change.get("seq"),
                    ref, key)
        return "unknown"
    case_id, status = int(row[0]), str(row[1])
    tenancy_status = str(change.get("status"))
    detail = {"tenancy_status": tenancy_status, "tenancy_case_id": change.get("tenancy_case_id"),
              "change_seq": change["seq"], "changed_at": change.get("changed_at")}
    if change.get("note"):
        detail["note"] = str(change["note"])[:500]
    if tenancy_status in CLOSING_STATUSES and status != "closed":
        close_case(conn, case_id, {"from": status, "to": "closed", **detail})
        return "closed"
    if tenancy_status in CLOSING_STATUSES:
        return "unchanged"
    record_audit(conn, actor=ACTOR, action="case.tenancy_status", object_type="case", object_id=case_id,
                 detail=detail)
    return "noted"
