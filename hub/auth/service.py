"""Users (argon2 password hashes), their estates, and opaque session tokens stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from anju.hub.audit import record_audit
from anju.hub.auth.errors import InvalidUser, UnknownUser, UserExists
from anju.hub.auth.models import SCOPED_ROLES, Principal, Role
from anju.hub.auth.throttle import Scope, ThrottlePolicy, ThrottleState, current, judge

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


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of a sign-in: the person, or why not (``wrong``, ``throttled``, ``locked``) and, when
    throttled, the seconds before the next try is checked at all."""

    principal: Principal | None
    refused: str | None = None
    retry_after_s: int = 0


def _throttle_row(conn: psycopg.Connection[Any], scope: Scope, key: str) -> ThrottleState:
    conn.execute("INSERT INTO login_throttle (scope, key) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                 (scope.value, key))
    row = conn.execute(
        "SELECT failures, last_failure, locked_at FROM login_throttle WHERE scope = %s AND key = %s"
        " FOR UPDATE", (scope.value, key),
    ).fetchone()
    assert row is not None
    return ThrottleState(failures=int(row[0]), last_failure=row[1], locked_at=row[2])


def sign_in(
    conn: psycopg.Connection[Any], *, name: str, password: str, address: str, now: datetime | None = None,
    policy: ThrottlePolicy | None = None,
) -> SignIn:
    """Check a password under the throttle, in the caller's transaction (which must commit even when the
    answer is no: the failure's count and its audit row are the point).

    The account's and the address's throttle rows are locked (in that order, always) for the check, so
    parallel tries of one name are counted one after another. A try inside a wait is refused without
    looking at the password, and audited like a wrong one.
    """
    now = now or datetime.now(UTC)
    policy = policy or ThrottlePolicy()
    name, address = name[:64], address[:64]
    account = _throttle_row(conn, Scope.ACCOUNT, name)
    at_address = current(_throttle_row(conn, Scope.ADDRESS, address), scope=Scope.ADDRESS, now=now,
                         policy=policy)
    verdict = judge(account, at_address, now=now, policy=policy)
    if not verdict.allowed:
        record_audit(conn, actor=f"anonymous:{address}", action="user.login_refused", object_type="user",
                     object_id=name, detail={"address": address, "reason": verdict.reason,
                                             "retry_after_s": verdict.retry_after_s})
        return SignIn(None, verdict.reason, verdict.retry_after_s)
    principal = authenticate(conn, name=name, password=password)
    if principal is not None:
        conn.execute("DELETE FROM login_throttle WHERE scope = 'account' AND key = %s", (name,))
        return SignIn(principal)
    failures = account.failures + 1
    locked = failures >= policy.lock_after
    conn.execute(
        "UPDATE login_throttle SET failures = %s, last_failure = %s,"
        " locked_at = CASE WHEN %s THEN coalesce(locked_at, %s) ELSE locked_at END"
        " WHERE scope = 'account' AND key = %s", (failures, now, locked, now, name),
    )
    conn.execute(
        "UPDATE login_throttle SET failures = %s, last_failure = %s WHERE scope = 'address' AND key = %s",
        (at_address.failures + 1, now, address),
    )
    record_audit(conn, actor=f"anonymous:{address}", action="user.login_failed", object_type="user",
                 object_id=name, detail={"address": address, "failures": failures})
    if locked and account.locked_at is None:
        record_audit(conn, actor="system:auth", action="user.locked", object_type="user", object_id=name,
                     detail={"failures": failures, "address": address})
    return SignIn(None, "wrong")


def _user_id(conn: psycopg.Connection[Any], name: str) -> int:
    row = conn.execute("SELECT id FROM users WHERE name = %s FOR UPDATE", (name,)).fetchone()
    if row is None:
        raise UnknownUser(f"no user {name!r}")
    return int(row[0])


def _end_sessions(conn: psycopg.Connection[Any], user_id: int) -> int:
    return conn.execute(
        "UPDATE user_sessions SET expires_at = now() WHERE user_id = %s AND expires_at > now()", (user_id,)
    ).rowcount


def disable_user(conn: psycopg.Connection[Any], *, name: str, actor: str) -> int:
    """Disable an account and end its sessions at once; audited. Return the sessions ended."""
    user_id = _user_id(conn, name)
    conn.execute("UPDATE users SET active = false WHERE id = %s", (user_id,))
    ended = _end_sessions(conn, user_id)
    record_audit(conn, actor=actor, action="user.disabled", object_type="user", object_id=name,
                 detail={"sessions_ended": ended})
    return ended


def enable_user(conn: psycopg.Connection[Any], *, name: str, actor: str) -> None:
    """Enable a disabled account again; audited."""
    user_id = _user_id(conn, name)
    conn.execute("UPDATE users SET active = true WHERE id = %s", (user_id,))
    record_audit(conn, actor=actor, action="user.enabled", object_type="user", object_id=name)


def unlock_user(conn: psycopg.Connection[Any], *, name: str, actor: str) -> bool:
    """Lift an account's lockout and forget its failures; audited. False if it was not locked."""
    _user_id(conn, name)
    row = conn.execute(
        "DELETE FROM login_throttle WHERE scope = 'account' AND key = %s RETURNING locked_at", (name,)
    ).fetchone()
    was_locked = bool(row and row[0] is not None)
    record_audit(conn, actor=actor, action="user.unlocked", object_type="user", object_id=name,
                 detail={"was_locked": was_locked})
    return was_locked


def reset_password(conn: psycopg.Connection[Any], *, name: str, password: str, actor: str) -> int:
    """Set a new password, end every session of the account and lift its lockout; audited (never the
    password). Return the sessions ended. Raise ``UnknownUser`` or ``InvalidUser`` (too short)."""
    if len(password) < 8:
        raise InvalidUser("a password has at least 8 characters")
    user_id = _user_id(conn, name)
    conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (hash_password(password), user_id))
    ended = _end_sessions(conn, user_id)
    conn.execute("DELETE FROM login_throttle WHERE scope = 'account' AND key = %s", (name,))
    record_audit(conn, actor=actor, action="user.password_reset", object_type="user", object_id=name,
                 detail={"sessions_ended": ended})
    return ended


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
