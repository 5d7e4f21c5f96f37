"""The household's answer to a notice (申辩), and the hold it puts on filing for enforcement.

A household answers a case about its home within the answer period of its notice: a reason from the
list inspectors dismiss with, text, and photos of documents (JPEG, PNG or WebP, checked by their bytes,
size-limited), stored under the case in the database. Every answer is audited.

A confirmed case is not filed before its answer period ends (``answer_hold``, which the tenancy filing
seam owns: ``anju.hub.tenancy.hold``): an undelivered notice holds it, provisionally for a whole period
from now, and its delivery moves the filing to the period's real end (``push_filing``). This holds for
every unit with someone on its lease on record (``household_members``); a unit with nobody on record has
nobody to tell or to sign in, and its cases are filed as before. A supervisor may record why a case
must be filed earlier (``record_filing_override``), which releases it at once; audited.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from anju.hub.audit import record_audit
from anju.hub.auth.models import Principal, Role
from anju.hub.cases.states import DISMISS_REASONS
from anju.hub.household.policy import HouseholdPolicy
from anju.hub.household.signin import HouseholdPrincipal
from anju.hub.tenancy.hold import answer_deadline, answer_hold, on_record

# The household answers with the reasons inspectors dismiss with (hub/cases/states.py), one list.
ANSWER_REASONS: tuple[str, ...] = tuple(DISMISS_REASONS)
OVERRIDE_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})
# Photo types by their first bytes (what the file is, not what the browser says it is).
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"), (b"\x89PNG\r\n\x1a\n", 0, "image/png"), (b"WEBP", 8, "image/webp"),
)


class AnswerError(Exception):
    """Base of the answer errors."""


class NotYours(AnswerError):
    """No such case, or not one about this person's home (both answer 404)."""


class AnswerRefused(AnswerError):
    """The answer cannot be taken: the period is over, the case is closed, or its input is wrong (code)."""


def photo_type(data: bytes) -> str | None:
    """The photo's type from its bytes, or None for anything that is not a JPEG, PNG or WebP."""
    for magic, at, kind in _MAGIC:
        if data[at:at + len(magic)] == magic and (kind != "image/webp" or data[:4] == b"RIFF"):
            return kind
    return None


def _case_of(conn: psycopg.Connection[Any], case_id: int, unit_id: str) -> tuple[str, str]:
    row = conn.execute("SELECT unit_id, status FROM cases WHERE id = %s FOR SHARE", (case_id,)).fetchone()
    if row is None or row[0] != unit_id:
        raise NotYours(f"case {case_id} not found")
    return row[0], row[1]


def submit_answer(
    conn: psycopg.Connection[Any], *, principal: HouseholdPrincipal, case_id: int, reason: str, text: str,
    photos: list[bytes], now: datetime | None = None, policy: HouseholdPolicy | None = None,
) -> int:
    """Store an answer with its photos in the caller's transaction; audited; the answer's id."""
    now = now or datetime.now(UTC)
    policy = policy or HouseholdPolicy()
    _, status = _case_of(conn, case_id, principal.unit_id)
    if status in ("closed", "dismissed"):
        raise AnswerRefused("case_decided")
    deadline, waiting = answer_deadline(conn, case_id=case_id)
    if deadline is not None and now > deadline and not waiting:
        raise AnswerRefused("period_over")
    if reason not in ANSWER_REASONS:
        raise AnswerRefused("reason")
    body = text.strip()
    if len(body) > policy.max_answer_chars or (reason == "other" and not body):
        raise AnswerRefused("text")
    photos = [p for p in photos if p]
    if len(photos) > policy.max_photos:
        raise AnswerRefused("too_many_photos")
    kinds = [photo_type(p) for p in photos]
    if any(len(p) > policy.max_photo_bytes for p in photos):
        raise AnswerRefused("photo_too_large")
    if any(k is None for k in kinds):
        raise AnswerRefused("photo_type")
    row = conn.execute(
        "INSERT INTO household_answers (case_id, member_id, reason, body, created_at)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id", (case_id, principal.member_id, reason, body, now),
    ).fetchone()
    assert row is not None
    answer_id = int(row[0])
    for data, kind in zip(photos, kinds, strict=True):
        conn.execute(
            "INSERT INTO household_answer_photos (answer_id, case_id, content_type, size_bytes, sha256, data)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (answer_id, case_id, kind, len(data), hashlib.sha256(data).hexdigest(), data),
        )
    record_audit(conn, actor=principal.actor, action="household.answered", object_type="case",
                 object_id=case_id, detail={"answer_id": answer_id, "reason": reason, "photos": len(photos),
                         "text_sha256": hashlib.sha256(body.encode()).hexdigest()})
    return answer_id


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer as the pages show it (to the household and to the inspector)."""

    id: int
    case_id: int
    by: str
    relation: str
    reason: str
    body: str
    at: datetime
    photo_ids: tuple[int, ...]


def case_answers(conn: psycopg.Connection[Any], *, case_id: int) -> list[Answer]:
    """The case's answers, oldest first, with their photos' ids."""
    rows = conn.execute(
        "SELECT a.id, a.case_id, m.name, m.relation, a.reason, a.body, a.created_at,"
        " coalesce(array_agg(p.id ORDER BY p.id) FILTER (WHERE p.id IS NOT NULL), '{}')"
        " FROM household_answers a JOIN household_members m ON m.id = a.member_id"
        " LEFT JOIN household_answer_photos p ON p.answer_id = a.id"
        " WHERE a.case_id = %s GROUP BY a.id, m.name, m.relation ORDER BY a.id", (case_id,),
    ).fetchall()
    return [Answer(id=r[0], case_id=r[1], by=r[2], relation=r[3], reason=r[4], body=r[5], at=r[6],
                   photo_ids=tuple(r[7])) for r in rows]


def answered_cases(conn: psycopg.Connection[Any], case_ids: list[int]) -> set[int]:
    """Which of these cases have an answer from their household (the inspector's queue marks them)."""
    if not case_ids:
        return set()
    rows = conn.execute("SELECT DISTINCT case_id FROM household_answers WHERE case_id = ANY(%s)",
                        (case_ids,)).fetchall()
    return {int(r[0]) for r in rows}


def answer_photo(conn: psycopg.Connection[Any], *, case_id: int, photo_id: int) -> tuple[str, bytes] | None:
    """A photo of an answer to this case: (content type, bytes), or None."""
    row = conn.execute("SELECT content_type, data FROM household_answer_photos WHERE id = %s"
                       " AND case_id = %s", (photo_id, case_id)).fetchone()
    return (row[0], bytes(row[1])) if row else None


# The outbox row that files a case for enforcement: its filing, or (a lead filed when it opened) the
# update that carries its confirmation.
_ENFORCEMENT_ROW = "(kind = 'filing' OR (kind = 'update' AND payload->>'status' = 'confirmed'))"


def push_filing(conn: psycopg.Connection[Any], *, case_id: int, until: datetime) -> None:
    """Move a held filing not yet tried to ``until`` at the earliest (a notice was just delivered): only
    for a confirmed case, with someone on record, that no supervisor released."""
    row = conn.execute("SELECT c.status = 'confirmed' AND NOT EXISTS (SELECT 1 FROM filing_overrides o"
                       " WHERE o.case_id = c.id) FROM cases c WHERE c.id = %s", (case_id,)).fetchone()
    if row is None or not row[0] or not on_record(conn, case_id):
        return
    conn.execute(
        "UPDATE tenancy_outbox SET next_attempt_at = greatest(next_attempt_at, %s) WHERE case_id = %s"
        f" AND {_ENFORCEMENT_ROW} AND state = 'pending' AND attempts = 0", (until, case_id),
    )


def record_filing_override(
    conn: psycopg.Connection[Any], *, case_id: int, principal: Principal, why: str,
    now: datetime | None = None,
) -> None:
    """A supervisor records why a confirmed case is filed before its answer period ends; the held filing
    is due at once. Raise ``NotYours`` (not in their estates), ``AnswerRefused`` (role, reason, state)."""
    now = now or datetime.now(UTC)
    row = conn.execute("SELECT estate_id, status FROM cases WHERE id = %s FOR UPDATE", (case_id,)).fetchone()
    if row is None or not principal.sees(row[0]):
        raise NotYours(f"case {case_id} not found")
    if principal.role not in OVERRIDE_ROLES:
        raise AnswerRefused("role")
    why = why.strip()[:2000]
    if len(why) < 10:
        raise AnswerRefused("why")
    if row[1] != "confirmed":
        raise AnswerRefused("not_confirmed")
    inserted = conn.execute(
        "INSERT INTO filing_overrides (case_id, decided_by, why, decided_at) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (case_id) DO NOTHING RETURNING case_id", (case_id, principal.name, why, now),
    ).fetchone()
    if inserted is None:
        return
    conn.execute(f"UPDATE tenancy_outbox SET next_attempt_at = %s WHERE case_id = %s AND {_ENFORCEMENT_ROW}"
                 " AND state = 'pending' AND next_attempt_at > %s", (now, case_id, now))
    record_audit(conn, actor=principal.actor, action="case.filing_override", object_type="case",
                 object_id=case_id, detail={"why": why})


@dataclass(frozen=True, slots=True)
class StaffHold:
    """What the inspector's case page says of the household's answer period: the filing held until when,
    and the supervisor's recorded reason to file early (with who recorded it), if any."""

    until: datetime | None
    why: str | None
    by: str | None


def staff_hold(conn: psycopg.Connection[Any], *, case_id: int, now: datetime | None = None) -> StaffHold:
    """The case's hold on filing for the staff pages."""
    row = conn.execute("SELECT why, decided_by FROM filing_overrides WHERE case_id = %s",
                       (case_id,)).fetchone()
    until = answer_hold(conn, case_id=case_id, now=now or datetime.now(UTC))
    return StaffHold(until=until, why=row[0] if row else None, by=row[1] if row else None)
