"""Filing cases through the outbox to the real tenancy stand-in, and to a port where nothing listens."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from psycopg.types.json import Jsonb

from anju.device_sims import tenancy
from anju.hub.audit.store import verify
from anju.hub.detection.service import run_detection
from anju.hub.tenancy.client import TenancyClient
from anju.hub.tenancy.outbox import BACKOFF_CAP, backoff, deliver_pending
from anju_mqtt.backoff import backoff_delay
from tests.hub.test_detection import AS_OF, add_days
from tests.hub.test_features import add_unit, prepare_schema
from tests.services import free_port

pytestmark = pytest.mark.integration


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread on a free port; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="tenancy-stand-in", daemon=True)
    thread.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while not server.started:
            assert thread.is_alive() and datetime.now(UTC) < deadline, "stand-in did not start"
            threading.Event().wait(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def stand_in() -> Iterator[str]:
    with serve(tenancy.create_app()) as url:
        yield url


@pytest.fixture
def conn(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection]:
    """A database with two vacant-looking units, each with an open case and a pending outbox row: the
    cases are filed as leads when they open (``ANJU_AUTO_FILE``; by default only a confirmation files)."""
    monkeypatch.setenv("ANJU_AUTO_FILE", "true")
    with psycopg.connect(database_url) as c:
        prepare_schema(c)
        for unit in ("E01-1-0101", "E01-1-0102"):
            add_unit(c, unit)
            add_days(c, unit, vacant_last=40)
        c.commit()
        assert run_detection(c, as_of=AS_OF).cases_opened == 2
        c.commit()
        yield c


def states(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT state, attempts, response_status, last_error IS NOT NULL FROM tenancy_outbox ORDER BY id"
    ).fetchall()


def remote_cases(url: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = httpx.get(f"{url}/api/v1/cases").json()["cases"]
    return cases


def test_cases_arrive_exactly_once_and_repeats_are_idempotent(
    conn: psycopg.Connection, stand_in: str
) -> None:
    with TenancyClient(stand_in, None, 5.0) as client:
        assert client.health()
        result = deliver_pending(conn, client=client)
        conn.commit()
        assert (result.sent, result.retried, result.dead) == (2, 0, 0)
        assert states(conn) == [("sent", 1, 201, False), ("sent", 1, 201, False)]
        # Filed as leads: the cases stay open for the inspectors' work (filing does not freeze them).
        assert conn.execute("SELECT status, filed_at IS NOT NULL FROM cases").fetchall() == [
            ("open", True), ("open", True)
        ]
        audit = conn.execute("SELECT actor FROM audit_log WHERE action = 'case.filed'").fetchall()
        assert audit == [("system:tenancy",), ("system:tenancy",)]
        assert deliver_pending(conn, client=client).sent == 0  # nothing left to send

        # A crash after the POST but before our commit: the rows are pending again. They were sent before,
        # so the hub looks each case up by its reference first: found there, it is not sent again.
        conn.execute("UPDATE tenancy_outbox SET state = 'pending', next_attempt_at = now()")  # lease over
        conn.commit()
        again = deliver_pending(conn, client=client)
        conn.commit()
        assert again.sent == 2 and [s[2] for s in states(conn)] == [200, 200]
        found = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'case.filed'"
                             " AND detail->>'found_by_lookup' = 'true'").fetchone()
        assert found == (2,)

    remote = remote_cases(stand_in)
    keys = sorted(c["idempotency_key"] for c in remote)
    ours = [r[0] for r in conn.execute("SELECT idempotency_key FROM tenancy_outbox ORDER BY id").fetchall()]
    assert keys == sorted(ours) and len(remote) == 2
    assert all(c["deliveries"] == 1 for c in remote)
    payloads = {r[0]: r[1] for r in conn.execute("SELECT idempotency_key, payload FROM tenancy_outbox")}
    for c in remote:
        assert c["evidence_sha256"] == payloads[c["idempotency_key"]]["evidence_sha256"]
        assert c["case_ref"] == payloads[c["idempotency_key"]]["case_ref"]


def test_conflicting_body_is_dead_lettered_not_retried(conn: psycopg.Connection, stand_in: str) -> None:
    with TenancyClient(stand_in, None, 5.0) as client:
        deliver_pending(conn, client=client)
        conn.commit()
        row = conn.execute("SELECT id, payload FROM tenancy_outbox ORDER BY id LIMIT 1").fetchone()
        assert row is not None
        changed = {**row[1], "summary": "edited after filing"}
        conn.execute("UPDATE tenancy_outbox SET state = 'pending', payload = %s, next_attempt_at = now()"
                     " WHERE id = %s", (Jsonb(changed), row[0]))
        conn.commit()
        result = deliver_pending(conn, client=client)
        conn.commit()
    # Sent before, so looked up first: the tenancy system holds the case with another body. That is for a
    # person to look at, whether or not the tenancy system would have answered 409 on the key.
    assert result.dead == 1
    assert states(conn)[0] == ("dead", 2, None, True)
    error = conn.execute("SELECT last_error FROM tenancy_outbox WHERE id = %s", (row[0],)).fetchone()
    assert error is not None and "different" in error[0] and "summary" in error[0]


def test_unreachable_tenancy_system_is_retried_with_backoff_then_dead_never_lost(
    conn: psycopg.Connection,
) -> None:
    now = datetime.now(UTC)
    with TenancyClient(f"http://127.0.0.1:{free_port()}", None, 2.0) as client:
        first = deliver_pending(conn, client=client, now=now, max_attempts=3)
        conn.commit()
        assert (first.sent, first.retried, first.dead) == (0, 2, 0)
        assert states(conn) == [("pending", 1, None, True)] * 2
        due = conn.execute("SELECT next_attempt_at FROM tenancy_outbox").fetchall()
        assert all(now < d[0] <= now + timedelta(seconds=2) for d in due)
        assert deliver_pending(conn, client=client, now=now).retried == 0  # not due yet: no hammering

        later = now + timedelta(hours=2)
        assert deliver_pending(conn, client=client, now=later, max_attempts=3).retried == 2
        conn.commit()
        final = deliver_pending(conn, client=client, now=later + timedelta(hours=2), max_attempts=3)
        conn.commit()
    assert final.dead == 2
    assert states(conn) == [("dead", 3, None, True)] * 2
    assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'tenancy.dead'").fetchone() == (2,)
    assert conn.execute("SELECT count(*) FROM cases WHERE status = 'open'").fetchone() == (2,)


def test_pending_rows_go_out_once_the_tenancy_system_is_back(conn: psycopg.Connection, stand_in: str) -> None:
    now = datetime.now(UTC)
    with TenancyClient(f"http://127.0.0.1:{free_port()}", None, 2.0) as down:
        assert deliver_pending(conn, client=down, now=now).retried == 2
        conn.commit()
    with TenancyClient(stand_in, None, 5.0) as up:
        assert deliver_pending(conn, client=up, now=now).sent == 0  # backing off
        assert deliver_pending(conn, client=up, now=now + timedelta(minutes=5)).sent == 2
        conn.commit()
    assert len(remote_cases(stand_in)) == 2


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    delays = [backoff(n, rng=rng).total_seconds() for n in range(1, 15)]
    assert 1.0 <= delays[0] <= 2.0 and 8.0 <= delays[3] <= 16.0
    assert max(delays) <= BACKOFF_CAP.total_seconds()
    assert len({round(backoff(5, rng=rng).total_seconds(), 6) for _ in range(5)}) > 1


def test_outbox_backoff_is_the_shared_curve_with_the_outbox_base_and_cap() -> None:
    """One backoff helper: the outbox's delays are ``anju_mqtt``'s for the same draws (base 2 s, cap 1 h),
    and stay what the outbox always gave: ``min(cap, 2 s * 2**(attempts-1))`` times a draw in [½, 1]."""
    ours, shared, plain = random.Random(7), random.Random(7), random.Random(7)
    for attempts in (0, 1, 2, 5, 12, 40):
        ceiling = min(BACKOFF_CAP.total_seconds(), 2.0 * 2 ** max(attempts - 1, 0))
        delay = backoff(attempts, rng=ours).total_seconds()
        assert delay == pytest.approx(backoff_delay(max(attempts - 1, 0), base=2.0, cap=3600.0, rng=shared))
        assert delay == pytest.approx(ceiling * plain.uniform(0.5, 1.0))


def test_a_city_system_that_ignores_keys_gets_each_filing_and_update_once(conn: psycopg.Connection) -> None:
    """Exactly once without Idempotency-Key: a row sent before is looked up by anju's case reference and
    not sent again when it is there, for filings and updates alike."""
    from anju.hub.tenancy.filing import queue_update

    # The stand-in's mode bites: the same request twice is two cases there.
    first = conn.execute("SELECT idempotency_key, payload FROM tenancy_outbox ORDER BY id").fetchone()
    assert first is not None
    key, payload = first
    with serve(tenancy.create_app(honour_keys=False)) as url:
        for _ in range(2):
            assert httpx.post(f"{url}/api/v1/cases", json=payload, headers={"Idempotency-Key": key}
                              ).status_code == 201
        assert len(httpx.get(f"{url}/api/v1/cases", params={"case_ref": payload["case_ref"]}
                             ).json()["cases"]) == 2
    with serve(tenancy.create_app(honour_keys=False)) as url, TenancyClient(url, None, 5.0) as client:
        assert deliver_pending(conn, client=client).sent == 2
        conn.commit()
        case_id = conn.execute("SELECT min(case_id) FROM tenancy_outbox").fetchone()
        assert case_id is not None
        with conn.transaction():
            assert queue_update(conn, case_id=case_id[0], action="assign", status="assigned", actor="user:x")
        assert deliver_pending(conn, client=client).sent == 1
        conn.commit()
        # Every answer lost (a reset after the tenancy system stored them, or a crash before our commit).
        conn.execute("UPDATE tenancy_outbox SET state = 'pending', next_attempt_at = now()")
        conn.commit()
        assert deliver_pending(conn, client=client).sent == 3
        conn.commit()
        remote = remote_cases(url)
    assert len(remote) == 2 and sorted(len(c["updates"]) for c in remote) == [0, 1]
    found = conn.execute("SELECT action, count(*) FROM audit_log WHERE detail->>'found_by_lookup' = 'true'"
                         " GROUP BY action ORDER BY action").fetchall()
    assert found == [("case.filed", 2), ("tenancy.update_sent", 1)]


def test_dead_filings_are_requeued_by_the_operator_audited_then_sent(
    conn: psycopg.Connection, stand_in: str, database_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    """``anju filings requeue``: dead rows go back in the queue under the operator's name, once the cause
    is fixed, and the hub sends them (issue 17, item 6)."""
    from anju.cli import main

    now = datetime.now(UTC)
    with TenancyClient(f"http://127.0.0.1:{free_port()}", None, 2.0) as down:
        assert deliver_pending(conn, client=down, now=now, max_attempts=1).dead == 2
        conn.commit()
    first, second = [r[0] for r in conn.execute("SELECT case_id FROM tenancy_outbox ORDER BY id").fetchall()]
    assert main(["filings", "requeue", "--case", str(first), "--database-url", database_url]) == 0
    assert "1 row(s) requeued" in capsys.readouterr().out
    conn.rollback()
    assert conn.execute("SELECT case_id, state, attempts FROM tenancy_outbox ORDER BY id").fetchall() == [
        (first, "pending", 0), (second, "dead", 1)]
    audit = conn.execute("SELECT actor, object_id, detail->>'last_error' FROM audit_log"
                         " WHERE action = 'tenancy.requeued'").fetchall()
    assert len(audit) == 1 and audit[0][0].startswith("system:cli:") and audit[0][1] == str(first)
    assert audit[0][2]  # why it had died, kept in the trail
    with TenancyClient(stand_in, None, 5.0) as up:
        assert deliver_pending(conn, client=up).sent == 1
        conn.commit()
    assert main(["filings", "requeue", "--all", "--database-url", database_url]) == 0
    conn.rollback()
    queued = conn.execute("SELECT state FROM tenancy_outbox ORDER BY id").fetchall()
    assert queued == [("sent",), ("pending",)]
    assert main(["filings", "requeue", "--all", "--database-url", database_url]) == 0  # nothing dead: a no-op
    assert "0 row(s) requeued" in capsys.readouterr().out
    assert verify(conn).ok


def test_the_tenancy_domain_never_imports_the_case_workflow() -> None:
    """Tenancy filing owns its seam (issue 15, item 3): the workflow calls into hub/tenancy, never back."""
    import ast
    from pathlib import Path

    import anju.hub.tenancy

    found = []
    for path in Path(anju.hub.tenancy.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [(path.name, n) for n in names
                      if n == "anju.hub.cases" or n.startswith("anju.hub.cases.")]
    assert found == []
