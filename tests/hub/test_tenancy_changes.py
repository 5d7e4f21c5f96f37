"""Status changes in the tenancy system (closed, household moved out) flow back to the hub's cases."""

from __future__ import annotations

import threading

import httpx
import psycopg
import pytest

from anju.hub.audit.store import verify
from anju.hub.cases.service import close_for_tenancy
from anju.hub.tenancy.changes import apply_tenancy_changes
from anju.hub.tenancy.client import TenancyClient
from anju.hub.tenancy.outbox import deliver_pending
from tests.hub.test_tenancy import conn, stand_in  # noqa: F401  (fixtures)
from tests.services import free_port

pytestmark = pytest.mark.integration


def set_status(url: str, tenancy_case_id: str, status: str) -> None:
    r = httpx.post(f"{url}/_sim/cases/{tenancy_case_id}/status", json={"status": status, "note": "by office"})
    assert r.status_code == 200, r.text


def tenancy_rows(conn: psycopg.Connection) -> list[tuple[str, str, str]]:  # noqa: F811
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT object_id, action, detail->>'tenancy_status' FROM audit_log"
        " WHERE actor = 'system:tenancy' AND object_type = 'case' AND action <> 'case.filed'"
        " ORDER BY seq").fetchall()]


def closed_alert_rows(conn: psycopg.Connection) -> list[tuple[str, str, str]]:  # noqa: F811
    """(alert id, case id, why) of every alert the tenancy system closed, in order."""
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT object_id, detail->>'case_id', detail->>'by' FROM audit_log"
        " WHERE actor = 'system:tenancy' AND object_type = 'alert' AND action = 'alert.closed'"
        " ORDER BY seq").fetchall()]


def open_queue(conn: psycopg.Connection) -> list[int]:  # noqa: F811
    """The ids of the open alerts, as the inspectors' queue lists them."""
    from anju.hub.cases.alert_queue import list_alerts

    return [a.id for a in list_alerts(conn, status="open").items]


def test_closed_and_moved_out_close_the_case_once_audited_as_the_tenancy_system(
    conn: psycopg.Connection, stand_in: str  # noqa: F811
) -> None:
    with TenancyClient(stand_in, None, 5.0) as client:
        assert deliver_pending(conn, client=client).sent == 2
        conn.commit()
        remote = {c["idempotency_key"]: c["tenancy_case_id"]
                  for c in httpx.get(f"{stand_in}/api/v1/cases").json()["cases"]}
        ours = {key: case_id for key, case_id in conn.execute(
            "SELECT idempotency_key, case_id FROM tenancy_outbox").fetchall()}
        (key_a, tc_a), (key_b, tc_b) = sorted(remote.items())
        case_a, case_b = str(ours[key_a]), str(ours[key_b])
        alert_of = {str(c): str(a) for c, a in conn.execute("SELECT id, alert_id FROM cases").fetchall()}
        assert sorted(open_queue(conn)) == sorted(int(a) for a in alert_of.values())

        # Nothing changed there yet.
        assert apply_tenancy_changes(conn, client=client, close_case=close_for_tenancy).seen == 0
        set_status(stand_in, tc_a, "closed")
        set_status(stand_in, tc_b, "under_review")
        noted = apply_tenancy_changes(conn, client=client, close_case=close_for_tenancy, limit=1)  # two pages
        conn.commit()
        assert (noted.seen, noted.closed, noted.noted) == (2, 1, 1)
        # Case A is closed, and its alert left the open queue with it; B's alert (only noted) stays.
        assert open_queue(conn) == [int(alert_of[case_b])]
        assert closed_alert_rows(conn) == [(alert_of[case_a], case_a, "tenancy:closed")]
        set_status(stand_in, tc_b, "moved_out")
        result = apply_tenancy_changes(conn, client=client, close_case=close_for_tenancy)
        conn.commit()
        assert (result.seen, result.closed, result.noted, result.unknown, result.last_seq) == (1, 1, 0, 0, 3)
        assert result.error is None
        assert conn.execute("SELECT status, closed_at IS NOT NULL FROM cases ORDER BY id").fetchall() == [
            ("closed", True), ("closed", True)]
        assert tenancy_rows(conn) == [(case_a, "case.close", "closed"),
                                      (case_b, "case.tenancy_status", "under_review"),
                                      (case_b, "case.close", "moved_out")]
        # Both alerts are closed now, each once, audited as the tenancy system with the status that did it.
        assert open_queue(conn) == []
        assert conn.execute("SELECT DISTINCT status FROM alerts").fetchall() == [("closed",)]
        assert closed_alert_rows(conn) == [(alert_of[case_a], case_a, "tenancy:closed"),
                                           (alert_of[case_b], case_b, "tenancy:moved_out")]

        # Polling again applies nothing twice; a repeated "closed" on a closed case adds no row.
        assert apply_tenancy_changes(conn, client=client, close_case=close_for_tenancy).seen == 0
        set_status(stand_in, tc_a, "closed")
        again = apply_tenancy_changes(conn, client=client, close_case=close_for_tenancy)
        conn.commit()
        assert (again.seen, again.closed, again.last_seq) == (1, 0, 4)
        assert len(tenancy_rows(conn)) == 3
        assert len(closed_alert_rows(conn)) == 2

        # A case the hub never filed is skipped (and logged), and the feed moves on past it.
        r = httpx.post(f"{stand_in}/api/v1/cases", headers={"Idempotency-Key": "someone-else-1"}, json={
            "case_ref": "X-1", "unit_id": "E09-1-0101", "estate_id": "E09", "kind": "vacancy",
            "opened_at": "2026-04-10T09:00:00+08:00", "summary": "", "reasons": [],
            "evidence_sha256": "c" * 64})
        set_status(stand_in, r.json()["tenancy_case_id"], "closed")
        stray = apply_tenancy_changes(conn, client=client, close_case=close_for_tenancy)
        conn.commit()
        assert (stray.seen, stray.unknown, stray.last_seq) == (1, 1, 5)

    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        assert verify(conn).ok


def test_unreachable_feed_is_reported_and_resumed_later(conn: psycopg.Connection) -> None:  # noqa: F811
    with TenancyClient(f"http://127.0.0.1:{free_port()}", None, 0.5) as client:
        result = apply_tenancy_changes(conn, client=client, close_case=close_for_tenancy)
    assert result.error is not None and result.seen == 0 and result.last_seq == 0
    assert conn.execute("SELECT last_seq FROM tenancy_feed").fetchall() == [(0,)]


def test_hub_pipeline_files_then_closes_from_the_feed(
    conn: psycopg.Connection, stand_in: str, database_url: str  # noqa: F811
) -> None:
    from anju.hub.main import Pipeline
    from anju.hub.settings import HubSettings

    settings = HubSettings(tenancy_url=stand_in, detect_interval_s=3600, filing_interval_s=0.05)
    pipeline = Pipeline(database_url=database_url, settings=settings)
    pipeline.start()
    try:
        for _ in range(200):
            if len(httpx.get(f"{stand_in}/api/v1/cases").json()["cases"]) == 2:
                break
            threading.Event().wait(0.05)
        for c in httpx.get(f"{stand_in}/api/v1/cases").json()["cases"]:
            set_status(stand_in, c["tenancy_case_id"], "moved_out")
        for _ in range(200):
            conn.rollback()
            if conn.execute("SELECT count(*) FROM cases WHERE status = 'closed'").fetchone() == (2,):
                break
            threading.Event().wait(0.05)
    finally:
        pipeline.stop()
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM cases WHERE status = 'closed'").fetchone() == (2,)
    assert [r[1] for r in tenancy_rows(conn)] == ["case.close", "case.close"]
    assert conn.execute("SELECT count(*) FROM alerts WHERE status = 'open'").fetchone() == (0,)
    assert len(closed_alert_rows(conn)) == 2
    assert pipeline.stats.errors == []


def test_changes_are_matched_by_case_reference_where_the_system_ignores_keys(
    conn: psycopg.Connection,  # noqa: F811
) -> None:
    """A city system that ignores Idempotency-Key does not echo it in its feed either: the change names
    the case by anju's reference, and that is enough."""
    from anju.device_sims.tenancy import create_app
    from tests.hub.test_tenancy import serve

    with serve(create_app(honour_keys=False)) as url, TenancyClient(url, None, 5.0) as client:
        assert deliver_pending(conn, client=client).sent == 2
        conn.commit()
        first = httpx.get(f"{url}/api/v1/cases").json()["cases"][0]
        set_status(url, first["tenancy_case_id"], "moved_out")
        feed = httpx.get(f"{url}/api/v1/changes").json()["changes"]
        assert "idempotency_key" not in feed[0] and feed[0]["case_ref"] == first["case_ref"]
        result = apply_tenancy_changes(conn, client=client, close_case=close_for_tenancy)
        conn.commit()
    assert (result.seen, result.closed, result.unknown) == (1, 1, 0)
    closed = conn.execute("SELECT id FROM cases WHERE status = 'closed'").fetchall()
    assert [f"ANJU-{c[0]}" for c in closed] == [first["case_ref"]]


def test_case_references_read_back() -> None:
    from anju.hub.tenancy.filing import case_of_ref, case_ref

    assert case_of_ref(case_ref(42)) == 42
    assert case_of_ref("X-1") is None and case_of_ref("ANJU-") is None and case_of_ref("ANJU-1x") is None
