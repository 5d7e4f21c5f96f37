"""Read-only SQL of the field pages: an estate's units by building and floor with their state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class GridCell:
    """One unit in the building view: its open alert (the riskiest) and its latest case, if any."""

    unit_id: str
    floor: int | None
    address: str | None
    alert_id: int | None
    alert_kind: str | None
    case_id: int | None
    case_status: str | None
    case_alert_id: int | None = None

    @property
    def link_alert(self) -> int | None:
        """The alert page the cell links to: the open alert's, else the case's."""
        return self.alert_id if self.alert_id is not None else self.case_alert_id

    @property
    def state(self) -> str:
        """What the cell shows: the case's status while a case is active, else ``alert`` for an open
        alert without a case, else ``quiet`` (a closed case's outcome shows only as its own status)."""
        if self.case_status is not None and self.case_status != "closed":
            return self.case_status
        if self.alert_id is not None:
            return "alert"
        return "closed" if self.case_status == "closed" else "quiet"


@dataclass(slots=True)
class Building:
    """A building's floors, top first, each with its units in order."""

    name: str
    floors: list[tuple[int | None, list[GridCell]]] = field(default_factory=list)


def estate_grid(conn: Conn, *, estate_id: str) -> list[Building]:
    """Every unit of the estate by building and floor (top floor first), with its open alert and case."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT u.unit_id, u.building, u.floor, u.address, a.id AS alert_id, a.kind AS alert_kind,
                   c.id AS case_id, c.status AS case_status, c.alert_id AS case_alert_id
            FROM units u
            LEFT JOIN LATERAL (
                SELECT a.id, a.kind FROM alerts a WHERE a.unit_id = u.unit_id AND a.status = 'open'
                ORDER BY a.score DESC, a.id LIMIT 1
            ) a ON true
            LEFT JOIN LATERAL (
                SELECT c.id, c.status, c.alert_id FROM cases c WHERE c.unit_id = u.unit_id
                ORDER BY (c.status <> 'closed') DESC, c.id DESC LIMIT 1
            ) c ON true
            WHERE u.estate_id = %s
            ORDER BY u.building NULLS LAST, u.floor DESC NULLS LAST, u.unit_id
            """,
            (estate_id,),
        )
        rows = cur.fetchall()
    buildings: dict[str, Building] = {}
    for r in rows:
        b = buildings.setdefault(r["building"] or "—", Building(r["building"] or "—"))
        cell = GridCell(unit_id=r["unit_id"], floor=r["floor"], address=r["address"], alert_id=r["alert_id"],
                        alert_kind=r["alert_kind"], case_id=r["case_id"], case_status=r["case_status"],
                        case_alert_id=r["case_alert_id"])
        if not b.floors or b.floors[-1][0] != r["floor"]:
            b.floors.append((r["floor"], []))
        b.floors[-1][1].append(cell)
    return list(buildings.values())
