"""A case as its household reads it: state and deadlines, reasons, their own evidence, trail, viewers.

Everything here goes through ``anju.hub.household.privacy``: the alert's reasons and evidence, the audit rows'
details. Read-only; the routes check first that the case is about the signed-in person's home.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg

from anju.hub.cases.schemas import Reason
from anju.hub.household.answers import Answer, case_answers
from anju.hub.household.privacy import public, public_reason
from anju.hub.household.viewers import VIEWED, Viewer, case_viewers
from anju.hub.tenancy.hold import answer_deadline, answer_hold

# Trail rows a household reads: the case's own steps (views are listed apart, deliveries' internals and
# the detector's bookkeeping are not steps of the case).
HIDDEN_ACTIONS = frozenset({VIEWED, "case.realerted", "alert.reflagged"})
# Audit detail fields a trail row shows (after the private ones are gone).
TRAIL_FIELDS = ("reason", "visit_on", "tenancy_status", "assignee", "event", "why", "photos")


@dataclass(frozen=True, slots=True)
class TrailRow:
    """One step of the case: when, who (name and role), what, and its public details."""

    ts: datetime
    name: str
    role: str
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HouseholdCase:
    """Everything the household's case page shows."""

    id: int
    unit_id: str
    kind: str
    status: str
    opened_at: datetime | None
    visit_on: date | None
    answer_by: datetime | None
    notice_waiting: bool
    filing_held_until: datetime | None
    override_why: str | None
    reasons: list[Reason]
    evidence: dict[str, Any]
    days: list[date]
    trail: list[TrailRow]
    viewers: list[Viewer]
    answers: list[Answer] = field(default_factory=list)


def cases_of_unit(conn: psycopg.Connection[Any], *, unit_id: str) -> list[dict[str, Any]]:
    """The unit's cases, newest first: id, kind, status, opened, answer deadline."""
    rows = conn.execute(
        "SELECT c.id, c.kind, c.status, c.opened_at,"
        " (SELECT max(n.answer_by) FROM household_notices n WHERE n.case_id = c.id)"
        " FROM cases c WHERE c.unit_id = %s ORDER BY c.opened_at DESC NULLS LAST, c.id DESC", (unit_id,),
    ).fetchall()
    return [{"id": r[0], "kind": r[1], "status": r[2], "opened_at": r[3], "answer_by": r[4]} for r in rows]


def _actors(conn: psycopg.Connection[Any], actors: set[str]) -> dict[str, tuple[str, str]]:
    """Each actor's name and role: staff by their user row, household members by the lease, the rest
    (``system:detector``) as the system part that acted."""
    known: dict[str, tuple[str, str]] = {}
    for name, role in conn.execute("SELECT name, role FROM users WHERE 'user:' || name = ANY(%s)",
                                   (list(actors),)).fetchall():
        known[f"user:{name}"] = (name, role)
    for member_id, name, relation in conn.execute(
            "SELECT id, name, relation FROM household_members WHERE 'household:' || id::text = ANY(%s)",
            (list(actors),)).fetchall():
        known[f"household:{member_id}"] = (name, relation)
    for actor in actors - known.keys():
        kind, _, rest = actor.partition(":")
        known[actor] = (rest.partition(":")[0] or kind, "system" if kind == "system" else kind)
    return known


def household_trail(conn: psycopg.Connection[Any], *, case_id: int, alert_ids: list[int]) -> list[TrailRow]:
    """The case's audit rows as the household reads them, oldest first."""
    rows = conn.execute(
        "SELECT ts, actor, action, detail FROM audit_log WHERE ((object_type = 'case' AND object_id = %s)"
        " OR (object_type = 'alert' AND object_id = ANY(%s))) AND NOT action = ANY(%s) ORDER BY seq",
        (str(case_id), [str(a) for a in alert_ids], list(HIDDEN_ACTIONS)),
    ).fetchall()
    names = _actors(conn, {r[1] for r in rows})
    trail = []
    for ts, actor, action, detail in rows:
        shown = public(detail or {})
        name, role = names[actor]
        trail.append(TrailRow(ts=ts, name=name, role=role, action=action,
                              detail={k: shown[k] for k in TRAIL_FIELDS if shown.get(k) not in (None, "")}))
    return trail


def household_case(conn: psycopg.Connection[Any], *, case_id: int, unit_id: str, now: datetime
                   ) -> HouseholdCase | None:
    """The case if it is about ``unit_id``, as its household reads it; None otherwise (404)."""
    row = conn.execute(
        "SELECT c.id, c.unit_id, c.kind, c.status, c.opened_at, c.visit_on, c.alert_ids, a.reasons,"
        " a.evidence,"
        " (SELECT o.why FROM filing_overrides o WHERE o.case_id = c.id)"
        " FROM cases c LEFT JOIN alerts a ON a.id = c.alert_id WHERE c.id = %s", (case_id,),
    ).fetchone()
    if row is None or row[1] != unit_id:
        return None
    reasons = [Reason.model_validate(public_reason(r)) for r in (row[7] or []) if isinstance(r, dict)]
    evidence = public(row[8] or {})
    days = [date.fromisoformat(d) for d in evidence.pop("days", []) if isinstance(d, str)]
    series = {k: v for k, v in evidence.items() if isinstance(v, list) and len(v) == len(days)}
    deadline, waiting = answer_deadline(conn, case_id=case_id)
    return HouseholdCase(
        id=row[0], unit_id=row[1], kind=row[2], status=row[3], opened_at=row[4], visit_on=row[5],
        answer_by=deadline, notice_waiting=waiting,
        filing_held_until=answer_hold(conn, case_id=case_id, now=now),
        override_why=row[9], reasons=reasons, evidence=series, days=days,
        trail=household_trail(conn, case_id=case_id, alert_ids=list(row[6] or [])),
        viewers=case_viewers(conn, case_id=case_id), answers=case_answers(conn, case_id=case_id),
    )
