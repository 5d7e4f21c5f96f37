"""What anju sends the city tenancy system about a case, and the outbox rows that carry it.

The tenancy domain owns this seam: the filing's payload, its idempotency key and anju's case reference,
the updates that follow each later decision, and the rows they are queued as. The case workflow calls
in here (``queue_filing``, ``queue_update``) in its own transaction, so a decision and the row that
reports it commit together; nothing here imports the case workflow.

Whether a case is filed when it opens is the city's policy (``ANJU_AUTO_FILE``, ``FilingSettings``);
by default a case is filed once an inspector confirms it. ``filing_eligibility`` is the one place that
says whether (and from when) a confirmed case may go out for enforcement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic_settings import BaseSettings, SettingsConfigDict

from anju.hub.audit import record_audit
from anju.hub.audit.store import head as audit_head
from anju.hub.tenancy.hold import answer_hold


class FilingSettings(BaseSettings):
    """``ANJU_AUTO_FILE``: file a case to the tenancy system once an inspector has confirmed it (false,
    the default), or as a lead when it opens (true; later decisions then follow as updates).

    Built by the caller that owns the settings and passed down; ``open_case`` builds one only when its
    caller (the detector) passed no choice."""

    model_config = SettingsConfigDict(env_prefix="ANJU_", env_file=None, extra="ignore")

    auto_file: bool = False


class FilingError(Exception):
    """Base of the filing seam's errors."""


class UnknownCase(FilingError):
    """A filing was asked for a case that does not exist."""


def idempotency_key(case_id: int) -> str:
    """The key the tenancy system deduplicates this case's filing on (when it honours keys at all)."""
    return f"anju-case-{case_id}"


def update_key(case_id: int, seq: int) -> str:
    """The key of the case's ``seq``-th update (1, 2, ...) after its filing."""
    return f"anju-case-{case_id}-update-{seq}"


def case_ref(case_id: int) -> str:
    """anju's reference of a case in the tenancy system: what a filing is looked up by."""
    return f"ANJU-{case_id}"


def case_of_ref(ref: str) -> int | None:
    """The case id of anju's case reference (``ANJU-7``: 7); None for a reference that is not ours."""
    prefix, _, digits = ref.partition("-")
    return int(digits) if prefix == "ANJU" and digits.isascii() and digits.isdigit() and len(digits) < 19 \
        else None


def tenancy_payload(
    *, case_id: int, unit_id: str, estate_id: str, kind: str, opened_at: datetime, summary: str,
    reasons: list[dict[str, Any]], evidence_hash: str, audit_checkpoint: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """The body of ``POST /api/v1/cases`` for one case.

    ``audit_checkpoint``: the audit chain's head (seq, MAC) as the filing is queued; the tenancy system
    keeps it, a witness of the chain that no one with the hub's database can take back."""
    checkpoint = {"seq": audit_checkpoint[0], "mac": audit_checkpoint[1]} if audit_checkpoint else None
    return {
        "audit_checkpoint": checkpoint,
        "case_ref": case_ref(case_id),
        "unit_id": unit_id,
        "estate_id": estate_id,
        "kind": kind,
        "opened_at": opened_at.isoformat(),
        "summary": summary,
        "reasons": reasons,
        "evidence_sha256": evidence_hash,
    }


@dataclass(frozen=True, slots=True)
class FilingEligibility:
    """Whether a confirmed case may be filed for enforcement now: ``not_before`` holds its filing back
    until then (the outbox row waits); ``why`` is a code saying what holds it."""

    not_before: datetime | None = None
    why: str | None = None


def filing_eligibility(conn: psycopg.Connection[Any], *, case_id: int, now: datetime) -> FilingEligibility:
    """When a confirmed case may go to the tenancy system for enforcement.

    A confirmed case is not filed before the household's answer period ends unless a supervisor
    recorded why (``anju.hub.tenancy.hold.answer_hold``)."""
    until = answer_hold(conn, case_id=case_id, now=now)
    return FilingEligibility(not_before=until, why="household_answer_period" if until else None)


def filing_queued(conn: psycopg.Connection[Any], *, case_id: int) -> bool:
    """Whether the case's filing is in the outbox (in any state)."""
    row = conn.execute(
        "SELECT 1 FROM tenancy_outbox WHERE case_id = %s AND kind = 'filing'", (case_id,)
    ).fetchone()
    return row is not None


def queue_filing(
    conn: psycopg.Connection[Any], *, case_id: int, actor: str, now: datetime | None = None,
) -> bool:
    """Write the case's tenancy outbox row (once: the key is unique); False if it was queued before.

    A filing held back by ``filing_eligibility`` is queued all the same, due when the hold ends."""
    now = now or datetime.now(UTC)
    case = conn.execute(
        "SELECT unit_id, estate_id, kind, opened_at, summary, evidence, evidence_sha256 FROM cases"
        " WHERE id = %s", (case_id,),
    ).fetchone()
    if case is None:
        raise UnknownCase(f"case {case_id} not found")
    unit_id, estate_id, kind, opened_at, summary, evidence, digest = case
    key = idempotency_key(case_id)
    payload = tenancy_payload(
        case_id=case_id, unit_id=unit_id, estate_id=estate_id, kind=kind, opened_at=opened_at,
        summary=summary, reasons=list((evidence or {}).get("reasons", [])), evidence_hash=digest,
        audit_checkpoint=audit_head(conn),
    )
    hold = filing_eligibility(conn, case_id=case_id, now=now)
    due = max(now, hold.not_before) if hold.not_before else now
    row = conn.execute(
        "INSERT INTO tenancy_outbox (case_id, kind, idempotency_key, payload, state, attempts,"
        " next_attempt_at) VALUES (%s, 'filing', %s, %s, 'pending', 0, %s)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        (case_id, key, Jsonb(payload), due),
    ).fetchone()
    if row is None:
        return False
    detail: dict[str, Any] = {"idempotency_key": key}
    if hold.not_before:
        detail.update({"held_until": due.isoformat(), "held_by": hold.why})
    record_audit(conn, actor=actor, action="tenancy.queued", object_type="case", object_id=case_id,
                 detail=detail)
    return True


def queue_update(
    conn: psycopg.Connection[Any], *, case_id: int, action: str, status: str, actor: str,
    reason: str | None = None, visit_on: date | None = None, now: datetime | None = None,
) -> bool:
    """Queue a decision on a filed case as an update to the tenancy system, after its filing and any
    earlier update (the outbox sends a case's rows in order); False when the case was never filed.

    Inspectors' names and notes stay here: the update says what was decided, when, and why by code.
    The update that carries a confirmation (a lead filed when it opened, ``ANJU_AUTO_FILE``) is held by
    ``filing_eligibility`` like a filing: it is what files the case for enforcement."""
    if not filing_queued(conn, case_id=case_id):
        return False
    now = now or datetime.now(UTC)
    confirms = status == "confirmed"
    hold = filing_eligibility(conn, case_id=case_id, now=now) if confirms else FilingEligibility()
    due = max(now, hold.not_before) if hold.not_before else now
    (count,) = conn.execute(
        "SELECT count(*) FROM tenancy_outbox WHERE case_id = %s AND kind = 'update'", (case_id,)
    ).fetchone() or (0,)
    seq = int(count) + 1
    key = update_key(case_id, seq)
    checkpoint = audit_head(conn)
    payload = {
        "case_ref": case_ref(case_id), "update_seq": seq, "action": action, "status": status,
        "decided_at": now.isoformat(), "reason": reason,
        "visit_on": visit_on.isoformat() if visit_on else None,
        "audit_checkpoint": {"seq": checkpoint[0], "mac": checkpoint[1]} if checkpoint else None,
    }
    conn.execute(
        "INSERT INTO tenancy_outbox (case_id, kind, idempotency_key, payload, state, attempts,"
        " next_attempt_at) VALUES (%s, 'update', %s, %s, 'pending', 0, %s)",
        (case_id, key, Jsonb(payload), due),
    )
    detail: dict[str, Any] = {"idempotency_key": key, "update": action, "status": status}
    if hold.not_before:
        detail.update({"held_until": due.isoformat(), "held_by": hold.why})
    record_audit(conn, actor=actor, action="tenancy.update_queued", object_type="case", object_id=case_id,
                 detail=detail)
    return True
