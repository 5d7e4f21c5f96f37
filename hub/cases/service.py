"""Opening cases: frozen evidence with its hash, the tenancy outbox row and audit rows, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from hub.cases.audit import record_audit
from models.evidence import evidence_sha256

DETECTOR = "system:detector"


@dataclass(frozen=True, slots=True)
class OpenedCase:
    """A case just opened, with the key it will be filed under."""

    case_id: int
    idempotency_key: str
    evidence_sha256: str


def idempotency_key(case_id: int) -> str:
    """The key the tenancy system deduplicates this case's filing on."""
    return f"anju-case-{case_id}"


def tenancy_payload(
    *, case_id: int, unit_id: str, estate_id: str, kind: str, opened_at: datetime, summary: str,
    reasons: list[dict[str, Any]], evidence_hash: str,
) -> dict[str, Any]:
    """The body of ``POST /api/v1/cases`` for one case."""
    return {
        "case_ref": f"ANJU-{case_id}",
        "unit_id": unit_id,
        "estate_id": estate_id,
        "kind": kind,
        "opened_at": opened_at.isoformat(),
        "summary": summary,
        "reasons": reasons,
        "evidence_sha256": evidence_hash,
    }


def open_case(
    conn: psycopg.Connection, *, alert_id: int, unit_id: str, estate_id: str, kind: str, summary: str,
    evidence: dict[str, Any], actor: str = DETECTOR, opened_at: datetime | None = None,
) -> OpenedCase | None:
    """Open a case for an alert and queue its filing; None when the unit already has a non-closed case."""
    opened_at = opened_at or datetime.now(UTC)
    digest = evidence_sha256(evidence)
    row = conn.execute(
        "INSERT INTO cases (unit_id, estate_id, kind, alert_id, status, opened_at, evidence, evidence_sha256)"
        " VALUES (%s, %s, %s, %s, 'open', %s, %s, %s)"
        " ON CONFLICT (unit_id, kind) WHERE status <> 'closed' DO NOTHING RETURNING id",
        (unit_id, estate_id, kind, alert_id, opened_at, Jsonb(evidence), digest),
    ).fetchone()
    if row is None:
        existing = conn.execute(
            "SELECT id FROM cases WHERE unit_id = %s AND kind = %s AND status <> 'closed'", (unit_id, kind)
        ).fetchone()
        record_audit(
            conn, actor=actor, action="case.realerted", object_type="case",
            object_id=existing[0] if existing else "?", detail={"alert_id": alert_id},
        )
        return None
    case_id = int(row[0])
    key = idempotency_key(case_id)
    payload = tenancy_payload(
        case_id=case_id, unit_id=unit_id, estate_id=estate_id, kind=kind, opened_at=opened_at,
        summary=summary, reasons=list(evidence.get("reasons", [])), evidence_hash=digest,
    )
    conn.execute(
        "INSERT INTO tenancy_outbox (case_id, idempotency_key, payload, state, attempts, next_attempt_at)"
        " VALUES (%s, %s, %s, 'pending', 0, %s)",
        (case_id, key, Jsonb(payload), opened_at),
    )
    record_audit(
        conn, actor=actor, action="case.opened", object_type="case", object_id=case_id,
        detail={"alert_id": alert_id, "unit_id": unit_id, "kind": kind, "evidence_sha256": digest},
    )
    record_audit(
        conn, actor=actor, action="tenancy.queued", object_type="case", object_id=case_id,
        detail={"idempotency_key": key},
    )
    return OpenedCase(case_id=case_id, idempotency_key=key, evidence_sha256=digest)
