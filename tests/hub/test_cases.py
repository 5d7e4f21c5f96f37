"""The case workflow over the API: assign, visit, confirm (then filed), dismiss with a reason, close."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from anju.hub.api.app import create_app
from anju.hub.audit.store import verify
from anju.hub.cases.service import open_case
from anju.hub.tenancy.client import TenancyClient
from anju.hub.tenancy.outbox import deliver_pending
from tests.hub.test_api import add_users, create_schema, insert_alert, login, seed, serve, vacancy_evidence
from tests.hub.test_tenancy import serve as serve_asgi


def new_case(conn: psycopg.Connection[Any], unit_id: str, kind: str = "vacancy") -> tuple[int, int]:
    """A fresh alert and its case, not filed until confirmed; (alert id, case id)."""
    alert = insert_alert(conn, unit_id=unit_id, estate_id=unit_id[:3], kind=kind, score=0.7, reasons=[],
                         evidence=vacancy_evidence())
    opened = open_case(conn, alert_id=alert, unit_id=unit_id, estate_id=unit_id[:3], kind=kind,
                       summary="test", evidence={"reasons": [], "alert_id": alert}, auto_file=False)
    assert opened is not None
    conn.commit()
    return alert, opened.case_id


def test_confirm_files_and_dismiss_keeps_a_verdict(database_url: str) -> None:
    from anju.device_sims.tenancy import create_app as tenancy_app

    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        seed(conn)
        add_users(conn)
        conn.execute("INSERT INTO units (unit_id, estate_id) VALUES ('E01-3-0101', 'E01'),"
                     " ('E01-3-0102', 'E01')")
        alert, case = new_case(conn, "E01-3-0101")
        _, other_case = new_case(conn, "E01-3-0102", kind="sublet")
        # A re-alert for the same unit and kind attaches to the open case instead of opening another.
        again = insert_alert(conn, unit_id="E01-3-0101", estate_id="E01", kind="vacancy", score=0.8,
                             reasons=[], evidence={}, status="closed")
        assert open_case(conn, alert_id=again, unit_id="E01-3-0101", estate_id="E01", kind="vacancy",
                         summary="again", evidence={}, auto_file=False) is None
        conn.commit()
        ids = conn.execute("SELECT alert_ids FROM cases WHERE id = %s", (case,)).fetchone()
        assert ids == ([alert, again],)
        queued = conn.execute("SELECT count(*) FROM tenancy_outbox WHERE case_id = %s", (case,)).fetchone()
        assert queued == (0,)

    with serve(create_app(database_url=database_url)) as url, httpx.Client(base_url=url, timeout=10) as http:
        sup, insp, insp_b = login(url, "sup1"), login(url, "insp1"), login(url, "insp1b")
        # Not assigned yet: confirming is not possible.
        assert http.post(f"/api/cases/{case}/confirm", json={}, headers=sup).status_code == 409
        r = http.post(f"/api/cases/{case}/assign", json={"assignee": "insp2"}, headers=sup)
        assert r.status_code == 409  # insp2 works in E02
        r = http.post(f"/api/cases/{case}/assign", json={"assignee": "insp1"}, headers=sup)
        assert r.status_code == 200 and r.json()["status"] == "assigned" and r.json()["assignee"] == "insp1"
        assert http.post(f"/api/cases/{case}/confirm", json={}, headers=insp_b).status_code == 403
        r = http.post(f"/api/cases/{case}/schedule-visit", json={"visit_on": "2026-04-02"}, headers=insp)
        assert r.status_code == 200 and r.json()["visit_on"] == "2026-04-02"
        r = http.post(f"/api/cases/{case}/confirm", json={"note": "two strangers living there"}, headers=insp)
        assert r.status_code == 200 and r.json()["status"] == "confirmed"
        assert r.json()["filing"]["state"] == "pending"

        r = http.post(f"/api/cases/{other_case}/dismiss", json={"reason": "nonsense"}, headers=insp)
        assert r.status_code == 409
        assert http.post(f"/api/cases/{other_case}/dismiss", json={"reason": "other"}, headers=insp
                         ).status_code == 409  # 'other' needs a note
        r = http.post(f"/api/cases/{other_case}/dismiss", json={"reason": "hospital", "note": "in hospital"},
                      headers=insp)
        assert r.status_code == 200 and r.json()["status"] == "dismissed" and r.json()["assignee"] == "insp1"
        assert http.post(f"/api/cases/{other_case}/close", json={}, headers=insp).status_code == 403
        assert http.post(f"/api/cases/{other_case}/close", json={}, headers=sup).json()["status"] == "closed"

        with psycopg.connect(database_url) as conn, serve_asgi(tenancy_app()) as tenancy:
            with TenancyClient(tenancy, None, 5.0) as client:
                assert deliver_pending(conn, client=client).sent == 1
            conn.commit()
        detail = http.get(f"/api/cases/{case}", headers=insp).json()
        assert detail["status"] == "filed" and detail["filing"]["state"] == "sent"
        actions = [(t["actor"], t["action"]) for t in detail["trail"]]
        assert actions == [
            ("system:detector", "case.opened"), ("system:detector", "case.realerted"),
            ("user:sup1", "case.assign"), ("user:insp1", "case.schedule_visit"),
            ("user:insp1", "case.confirm"), ("user:insp1", "tenancy.queued"), ("user:insp1", "alert.closed"),
            ("system:tenancy", "case.filed"),
        ]
        assert http.post(f"/api/cases/{case}/close", json={"note": "evicted"}, headers=sup).status_code == 200

        trail = http.get("/api/units/E01-3-0102/trail", headers=login(url, "aud")).json()
        assert [(v["verdict"], v["reason_code"], v["decided_by"]) for v in trail["verdicts"]] == [
            ("dismissed", "hospital", "insp1")]
        assert [a["status"] for a in trail["alerts"]] == ["closed"]
        assert "case.dismiss" in [a["action"] for a in trail["audit"]]
        assert http.get("/api/audit/verify", headers=login(url, "aud")).json()["ok"] is True

    with psycopg.connect(database_url) as conn:
        verdicts = conn.execute("SELECT case_id, verdict, score, rule_version FROM case_verdicts ORDER BY id"
                                ).fetchall()
        assert verdicts == [(case, "confirmed", 0.7, "rules-1"), (other_case, "dismissed", 0.7, "rules-1")]
        assert verify(conn).ok
