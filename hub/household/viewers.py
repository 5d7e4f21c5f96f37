"""Who looked at a case: every view by staff or household is an audit row, and the household reads them.

A view is recorded at most once per person, case and hour, so reloading a page does not flood the log.
Views are audit rows of their own object type (``case_view``, the case's id): they are not steps of the
case, so the case's trail (``object_type = 'case'``) and its filing are unchanged by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from anju.hub.audit import record_audit

VIEWED = "case.viewed"
VIEW_OBJECT = "case_view"
_QUIET = timedelta(hours=1)


def record_view(
    conn: psycopg.Connection[Any], *, actor: str, case_id: int, now: datetime | None = None,
) -> None:
    """Audit that ``actor`` viewed the case (unless they did within the hour); its own transaction."""
    now = now or datetime.now(UTC)
    with conn.transaction():
        seen = conn.execute(
            "SELECT 1 FROM audit_log WHERE object_type = %s AND object_id = %s AND action = %s"
            " AND actor = %s AND ts > %s LIMIT 1", (VIEW_OBJECT, str(case_id), VIEWED, actor, now - _QUIET),
        ).fetchone()
        if seen is None:
            record_audit(conn, actor=actor, action=VIEWED, object_type=VIEW_OBJECT, object_id=case_id)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Someone who viewed a case: name, role (a staff role, or ``tenant`` / ``member``), when."""

    name: str
    role: str
    first: datetime
    last: datetime
    times: int


def case_viewers(conn: psycopg.Connection[Any], *, case_id: int) -> list[Viewer]:
    """Everyone who viewed the case, by the audit log, most recent first."""
    rows = conn.execute(
        "SELECT a.actor, min(a.ts), max(a.ts), count(*), u.role, m.name, m.relation FROM audit_log a"
        " LEFT JOIN users u ON a.actor = 'user:' || u.name"
        " LEFT JOIN household_members m ON a.actor = 'household:' || m.id::text"
        " WHERE a.object_type = %s AND a.object_id = %s AND a.action = %s"
        " GROUP BY a.actor, u.role, m.name, m.relation ORDER BY max(a.ts) DESC",
        (VIEW_OBJECT, str(case_id), VIEWED),
    ).fetchall()
    out = []
    for actor, first, last, times, role, member, relation in rows:
        name = member or actor.partition(":")[2] or actor
        out.append(Viewer(name=name, role=role or relation or actor.partition(":")[0], first=first, last=last,
                          times=int(times)))
    return out
