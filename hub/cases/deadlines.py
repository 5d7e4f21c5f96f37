"""The workflow's clock: a case whose deadline passes gets a ``case.overdue`` row in its trail, once.

超期 itself is computed whenever it is read (``anju.hub.cases.workflow.OVERDUE_SQL``); this records the
moment it was first seen, so that the trail and the audit log say when a case ran late, and what it was
waiting for. The hub's pipeline calls it every minute or so; a missed run is caught up by the next.
"""

from __future__ import annotations

from typing import Any

import psycopg

from anju.hub.audit import record_audit
from anju.hub.cases.workflow import NEXT_STEP_DEADLINE, OVERDUE_SQL

ACTOR = "system:workflow"
# What a recorded passing is marked with: the deadline, or for a case without one (opened before there
# were deadlines) the visit day it missed.
_MARK = "coalesce(c.due_at, c.visit_on::timestamptz)"


def note_overdue(conn: psycopg.Connection[Any]) -> list[int]:
    """Record, in the caller's transaction, each case that is overdue and was not yet recorded as such
    for its current deadline: one audit row each (the step it waits for, the deadline, whether a
    scheduled visit day went by). Returns the cases recorded."""
    rows = conn.execute(
        f"UPDATE cases c SET overdue_noted_due = {_MARK} WHERE {OVERDUE_SQL}"
        f" AND c.overdue_noted_due IS DISTINCT FROM {_MARK}"
        " RETURNING c.id, c.status, c.due_at, c.visit_on, c.assignee"
    ).fetchall()
    for case_id, status, due_at, visit_on, assignee in sorted(rows):
        record_audit(conn, actor=ACTOR, action="case.overdue", object_type="case", object_id=case_id,
                     detail={"status": status, "waits_for": NEXT_STEP_DEADLINE.get(status),
                             "due": due_at.isoformat() if due_at else None,
                             "visit_on": visit_on.isoformat() if visit_on else None,
                             "assignee": assignee})
    return sorted(int(r[0]) for r in rows)
