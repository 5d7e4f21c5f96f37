"""Household sign-in: the people on a unit's lease, one-time codes by text message, sessions.

Only the tenant of record and adult members listed on the lease sign in, with a code sent to their phone.
Codes expire, are void after a few wrong entries, are limited per number and per client address, and are
stored only as a keyed MAC (the key is derived from the audit key, which never enters the database). A
number on no lease is treated like one that is (a row, the same answer, the same limits), so the form
does not tell which numbers are on a lease. Every step is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from anju.hub.audit import record_audit
from anju.hub.audit.keys import resolve_audit_key
from anju.hub.household.gateway import GatewayUnavailable, SmsGateway
from anju.hub.household.policy import HouseholdPolicy

RELATIONS = ("tenant", "member")


class HouseholdError(Exception):
    """A household record that cannot be stored (unknown unit, bad phone number, bad relation)."""


@dataclass(frozen=True, slots=True)
class HouseholdPrincipal:
    """A signed-in household member: who, and the one unit they may see."""

    member_id: int
    name: str
    relation: str
    unit_id: str
    estate_id: str

    @property
    def actor(self) -> str:
        """The name the audit log records this person under."""
        return f"household:{self.member_id}"

    def owns(self, unit_id: str) -> bool:
        """Whether an object of this unit exists for this person (every other answers 404)."""
        return unit_id == self.unit_id


def normalise_phone(text: str) -> str:
    """A phone number as stored: digits with an optional leading +, spaces and dashes dropped."""
    raw = text.strip().replace(" ", "").replace("-", "")
    return raw[:21]


def add_member(
    conn: psycopg.Connection[Any], *, unit_id: str, name: str, phone: str, relation: str, adult: bool,
    actor: str = "system:cli",
) -> int:
    """Put a person of a unit's lease on record (the tenancy system's lease list); audited."""
    if relation not in RELATIONS:
        raise HouseholdError(f"relation must be one of {', '.join(RELATIONS)}")
    number = normalise_phone(phone)
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO household_members (unit_id, name, phone, relation, adult)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (unit_id, name.strip()[:64], number, relation, adult or relation == "tenant"),
            ).fetchone()
    except (psycopg.errors.ForeignKeyViolation, psycopg.errors.CheckViolation,
            psycopg.errors.UniqueViolation) as err:
        raise HouseholdError(f"cannot add {name!r} to {unit_id}: {err.diag.message_primary}") from err
    assert row is not None
    record_audit(conn, actor=actor, action="household.member_added", object_type="unit", object_id=unit_id,
                 detail={"member_id": int(row[0]), "relation": relation, "adult": adult})
    return int(row[0])


def _code_key() -> bytes:
    return hmac.new(resolve_audit_key(), b"anju household sign-in codes", hashlib.sha256).digest()


def code_mac(code_id: int, code: str) -> str:
    """The keyed MAC a code is stored as (bound to its row, so a MAC cannot be moved to another)."""
    return hmac.new(_code_key(), f"{code_id}:{code}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class CodeRequest:
    """A code asked for: the code and its row when it is to be sent, else why not (``limited``)."""

    refused: str | None
    code_id: int | None = None
    code: str | None = None
    phone: str = ""
    member_id: int | None = None


def _eligible(conn: psycopg.Connection[Any], phone: str) -> int | None:
    row = conn.execute(
        "SELECT m.id FROM household_members m WHERE m.phone = %s AND m.active"
        " AND (m.relation = 'tenant' OR m.adult)", (phone,),
    ).fetchone()
    return int(row[0]) if row else None


def request_code(
    conn: psycopg.Connection[Any], *, phone: str, address: str, now: datetime | None = None,
    policy: HouseholdPolicy | None = None,
) -> CodeRequest:
    """Make a code for a number, in the caller's transaction (which commits either way); the caller sends
    it (only when ``member_id`` is set: a number on no lease gets nothing) after the commit."""
    now = now or datetime.now(UTC)
    policy = policy or HouseholdPolicy()
    number, address = normalise_phone(phone), address[:64]
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('household-code:' || %s))", (number,))
    hour = now - timedelta(hours=1)
    by_phone = conn.execute(
        "SELECT count(*), max(created_at) FROM household_codes WHERE phone = %s AND created_at > %s",
        (number, hour),
    ).fetchone()
    by_address = conn.execute(
        "SELECT count(*) FROM household_codes WHERE address = %s AND created_at > %s", (address, hour),
    ).fetchone()
    assert by_phone is not None and by_address is not None
    last = by_phone[1]
    if (int(by_phone[0]) >= policy.codes_per_phone_hour or int(by_address[0]) >= policy.codes_per_address_hour
            or (last is not None and now - last < timedelta(seconds=policy.code_gap_s))):
        record_audit(conn, actor=f"anonymous:{address}", action="household.code_limited",
                     object_type="phone", object_id=_masked(number), detail={"address": address})
        return CodeRequest(refused="limited", phone=number)
    member_id = _eligible(conn, number)
    code = "".join(secrets.choice("0123456789") for _ in range(policy.code_digits))
    row = conn.execute(
        "INSERT INTO household_codes (phone, member_id, code_mac, address, created_at, expires_at)"
        " VALUES (%s, %s, '', %s, %s, %s) RETURNING id",
        (number, member_id, address, now, now + policy.code_ttl),
    ).fetchone()
    assert row is not None
    code_id = int(row[0])
    conn.execute("UPDATE household_codes SET code_mac = %s WHERE id = %s", (code_mac(code_id, code), code_id))
    record_audit(conn, actor=f"anonymous:{address}", action="household.code_issued", object_type="phone",
                 object_id=_masked(number), detail={"address": address, "code_id": code_id,
                                                    "on_lease": member_id is not None})
    return CodeRequest(refused=None, code_id=code_id, code=code if member_id else None, phone=number,
                       member_id=member_id)


def _masked(phone: str) -> str:
    """A phone number as the audit log names it: the last four digits only."""
    return "*" * max(0, len(phone) - 4) + phone[-4:]


def code_message(code: str, *, policy: HouseholdPolicy | None = None) -> str:
    """The text message carrying a code (Chinese first, then English)."""
    minutes = (policy or HouseholdPolicy()).code_ttl_s // 60
    return (f"【安居】您的登录验证码是 {code}，{minutes} 分钟内有效，请勿告诉他人。"
            f" anju sign-in code {code}, valid {minutes} min.")


def verify_code(
    conn: psycopg.Connection[Any], *, phone: str, code: str, address: str, now: datetime | None = None,
    policy: HouseholdPolicy | None = None,
) -> tuple[HouseholdPrincipal | None, str | None]:
    """Check a code for a number in the caller's transaction (commit either way): the person, or why
    not (``wrong`` for a wrong, expired, used-up or unknown code: one answer for all)."""
    now = now or datetime.now(UTC)
    policy = policy or HouseholdPolicy()
    number, address = normalise_phone(phone), address[:64]
    row = conn.execute(
        "SELECT id, member_id, code_mac, tries FROM household_codes WHERE phone = %s AND used_at IS NULL"
        " AND expires_at > %s ORDER BY id DESC LIMIT 1 FOR UPDATE", (number, now),
    ).fetchone()
    entered = code.strip()[:16]
    good = (row is not None and row[3] < policy.code_max_tries
            and hmac.compare_digest(row[2], code_mac(int(row[0]), entered)))
    if row is None or not good or row[1] is None:
        if row is not None:
            conn.execute("UPDATE household_codes SET tries = tries + 1 WHERE id = %s", (row[0],))
        record_audit(conn, actor=f"anonymous:{address}", action="household.login_failed", object_type="phone",
                     object_id=_masked(number), detail={"address": address,
                                                        "tries": (int(row[3]) + 1) if row else None})
        return None, "wrong"
    conn.execute("UPDATE household_codes SET used_at = %s WHERE id = %s", (now, row[0]))
    principal = member_principal(conn, int(row[1]))
    if principal is None:  # taken off the lease since the code was sent
        return None, "wrong"
    return principal, None


def member_principal(conn: psycopg.Connection[Any], member_id: int) -> HouseholdPrincipal | None:
    """The household principal of an active, eligible member, or None."""
    row = conn.execute(
        "SELECT m.id, m.name, m.relation, u.unit_id, u.estate_id FROM household_members m"
        " JOIN units u ON u.unit_id = m.unit_id WHERE m.id = %s AND m.active"
        " AND (m.relation = 'tenant' OR m.adult)", (member_id,),
    ).fetchone()
    if row is None:
        return None
    return HouseholdPrincipal(member_id=int(row[0]), name=row[1], relation=row[2], unit_id=row[3],
                              estate_id=row[4])


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_household_session(
    conn: psycopg.Connection[Any], *, principal: HouseholdPrincipal, now: datetime | None = None,
    policy: HouseholdPolicy | None = None,
) -> str:
    """A new session token for a household member (only its hash is stored); audited."""
    now = now or datetime.now(UTC)
    policy = policy or HouseholdPolicy()
    token = "hh_" + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO household_sessions (token_sha256, member_id, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s)",
        (_token_hash(token), principal.member_id, now, now + timedelta(hours=policy.session_hours)),
    )
    record_audit(conn, actor=principal.actor, action="household.login", object_type="unit",
                 object_id=principal.unit_id, detail={"member_id": principal.member_id})
    return token


def household_session(conn: psycopg.Connection[Any], token: str) -> HouseholdPrincipal | None:
    """The member of a live household session token, or None."""
    row = conn.execute(
        "SELECT member_id FROM household_sessions WHERE token_sha256 = %s AND expires_at > now()",
        (_token_hash(token),),
    ).fetchone()
    return member_principal(conn, int(row[0])) if row else None


def close_household_session(
    conn: psycopg.Connection[Any], *, token: str, principal: HouseholdPrincipal,
) -> None:
    """End a household session now; audited."""
    conn.execute("UPDATE household_sessions SET expires_at = now() WHERE token_sha256 = %s",
                 (_token_hash(token),))
    record_audit(conn, actor=principal.actor, action="household.logout", object_type="unit",
                 object_id=principal.unit_id)


def deliver_code(gateway: SmsGateway, request: CodeRequest, *, tries: int = 3,
                 policy: HouseholdPolicy | None = None) -> bool:
    """Text a code at once (after its row is committed), a few tries under one idempotency key, so it
    arrives once; False when the gateway would not take it. Never queued: the code itself is not kept."""
    if request.code is None or request.code_id is None:
        return True  # a number on no lease: nothing to send, the same answer
    for _ in range(tries):
        try:
            answer = gateway.send(idempotency_key=f"code-{request.code_id}", to=request.phone,
                                  text=code_message(request.code, policy=policy))
        except GatewayUnavailable:
            continue
        if answer.accepted:
            return True
        if not answer.retryable:
            return False
    return False


def remove_member(conn: psycopg.Connection[Any], *, phone: str, actor: str = "system:cli") -> bool:
    """Take a person off a lease (they can no longer sign in; their sessions end); audited. False when no
    one active has that number."""
    row = conn.execute("UPDATE household_members SET active = false WHERE phone = %s AND active"
                       " RETURNING id, unit_id", (normalise_phone(phone),)).fetchone()
    if row is None:
        return False
    conn.execute("UPDATE household_sessions SET expires_at = now() WHERE member_id = %s"
                 " AND expires_at > now()", (row[0],))
    record_audit(conn, actor=actor, action="household.member_removed", object_type="unit", object_id=row[1],
                 detail={"member_id": int(row[0])})
    return True


def lease_members(conn: psycopg.Connection[Any], *, unit_id: str) -> list[dict[str, Any]]:
    """The people on a unit's lease on record (the phone shown by its last four digits only)."""
    rows = conn.execute("SELECT id, name, phone, relation, adult, active FROM household_members"
                        " WHERE unit_id = %s ORDER BY id", (unit_id,)).fetchall()
    return [{"id": r[0], "name": r[1], "phone": _masked(r[2]), "relation": r[3], "adult": r[4],
             "active": r[5]} for r in rows]
