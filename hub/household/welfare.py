"""Welfare visits (关怀探访), kept apart from enforcement.

A household asks for a visit from its page; an inspector's finding that an elderly person simply uses very
little (a case dismissed as ``elderly_low_use``) becomes a welfare visit too. Both land in
``welfare_queue``, which names a unit and never a case, an alert or a filing: nothing of enforcement
(the inspector's queue, the case pages, the tenancy filing) reads it, and it reads nothing of theirs
beyond the verdict's unit when it is swept in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from anju.hub.audit import record_audit
from anju.hub.household.signin import HouseholdPrincipal

ACTOR = "system:welfare"


def request_visit(
    conn: psycopg.Connection[Any], *, principal: HouseholdPrincipal, note: str, now: datetime | None = None,
) -> bool:
    """A household asks for a welfare visit (at most one open request per unit); audited under the
    unit, not any case. False when one is open already."""
    now = now or datetime.now(UTC)
    key = f"household-{principal.unit_id}-{now.date().isoformat()}"
    if conn.execute("SELECT 1 FROM welfare_queue WHERE unit_id = %s AND source = 'household'"
                    " AND state = 'open'", (principal.unit_id,)).fetchone():
        return False
    row = conn.execute(
        "INSERT INTO welfare_queue (unit_id, estate_id, source, source_key, note, created_at)"
        " VALUES (%s, %s, 'household', %s, %s, %s) ON CONFLICT (source_key) DO NOTHING RETURNING id",
        (principal.unit_id, principal.estate_id, key, note.strip()[:500], now),
    ).fetchone()
    if row is None:
        return False
    record_audit(conn, actor=principal.actor, action="welfare.requested", object_type="unit",
                 object_id=principal.unit_id, detail={"welfare_id": int(row[0])})
    return True


def sweep_elderly_signals(conn: psycopg.Connection[Any], *, limit: int = 500) -> int:
    """Put each ``elderly_low_use`` dismissal's unit on the welfare queue once (by the verdict's id);
    how many were added. Runs in the caller's transaction."""
    rows = conn.execute(
        "SELECT v.id, v.unit_id, v.estate_id FROM case_verdicts v WHERE v.reason_code = 'elderly_low_use'"
        " AND NOT EXISTS (SELECT 1 FROM welfare_queue w WHERE w.source_key = 'verdict-' || v.id)"
        " ORDER BY v.id LIMIT %s", (limit,),
    ).fetchall()
    for verdict_id, unit_id, estate_id in rows:
        conn.execute(
            "INSERT INTO welfare_queue (unit_id, estate_id, source, source_key) VALUES (%s, %s,"
            " 'elderly_low_use', %s) ON CONFLICT (source_key) DO NOTHING",
            (unit_id, estate_id, f"verdict-{verdict_id}"),
        )
        record_audit(conn, actor=ACTOR, action="welfare.signal", object_type="unit", object_id=unit_id,
                     detail={"source": "elderly_low_use"})
    return len(rows)


@dataclass(frozen=True, slots=True)
class WelfareItem:
    """One welfare visit to make."""

    id: int
    unit_id: str
    estate_id: str
    source: str
    note: str
    state: str
    created_at: datetime


def welfare_queue(conn: psycopg.Connection[Any], *, estates: list[str] | None = None,
                  state: str = "open") -> list[WelfareItem]:
    """The welfare queue (of ``estates`` when given), oldest first."""
    rows = conn.execute(
        "SELECT id, unit_id, estate_id, source, note, state, created_at FROM welfare_queue"
        " WHERE state = %s AND (%s::text[] IS NULL OR estate_id = ANY(%s)) ORDER BY id",
        (state, estates, estates),
    ).fetchall()
    return [WelfareItem(*r) for r in rows]


def open_request(conn: psycopg.Connection[Any], *, unit_id: str) -> date | None:
    """The day the unit's open welfare request was made, if there is one (the household's page says so)."""
    row = conn.execute("SELECT created_at FROM welfare_queue WHERE unit_id = %s AND source = 'household'"
                       " AND state = 'open' ORDER BY id DESC LIMIT 1", (unit_id,)).fetchone()
    return row[0].date() if row else None


def mark_visited(conn: psycopg.Connection[Any], *, welfare_id: int, actor: str) -> bool:
    """The welfare office records a visit as made (it leaves the open queue); audited under the unit.
    False when no open visit has that id."""
    row = conn.execute("UPDATE welfare_queue SET state = 'visited' WHERE id = %s AND state = 'open'"
                       " RETURNING unit_id", (welfare_id,)).fetchone()
    if row is None:
        return False
    record_audit(conn, actor=actor, action="welfare.visited", object_type="unit", object_id=row[0],
                 detail={"welfare_id": welfare_id})
    return True
