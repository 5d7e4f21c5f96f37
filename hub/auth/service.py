"""Users (argon2 password hashes), their estates, and opaque session tokens stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hub.auth.errors import InvalidUser, UnknownUser, UserExists
from hub.auth.models import SCOPED_ROLES, Principal, Role
from hub.cases.audit import record_audit

SESSION_TTL = timedelta(hours=12)
_hasher = PasswordHasher()
# Verified against when the name is unknown, so that a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def add_user(
    conn: psycopg.Connection[Any], *, name: str, role: str, password: str, estates: Iterable[str] = (),
    actor: str = "system:cli", password_hash: str | None = None,
) -> int:
    """Create a user with a role and estates; audited. Raise ``UserExists`` or ``InvalidUser``.

    ``password_hash``: an argon2 hash made earlier (bulk imports, tests), used instead of hashing again.
    """
    try:
        r = Role(role)
    except ValueError as err:
        raise InvalidUser(f"unknown role {role!r}; one of {', '.join(x.value for x in Role)}") from err
    estate_list = sorted({e.strip() for e in estates if e.strip()})
    if r in SCOPED_ROLES and not estate_list:
        raise InvalidUser(f"a {r.value} needs at least one --estate")
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InvalidUser("a user name is 1..64 letters, digits, '-', '_' or '.'")
    if len(password) < 8:
        raise InvalidUser("a password has at least 8 characters")
    row = conn.execute(
        "INSERT INTO users (name, role, password_hash) VALUES (%s, %s, %s)"
        " ON CONFLICT (name) DO NOTHING RETURNING id",
        (name, r.value, password_hash or hash_password(password)),
    ).fetchone()
    if row is None:
        raise UserExists(f"user {name!r} exists already")
    user_id = int(row[0])
    for estate in estate_list:
        conn.execute("INSERT INTO user_estates (user_id, estate_id) VALUES (%s, %s)", (user_id, estate))
    record_audit(conn, actor=actor, action="user.added", object_type="user", object_id=name,
                 detail={"role": r.value, "estates": estate_list})
    return user_id


def _principal(conn: psycopg.Connection[Any], user_id: int, name: str, role: str) -> Principal:
    estates = conn.execute("SELECT estate_id FROM user_estates WHERE user_id = %s", (user_id,)).fetchall()
    return Principal(user_id=user_id, name=name, role=Role(role), estates=frozenset(e[0] for e in estates))


def authenticate(conn: psycopg.Connection[Any], *, name: str, password: str) -> Principal | None:
    """The user if the password is right and the account active; None otherwise (same cost either way)."""
    row = conn.execute(
        "SELECT id, name, role, password_hash FROM users WHERE name = %s AND active", (name,)
    ).fetchone()
    try:
        _hasher.verify(row[3] if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    return _principal(conn, int(row[0]), row[1], row[2])


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(conn: psycopg.Connection[Any], *, principal: Principal, now: datetime | None = None) -> str:
    """A new random session token for the user (only its hash is stored); the login is audited."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO user_sessions (token_sha256, user_id, created_at, expires_at) VALUES (%s, %s, %s, %s)",
        (_token_hash(token), principal.user_id, now, now + SESSION_TTL),
    )
    record_audit(conn, actor=principal.actor, action="user.login", object_type="user",
                 object_id=principal.name)
    return token


def session_principal(conn: psycopg.Connection[Any], token: str) -> Principal | None:
    """The user of a live session token, or None."""
    row = conn.execute(
        "SELECT u.id, u.name, u.role FROM user_sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_sha256 = %s AND s.expires_at > now() AND u.active",
        (_token_hash(token),),
    ).fetchone()
    return _principal(conn, int(row[0]), row[1], row[2]) if row else None


def close_session(conn: psycopg.Connection[Any], *, token: str, principal: Principal) -> None:
    """End a session (expire it now); audited."""
    conn.execute("UPDATE user_sessions SET expires_at = now() WHERE token_sha256 = %s", (_token_hash(token),))
    record_audit(conn, actor=principal.actor, action="user.logout", object_type="user",
                 object_id=principal.name)


def inspectors_for(conn: psycopg.Connection[Any], *, estate_id: str) -> list[str]:
    """Active inspectors who may work in an estate (the people a case there may be assigned to)."""
    rows = conn.execute(
        "SELECT u.name FROM users u JOIN user_estates e ON e.user_id = u.id"
        " WHERE u.role = 'inspector' AND u.active AND e.estate_id = %s ORDER BY u.name",
        (estate_id,),
    ).fetchall()
    return [r[0] for r in rows]


def list_users(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every user with role, estates, active flag and creation time, by name (never the hash)."""
    rows = conn.execute(
        "SELECT u.name, u.role, u.active, u.created_at,"
        " coalesce(array_agg(e.estate_id ORDER BY e.estate_id) FILTER (WHERE e.estate_id IS NOT NULL), '{}')"
        " FROM users u LEFT JOIN user_estates e ON e.user_id = u.id"
        " GROUP BY u.id ORDER BY u.name"
    ).fetchall()
    return [{"name": r[0], "role": r[1], "active": r[2], "created_at": r[3], "estates": list(r[4])}
            for r in rows]


def set_estates(conn: psycopg.Connection[Any], *, name: str, estates: Iterable[str], actor: str) -> None:
    """Replace a user's estates; audited with the lists before and after. Raise ``UnknownUser`` or
    ``InvalidUser`` (an inspector or supervisor left with no estate)."""
    row = conn.execute("SELECT id, role FROM users WHERE name = %s FOR UPDATE", (name,)).fetchone()
    if row is None:
        raise UnknownUser(f"no user {name!r}")
    user_id, role = int(row[0]), Role(row[1])
    wanted = sorted({e.strip() for e in estates if e.strip()})
    if role in SCOPED_ROLES and not wanted:
        raise InvalidUser(f"a {role.value} needs at least one estate")
    before = [r[0] for r in conn.execute(
        "SELECT estate_id FROM user_estates WHERE user_id = %s ORDER BY estate_id", (user_id,)).fetchall()]
    conn.execute("DELETE FROM user_estates WHERE user_id = %s", (user_id,))
    for estate in wanted:
        conn.execute("INSERT INTO user_estates (user_id, estate_id) VALUES (%s, %s)", (user_id, estate))
    record_audit(conn, actor=actor, action="user.estates", object_type="user", object_id=name,
                 detail={"from": before, "to": wanted})
