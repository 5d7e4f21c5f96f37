"""``anju status``: agents online and lagging, dead letters per estate, the filing queue, detection and
disk use, read from a real database the way an operator on the hub host reads it."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg.types.json import Jsonb

from anju.cli import main
from anju.hub.status import operator_status
from tests.hub.test_tenancy import conn  # noqa: F401  (fixture: two open cases with pending filings)

pytestmark = pytest.mark.integration


def add_agents(c: psycopg.Connection) -> None:
    rows = [
        ("E01-gw1", "E01", "online", {"outbox_depth": 12, "devices": [{"device": "m1", "available": True}]},
         "now()"),
        ("E01-gw2", "E01", "online",
         {"outbox_depth": 50_000, "devices": [{"device": "m2", "available": False}]}, "now()"),
        ("E02-gw1", "E02", "online", {"outbox_depth": 0}, "now() - interval '20 minutes'"),
        ("E03-gw1", "E03", "offline", {}, "now() - interval '2 days'"),
    ]  # fmt: skip
    for agent, estate, state, payload, when in rows:
        c.execute(f"INSERT INTO agent_status (agent_id, estate_id, state, payload, updated_at)"
                  f" VALUES (%s, %s, %s, %s, {when})", (agent, estate, state, Jsonb(payload)))  # fmt: skip
    letters = (("E01", "bad_payload", "now()"), ("E01", "bad_payload", "now() - interval '3 days'"),
               ("E02", "unknown_unit", "now()"))  # fmt: skip
    for estate, code, when in letters:
        c.execute(f"INSERT INTO dead_letters (received_at, topic, payload, reason, code, estate_id)"
                  f" VALUES ({when}, %s, %s, 'test', %s, %s)",
                  (f"anju/v1/{estate}/readings", b"{}", code, estate))  # fmt: skip
    c.commit()


def test_status_says_which_agents_need_a_look(conn: psycopg.Connection) -> None:  # noqa: F811
    add_agents(conn)
    status = operator_status(conn)
    problems = {a.agent_id: a.problem for a in status.agents}
    assert problems["E01-gw1"] == ""
    assert problems["E01-gw2"] == "50000 records waiting; 1 devices unavailable"
    assert problems["E02-gw1"] == "no status for 20 min"
    assert problems["E03-gw1"] == "offline"
    letters = {(d.estate_id, d.code): (d.total, d.last_day) for d in status.dead_letters}
    assert letters == {("E01", "bad_payload"): (2, 1), ("E02", "unknown_unit"): (1, 1)}
    assert status.filings == {"pending": 2}  # the fixture's two cases, filed when they opened
    assert status.last_alert_write is not None and status.latest_feature_day is not None
    sizes = {t.table: t.bytes for t in status.tables}
    assert sizes and min(sizes.values()) >= 0 and len(sizes) <= 15
    assert max(sizes, key=lambda t: sizes[t]) in {"meter_readings", "unit_daily", "audit_log", "alerts",
                                                  "access_events", "meter_daily"}  # fmt: skip


def test_anju_status_prints_and_fails_when_an_agent_needs_a_look(
    conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    add_agents(conn)
    url = conn.info.dsn
    assert main(["status", "--database-url", url]) == 1
    out = capsys.readouterr().out
    assert "E01-gw2" in out and "50000 records waiting" in out and "filing queue: 2 pending" in out
    assert main(["status", "--json", "--tables", "3", "--database-url", url]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["tables"]) == 3 and doc["filings"] == {"pending": 2}
    conn.execute("DELETE FROM agent_status WHERE state <> 'online' OR payload->>'outbox_depth' <> '12'")
    conn.commit()
    assert main(["status", "--database-url", url]) == 0


def test_a_detection_run_that_flags_nothing_is_seen_as_the_last_run(conn: psycopg.Connection) -> None:  # noqa: F811
    """The fixture's run went through run_detection (no record, so the alerts stand in); a later run
    through the one entry point that flags nothing new still shows as the last run, with what it did."""
    from anju.hub.detection.asof import detect_as_of
    from tests.hub.test_detection import AS_OF

    before = operator_status(conn).detection
    assert before is not None and before.alerts == 2  # read back from the fixture's alerts
    conn.execute("UPDATE alerts SET status = 'closed'")  # nothing of it is open any more
    conn.execute("DELETE FROM unit_daily WHERE unit_id = 'E01-1-0102'")
    conn.execute("UPDATE unit_daily SET elec_kwh = 7.5, water_m3 = 0.3, gas_m3 = 0.4, tenant_entries = 3,"
                 " elec_active_kwh = 6.5, water_active_hours = 8, gas_active_hours = 2,"
                 " tenant_face_entries = 3")  # lived in every day: nothing to flag
    conn.commit()
    result = detect_as_of(conn, as_of=AS_OF, refresh="none", models=False)
    conn.commit()
    assert result.flagged_vacancy + result.flagged_sublet == 0
    run = operator_status(conn).detection
    assert run is not None and run.at is not None and before.at is not None and run.at > before.at
    assert (run.alerts, run.opened) == (0, 0)
    row = conn.execute("SELECT as_of, units, jobs FROM detection_last_run").fetchone()
    assert row == (AS_OF, 1, 1)
