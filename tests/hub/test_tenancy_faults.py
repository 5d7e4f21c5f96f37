"""1,000 cases filed, and an update of each sent, while the tenancy stand-in injects 503s, 500s, timeouts and
resets after commit, once with a stand-in that honours Idempotency-Key and once with one that ignores it:
exactly once either way."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from anju.hub.cases.queries import get_case
from anju.hub.cases.service import open_case
from anju.hub.storage import ensure_schema
from anju.hub.tenancy.client import TenancyClient
from anju.hub.tenancy.filing import queue_update
from anju.hub.tenancy.outbox import deliver_pending
from tests.hub.test_tenancy import serve

pytestmark = pytest.mark.integration
N = 1000


@pytest.fixture(autouse=True)
def audit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_AUDIT_KEY", "fault-test-key-" + "f" * 40)


def open_cases(conn: psycopg.Connection, n: int) -> None:
    """n units, each with an alert and an auto-filed case, and one decision on it to send as an update."""
    for i in range(n):
        unit = f"E01-{i // 100}-{i % 100:04d}"
        conn.execute("INSERT INTO units (unit_id, estate_id) VALUES (%s, 'E01')", (unit,))
        row = conn.execute(
            "INSERT INTO alerts (unit_id, estate_id, kind, score, first_flagged, last_flagged, rule_version,"
            " window_start, window_end) VALUES (%s, 'E01', 'vacancy', 0.9, '2026-03-01', '2026-03-01',"
            " 'rules-1', '2026-02-01', '2026-03-01') RETURNING id", (unit,),
        ).fetchone()
        assert row is not None
        open_case(conn, alert_id=row[0], unit_id=unit, estate_id="E01", kind="vacancy", summary=f"case {i}",
                  evidence={"reasons": [{"code": "x", "text": "y"}], "n": i}, auto_file=True)
    for (case_id,) in conn.execute("SELECT id FROM cases ORDER BY id").fetchall():
        assert queue_update(conn, case_id=case_id, action="assign", status="assigned", actor="user:sup1")
    conn.commit()


@pytest.mark.parametrize("honour_keys", [True, False], ids=["keys-honoured", "keys-ignored"])
def test_thousand_filings_under_faults_arrive_exactly_once(database_url: str, honour_keys: bool) -> None:
    from anju.device_sims.tenancy import create_app

    with psycopg.connect(database_url) as conn, serve(create_app(seed=5, honour_keys=honour_keys)) as url:
        ensure_schema(conn)
        open_cases(conn, N)
        faults = {"fail_rate": 0.05, "error_rate": 0.05, "timeout_rate": 0.02, "delay_s": 0.3,
                  "reset_rate": 0.05}
        assert httpx.post(f"{url}/_sim/faults", json=faults).status_code == 200
        now = datetime.now(UTC)
        rounds = 0
        with TenancyClient(url, None, timeout=0.1) as client:
            while True:
                rounds += 1
                # Jump the clock past every backoff rather than sleeping through it.
                result = deliver_pending(conn, client=client, limit=200, max_attempts=100,
                                         now=now + timedelta(days=rounds))
                conn.commit()
                pending = conn.execute(
                    "SELECT count(*) FROM tenancy_outbox WHERE state = 'pending'").fetchone()
                if pending == (0,) or rounds > 60:
                    break
                assert result.dead == 0
                # The hub's backoff (a second at least) is what lets a slow request the client gave up on
                # land before the lookup; the clock above jumps, so wait that out for real here.
                time.sleep(faults["delay_s"] + 0.1)
        remote = httpx.get(f"{url}/api/v1/cases").json()["cases"]
        tally = httpx.get(f"{url}/_sim/stats").json()
        states = dict(conn.execute("SELECT state, count(*) FROM tenancy_outbox GROUP BY state").fetchall())
        # Filed as leads (auto_file): each case has its filing time and stays open for the inspectors.
        filed = conn.execute(
            "SELECT count(*) FROM cases WHERE filed_at IS NOT NULL AND status = 'open'").fetchone()
        redelivered = sum(1 for c in remote if c["deliveries"] > 1)
        retried = conn.execute("SELECT count(*) FROM tenancy_outbox WHERE attempts > 1").fetchone()
        found = conn.execute("SELECT count(*) FROM audit_log WHERE action IN ('case.filed',"
                             " 'tenancy.update_sent') AND detail->>'found_by_lookup' = 'true'").fetchone()
        assert retried is not None and found is not None
        print(f"filing under faults, keys {'honoured' if honour_keys else 'ignored'}: {N} cases, {rounds}"
              f" outbox rounds; {retried[0]} rows needed more than one try, {found[0]} were found there by"
              f" case reference after a lost answer and not sent again; stand-in holds {len(remote)} "
              f"({len({c['idempotency_key'] for c in remote})} distinct keys, "
              f"{len({c['case_ref'] for c in remote})} distinct case refs), {redelivered} delivered "
              f"more than once and deduplicated; injected {tally}; outbox {states}")
        assert len(remote) == N
        assert len({c["idempotency_key"] for c in remote}) == N
        assert len({c["case_ref"] for c in remote}) == N
        assert states == {"sent": 2 * N} and filed == (N,)
        # Each filing's one update arrived once, after it.
        assert sorted(len(c["updates"]) for c in remote) == [1] * N and tally["updates"] == N
        assert tally["reset_after_commit"] > 0 and tally["slow"] > 0 and tally["error_500"] > 0
        assert tally["outage_503"] > 0 and retried[0] > 0 and found[0] > 0
        # Nothing was sent twice that got through: where keys are ignored, a second send is a second case.
        assert tally["created"] == N
        assert redelivered == 0 and tally["repeated"] == 0

        # A filing that never gets through is dead-lettered, kept, and marked on the case.
        conn.execute("INSERT INTO units (unit_id, estate_id) VALUES ('E01-9-9999', 'E01')")
        conn.commit()
        httpx.post(f"{url}/_sim/faults", json={"error_rate": 1.0})
        row = conn.execute(
            "INSERT INTO alerts (unit_id, estate_id, kind, score, first_flagged, last_flagged, rule_version,"
            " window_start, window_end) VALUES ('E01-9-9999', 'E01', 'sublet', 0.9, '2026-03-01',"
            " '2026-03-01', 'rules-1', '2026-02-01', '2026-03-01') RETURNING id").fetchone()
        assert row is not None
        opened = open_case(conn, alert_id=row[0], unit_id="E01-9-9999", estate_id="E01", kind="sublet",
                           summary="doomed", evidence={"reasons": []}, auto_file=True)
        conn.commit()
        assert opened is not None
        with TenancyClient(url, None, timeout=1.0) as client:
            assert deliver_pending(conn, client=client, max_attempts=1,
                                   now=now + timedelta(days=100)).dead == 1
        conn.commit()
        case = get_case(conn, case_id=opened.case_id)
        assert case is not None and case.filing_dead and case.filing is not None
        assert case.filing.state == "dead" and "HTTP 500" in (case.filing.last_error or "")
