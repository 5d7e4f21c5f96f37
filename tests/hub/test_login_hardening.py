"""Sign-in hardening: failed sign-ins throttled per account and address, audited, locked until lifted;
accounts disabled and passwords reset from the command line, ending sessions at once."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from anju.cli import main as anju
from anju.hub.api.app import create_app
from anju.hub.auth.service import add_user
from anju.hub.auth.throttle import Scope, ThrottlePolicy, ThrottleState, current, judge
from tests.hub.test_api import create_schema, serve

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_policy_allows_at_most_ten_checked_tries_a_minute_and_then_locks() -> None:
    """An attacker trying once a second: how many of the tries get their password checked."""
    policy = ThrottlePolicy()
    account = address = ThrottleState()
    checked: list[float] = []
    for second in range(3600):
        now = T0 + timedelta(seconds=second)
        if not judge(account, current(address, scope=Scope.ADDRESS, now=now, policy=policy), now=now,
                     policy=policy).allowed:
            continue
        checked.append(second)
        failures = account.failures + 1
        account = ThrottleState(failures, now, now if failures >= policy.lock_after else None)
        address = ThrottleState(address.failures + 1, now)
    per_minute = max(sum(1 for s in checked if start <= s < start + 60) for start in range(0, 3600))
    assert per_minute <= 10
    assert len(checked) == policy.lock_after  # then locked for good: only an admin lifts it
    assert judge(account, ThrottleState(), now=T0 + timedelta(days=1), policy=policy).reason == "locked"


@pytest.fixture
def hub(database_url: str) -> tuple[str, str, str]:
    """A database with one inspector (password generated), and the API serving it."""
    password = secrets.token_urlsafe(12)
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        add_user(conn, name="insp1", role="inspector", password=password, estates=["E01"])
        conn.commit()
    return database_url, "insp1", password


def _audit_actions(url: str, name: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT action FROM audit_log WHERE object_id = %s ORDER BY seq",
                            (name,)).fetchall()
    return [r[0] for r in rows]


def test_thirty_wrong_passwords_then_the_right_one(hub: tuple[str, str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    url, name, password = hub
    with serve(create_app(database_url=url)) as base, httpx.Client(base_url=base, timeout=10) as http:
        answers = [http.post("/api/auth/login", json={"name": name, "password": f"wrong-{i}"}).status_code
                   for i in range(30)]
        right = http.post("/api/auth/login", json={"name": name, "password": password})
        page = http.post("/login", data={"name": name, "password": password})
        assert right.status_code == 429 and page.status_code == 429
        assert int(right.headers["retry-after"]) >= 1
        print(f"30 wrong passwords: {answers.count(401)} checked (401), {answers.count(429)} refused (429)")
        assert answers.count(401) <= 10 and answers.count(401) + answers.count(429) == 30
        actions = _audit_actions(url, name)
        assert actions.count("user.login_failed") + actions.count("user.login_refused") == 32
        # Wait out the delay in the database's clock, not the test's: the failures are a minute old.
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE login_throttle SET last_failure = last_failure - interval '1 hour'")
        for i in range(7):  # on to the lockout
            http.post("/api/auth/login", json={"name": name, "password": f"again-{i}"})
            with psycopg.connect(url) as conn:
                conn.execute("UPDATE login_throttle SET last_failure = last_failure - interval '1 hour'")
        locked = http.post("/api/auth/login", json={"name": name, "password": password})
        assert locked.status_code == 429 and "locked" in locked.json()["detail"]
        assert "user.locked" in _audit_actions(url, name)
        assert anju(["users", "unlock", name, "--database-url", url]) == 0
        assert "unlocked" in capsys.readouterr().out
        assert http.post("/api/auth/login", json={"name": name, "password": password}).status_code == 200


def test_disable_ends_sessions_and_reset_password(hub: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    url, name, password = hub
    with serve(create_app(database_url=url)) as base, httpx.Client(base_url=base, timeout=10) as http:
        token = http.post("/api/auth/login", json={"name": name, "password": password}).json()["token"]
        me = {"Authorization": f"Bearer {token}"}
        assert http.get("/api/auth/me", headers=me).status_code == 200
        assert anju(["users", "disable", name, "--database-url", url]) == 0
        assert "1 session(s) ended" in capsys.readouterr().out
        assert http.get("/api/auth/me", headers=me).status_code == 401
        assert http.post("/api/auth/login", json={"name": name, "password": password}).status_code == 401
        assert anju(["users", "enable", name, "--database-url", url]) == 0
        token = http.post("/api/auth/login", json={"name": name, "password": password}).json()["token"]
        new_password = secrets.token_urlsafe(12)
        monkeypatch.setenv("ANJU_NEW_USER_PASSWORD", new_password)
        assert anju(["users", "reset-password", name, "--database-url", url]) == 0
        assert http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert http.post("/api/auth/login", json={"name": name, "password": password}).status_code == 401
        assert http.post("/api/auth/login", json={"name": name, "password": new_password}).status_code == 200
    actions = _audit_actions(url, name)
    for wanted in ("user.disabled", "user.enabled", "user.password_reset", "user.login_failed"):
        assert wanted in actions
    assert anju(["users", "disable", "nobody", "--database-url", url]) == 2
