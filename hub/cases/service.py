"""Cases: opening with frozen evidence and its hash, the workflow's transitions, and queueing the filing.

Every change happens in the caller's transaction together with its audit row and, when the case is to
be filed, its tenancy outbox row: the outbox is written in the same transaction as the case change.

Filing follows the inspector's work: by default a case is filed once it is confirmed. A city that wants
leads reported sets ``ANJU_AUTO_FILE=true``: the case is then filed when it opens and stays workable,
and every later decision (assign, visit, confirm, dismiss, close) goes to the tenancy system as an
update through the same outbox, after the filing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from anju.hub.audit import record_audit
from anju.hub.auth.models import Principal, Role
from anju.hub.auth.service import inspectors_for
from anju.hub.cases.errors import ActionForbidden, CaseNotFound, Refusal, TransitionRefused
from anju.hub.cases.states import ACCEPTS_IMPLICITLY, DISMISS_REASONS, TRANSITIONS, Action
from anju.hub.cases.suppression import latest_decision
from anju.hub.cases.workflow import WorkflowPolicy, default_policy, due_after, is_overdue
from anju.hub.tenancy.filing import FilingSettings, idempotency_key, queue_filing, queue_update
from anju.models.evidence import evidence_sha256

DETECTOR = "system:detector"
TENANCY = "system:tenancy"


@dataclass(frozen=True, slots=True)
class OpenedCase:
    """A case just opened, with the key it will be filed under."""

    case_id: int
    idempotency_key: str
    evidence_sha256: str


def open_case(
    conn: psycopg.Connection, *, alert_id: int, unit_id: str, estate_id: str, kind: str, summary: str,
    evidence: dict[str, Any], actor: str = DETECTOR, opened_at: datetime | None = None,
    auto_file: bool | None = None, policy: WorkflowPolicy | None = None,
) -> OpenedCase | None:
    """Open a case for an alert (filing it at once when ``auto_file``, default ``ANJU_AUTO_FILE``), due
    to be assigned by the ``policy``'s deadline (default ``hub/cases/workflow.yaml``);
    None when the unit already has an undecided or confirmed case of that kind, to which the alert is
    attached. A dismissed case not closed yet is closed first: the alert came on new evidence (the
    detector asks ``anju.hub.cases.suppression`` before it flags a unit again), so it starts a new case."""
    opened_at = opened_at or datetime.now(UTC)
    if auto_file is None:
        auto_file = FilingSettings().auto_file
    digest = evidence_sha256(evidence)
    before = latest_decision(conn, unit_id=unit_id, kind=kind)
    _supersede_dismissed(conn, unit_id=unit_id, kind=kind, actor=actor, alert_id=alert_id)
    row = conn.execute(
        "INSERT INTO cases (unit_id, estate_id, kind, alert_id, status, opened_at, evidence, evidence_sha256,"
        " summary, alert_ids, stage_since, due_at) VALUES (%s, %s, %s, %s, 'open', %s, %s, %s, %s,"
        " ARRAY[%s]::bigint[], %s, %s)"
        " ON CONFLICT (unit_id, kind) WHERE status <> 'closed' DO NOTHING RETURNING id",
        (unit_id, estate_id, kind, alert_id, opened_at, Jsonb(evidence), digest, summary, alert_id, opened_at,
         due_after(policy or default_policy(), "open", opened_at)),
    ).fetchone()
    if row is None:
        existing = conn.execute(
            "UPDATE cases SET alert_ids = CASE WHEN %s = ANY(alert_ids) THEN alert_ids"
            " ELSE alert_ids || %s::bigint END, updated_at = now()"
            " WHERE unit_id = %s AND kind = %s AND status <> 'closed' RETURNING id",
            (alert_id, alert_id, unit_id, kind),
        ).fetchone()
        record_audit(
            conn, actor=actor, action="case.realerted", object_type="case",
            object_id=existing[0] if existing else "?", detail={"alert_id": alert_id},
        )
        return None
    case_id = int(row[0])
    detail: dict[str, Any] = {"alert_id": alert_id, "unit_id": unit_id, "kind": kind,
                              "evidence_sha256": digest, "auto_file": auto_file}
    if before is not None:  # flagged again after a decision: say on which earlier case
        detail.update({"after_case": before.case_id, "after_outcome": before.outcome,
                       "after_reason": before.reason, "decided_window_end": before.window_end.isoformat()})
    record_audit(conn, actor=actor, action="case.opened", object_type="case", object_id=case_id,
                 detail=detail)
    key = idempotency_key(case_id)
    if auto_file:
        queue_filing(conn, case_id=case_id, actor=actor, now=opened_at)
    return OpenedCase(case_id=case_id, idempotency_key=key, evidence_sha256=digest)


def _supersede_dismissed(
    conn: psycopg.Connection, *, unit_id: str, kind: str, actor: str, alert_id: int,
) -> None:
    """Close the unit's dismissed, not yet closed case of ``kind`` (audited): new evidence opens a new
    case rather than landing on one whose verdict is given."""
    row = conn.execute(
        "UPDATE cases SET status = 'closed', closed_at = now(), updated_at = now()"
        " WHERE unit_id = %s AND kind = %s AND status = 'dismissed' RETURNING id", (unit_id, kind),
    ).fetchone()
    if row is not None:
        record_audit(conn, actor=actor, action="case.close", object_type="case", object_id=int(row[0]),
                     detail={"from": "dismissed", "to": "closed", "by": "new_evidence", "alert_id": alert_id})
        queue_update(conn, case_id=int(row[0]), action="close", status="closed", actor=actor)


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """A case after an action: its id, old and new status."""

    case_id: int
    before: str
    after: str


def transition(
    conn: psycopg.Connection, *, case_id: int, action: Action, principal: Principal,
    assignee: str | None = None, visit_on: date | None = None, reason: str | None = None, note: str = "",
    now: datetime | None = None, policy: WorkflowPolicy | None = None,
) -> TransitionResult:
    """Take one workflow action on a case as this person, audited under their name and role, in the
    caller's transaction; the case's deadline moves with its status (``policy``, default the packaged
    ``hub/cases/workflow.yaml``). Raise ``CaseNotFound`` (also for another estate's case),
    ``ActionForbidden`` or ``TransitionRefused``, each with its refusal code (``hub/cases/errors.py``)."""
    now = now or datetime.now(UTC)
    policy = policy or default_policy()
    row = conn.execute(
        "SELECT id, unit_id, estate_id, kind, alert_id, status, assignee, due_at, visit_on FROM cases"
        " WHERE id = %s FOR UPDATE", (case_id,),
    ).fetchone()
    if row is None or not principal.sees(row[2]):
        raise CaseNotFound(case_id)
    _, unit_id, estate_id, kind, alert_id, status, current_assignee, due_at, visit_day = row
    rule = TRANSITIONS[action]
    if principal.role not in rule.roles:
        raise ActionForbidden(Refusal.ROLE, role=principal.role.value, action=action.value)
    if (principal.role is Role.INSPECTOR and current_assignee is not None
            and current_assignee != principal.name):
        raise ActionForbidden(Refusal.ASSIGNED, case_id=case_id, name=current_assignee)
    if status not in rule.sources:
        raise TransitionRefused(Refusal.STATUS, action=action.value, status=status)
    after = rule.after(status)
    note = note.strip()[:2000]
    detail: dict[str, Any] = {"from": status, "to": after, "role": principal.role.value}
    if note:
        detail["note"] = note
    sets = ["status = %(target)s", "updated_at = %(now)s"]
    params: dict[str, Any] = {"target": after, "id": case_id, "now": now}
    _action_input(conn, action, sets=sets, params=params, detail=detail, estate_id=estate_id,
                  assignee=assignee, visit_on=visit_on, reason=reason, note=note)
    if action is Action.ESCALATE and not is_overdue(status, due_at, now, visit_day):
        raise TransitionRefused(Refusal.NOT_OVERDUE, case_id=case_id,
                                due=due_at.date().isoformat() if due_at else "—")
    if status in ACCEPTS_IMPLICITLY and action in (Action.SCHEDULE_VISIT, Action.RECORD_VISIT,
                                                   Action.CONFIRM, Action.DISMISS):
        sets.append("accepted_at = coalesce(accepted_at, %(now)s)")  # taking it up is signing for it
        detail["accepted"] = True
    if principal.role is Role.INSPECTOR and current_assignee is None and action is not Action.ASSIGN:
        sets.append("assignee = %(me)s")  # an inspector taking up an unassigned case owns it from now on
        params["me"] = principal.name
    if not _keeps_deadline(action, before=status, due_at=due_at):
        due = due_after(policy, after, now)
        sets.extend(["due_at = %(due)s", "stage_since = %(now)s"])
        params["due"] = due
        detail["due"] = due.isoformat() if due else None
    conn.execute(f"UPDATE cases SET {', '.join(sets)} WHERE id = %(id)s", params)
    record_audit(conn, actor=principal.actor, action=f"case.{action.value}", object_type="case",
                 object_id=case_id, detail=detail)
    if action in (Action.CONFIRM, Action.DISMISS):
        _store_verdict(conn, case_id=case_id, alert_id=alert_id, unit_id=unit_id, estate_id=estate_id,
                       kind=kind, verdict=after, reason=reason if action is Action.DISMISS else None,
                       note=note, principal=principal)
    # Filed already (a lead, with ANJU_AUTO_FILE, or a confirmed case): every change follows as an update.
    # Else a confirmation is what files the case; nothing before it leaves the hub.
    updated = queue_update(conn, case_id=case_id, action=action.value, status=after,
                           actor=principal.actor, reason=reason if action is Action.DISMISS else None,
                           visit_on=visit_on, now=now)
    if not updated and action is Action.CONFIRM:
        queue_filing(conn, case_id=case_id, actor=principal.actor, now=now)
    if action in (Action.CONFIRM, Action.DISMISS, Action.CLOSE):
        # A decided case's alerts leave the open queue; hub.cases.suppression keeps them from coming back
        # on the same evidence.
        close_case_alerts(conn, case_id=case_id, unit_id=unit_id, kind=kind, actor=principal.actor,
                          by=action.value)
    return TransitionResult(case_id=case_id, before=status, after=after)


def _action_input(
    conn: psycopg.Connection, action: Action, *, sets: list[str], params: dict[str, Any],
    detail: dict[str, Any], estate_id: str, assignee: str | None, visit_on: date | None,
    reason: str | None, note: str,
) -> None:
    """Check an action's own input and add what it sets on the case (refusing wrong input)."""
    if action is Action.ASSIGN:
        if not assignee or assignee not in inspectors_for(conn, estate_id=estate_id):
            raise TransitionRefused(Refusal.ASSIGNEE, name=assignee, estate=estate_id)
        sets.extend(["assignee = %(assignee)s", "accepted_at = NULL"])  # the new inspector signs for it
        params["assignee"] = detail["assignee"] = assignee
    elif action is Action.SCHEDULE_VISIT:
        if visit_on is None:
            raise TransitionRefused(Refusal.VISIT_DATE)
        sets.append("visit_on = %(visit_on)s")
        params["visit_on"] = visit_on
        detail["visit_on"] = visit_on.isoformat()
    elif action is Action.ACCEPT:
        sets.append("accepted_at = %(now)s")
    elif action is Action.RECORD_VISIT:
        sets.append("visited_at = %(now)s")
    elif action is Action.DISMISS:
        if reason not in DISMISS_REASONS:
            raise TransitionRefused(Refusal.DISMISS_REASON, choices=", ".join(DISMISS_REASONS))
        if reason == "other" and not note:
            raise TransitionRefused(Refusal.OTHER_NOTE)
        detail["reason"] = reason
    elif action is Action.CLOSE:
        sets.append("closed_at = %(now)s")
    elif action is Action.ESCALATE:
        if not note:  # 督办 says what is to be done
            raise TransitionRefused(Refusal.NOTE_REQUIRED, action=action.value)
        sets.extend(["escalated_at = %(now)s", "escalations = escalations + 1"])


def _keeps_deadline(action: Action, *, before: str, due_at: datetime | None) -> bool:
    """Whether the case keeps its deadline: the action does not move it to another step (an escalation;
    a visit scheduled or rescheduled inside the visit step, whose deadline runs from acceptance)."""
    if action is Action.ESCALATE:
        return True
    in_visit_step = before in ("accepted", "visit_scheduled") and due_at is not None
    return action is Action.SCHEDULE_VISIT and in_visit_step


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One case of a batch: ``assigned``, ``not_found``, ``forbidden`` or ``refused``, and why (in
    English, and as a refusal code)."""

    case_id: int
    outcome: str
    detail: str = ""
    code: str = ""


def assign_many(
    conn: psycopg.Connection, *, case_ids: list[int], assignee: str, principal: Principal, note: str = "",
    policy: WorkflowPolicy | None = None,
) -> list[BatchOutcome]:
    """Assign each case to ``assignee``, each in its own transaction with its own audit row, so that one
    case refused (another estate's, already decided) neither stops nor undoes the others."""
    outcomes: list[BatchOutcome] = []
    for case_id in dict.fromkeys(case_ids):  # each case once, in the order given
        try:
            with conn.transaction():
                transition(conn, case_id=case_id, action=Action.ASSIGN, principal=principal,
                           assignee=assignee, note=note, policy=policy)
        except CaseNotFound as err:
            outcomes.append(BatchOutcome(case_id, "not_found", str(err), err.code))
        except ActionForbidden as err:
            outcomes.append(BatchOutcome(case_id, "forbidden", str(err), err.code))
        except TransitionRefused as err:
            outcomes.append(BatchOutcome(case_id, "refused", str(err), err.code))
        else:
            outcomes.append(BatchOutcome(case_id, "assigned"))
    return outcomes


def close_case_alerts(
    conn: psycopg.Connection, *, case_id: int, unit_id: str, kind: str, actor: str, by: str,
) -> list[int]:
    """Close the open alerts a case answers for (its unit's of its kind), one audit row each, in the
    caller's transaction; the ids closed. Whatever ends a case, a person or the tenancy system, calls
    this, so that no alert stays in the open queue behind a closed case."""
    rows = conn.execute(
        "UPDATE alerts SET status = 'closed', updated_at = now() WHERE status = 'open' AND unit_id = %s"
        " AND kind = %s RETURNING id", (unit_id, kind),
    ).fetchall()
    closed = sorted(int(r[0]) for r in rows)
    for alert_id in closed:
        record_audit(conn, actor=actor, action="alert.closed", object_type="alert", object_id=alert_id,
                     detail={"case_id": case_id, "by": by})
    return closed


def close_for_tenancy(conn: psycopg.Connection, case_id: int, detail: dict[str, Any]) -> None:
    """Close a case the tenancy system ended (closed, or the household moved out) with its open alerts,
    audited as ``system:tenancy``; the changes feed (``anju.hub.tenancy.changes``) calls this with the
    change's ``detail`` (``from``, ``to``, the tenancy status and its numbers)."""
    row = conn.execute(
        "UPDATE cases SET status = 'closed', closed_at = now(), updated_at = now() WHERE id = %s"
        " RETURNING unit_id, kind", (case_id,),
    ).fetchone()
    if row is None:
        raise CaseNotFound(case_id)
    record_audit(conn, actor=TENANCY, action="case.close", object_type="case", object_id=case_id,
                 detail=detail)
    close_case_alerts(conn, case_id=case_id, unit_id=str(row[0]), kind=str(row[1]), actor=TENANCY,
                      by=f"tenancy:{detail.get('tenancy_status')}")


def _store_verdict(
    conn: psycopg.Connection, *, case_id: int, alert_id: int | None, unit_id: str, estate_id: str, kind: str,
    verdict: str, reason: str | None, note: str, principal: Principal,
) -> None:
    """Keep the inspector's verdict with the alert's score and rule version, for the models to learn from."""
    conn.execute(
        "INSERT INTO case_verdicts (case_id, alert_id, unit_id, estate_id, kind, verdict, reason_code, note,"
        " score, rule_version, decided_by) SELECT %s, %s, %s, %s, %s, %s, %s, %s, a.score, a.rule_version, %s"
        " FROM (SELECT 1) one LEFT JOIN alerts a ON a.id = %s",
        (case_id, alert_id, unit_id, estate_id, kind, verdict, reason, note, principal.name, alert_id),
    )
