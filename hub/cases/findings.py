"""What an inspector found at the door, kept beside the verdict: occupants seen and whether an ID was
checked. Written in the caller's transaction with the workflow action it belongs to, and audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from anju.hub.audit import record_audit

MAX_OCCUPANTS = 99


class InvalidFindings(ValueError):
    """The findings cannot be kept as given (an occupant count that is not 0 to 99)."""


@dataclass(frozen=True, slots=True)
class Findings:
    """One visit's findings as recorded."""

    action: str
    occupants_seen: int | None
    id_checked: bool | None
    note: str
    recorded_by: str
    recorded_at: datetime


def parse_occupants(text: str) -> int | None:
    """The occupant count from a form field: None when blank; ``InvalidFindings`` when not 0 to 99."""
    text = text.strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or int(text) > MAX_OCCUPANTS:
        raise InvalidFindings(f"occupants seen must be a whole number from 0 to {MAX_OCCUPANTS}")
    return int(text)


def record_findings(
    conn: psycopg.Connection[Any], *, case_id: int, action: str, occupants_seen: int | None,
    id_checked: bool | None, note: str, actor: str,
) -> None:
    """Keep the findings of a verdict or visit on ``case_id``, audited as ``case.findings``."""
    if occupants_seen is not None and not 0 <= occupants_seen <= MAX_OCCUPANTS:
        raise InvalidFindings(f"occupants seen must be a whole number from 0 to {MAX_OCCUPANTS}")
    conn.execute(
        "INSERT INTO case_findings (case_id, action, occupants_seen, id_checked, note, recorded_by)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (case_id, action, occupants_seen, id_checked, note.strip()[:2000], actor),
    )
    detail: dict[str, Any] = {"action": action, "occupants_seen": occupants_seen, "id_checked": id_checked}
    record_audit(conn, actor=actor, action="case.findings", object_type="case", object_id=case_id,
                 detail=detail)


def latest_findings(conn: psycopg.Connection[Any], *, case_id: int) -> Findings | None:
    """The case's most recent findings, or None."""
    row = conn.execute(
        "SELECT action, occupants_seen, id_checked, note, recorded_by, recorded_at FROM case_findings"
        " WHERE case_id = %s ORDER BY id DESC LIMIT 1", (case_id,),
    ).fetchone()
    return Findings(*row) if row else None
