"""``anju audit export --unit`` and the demo's summary line read cases through ``anju.hub.cases.queries``
(not the API's query module) and say what the API says, against a real PostgreSQL."""

from __future__ import annotations

import json

import psycopg
import pytest

from anju.cli import main
from anju.demo import summary_line
from anju.hub.audit import record_audit
from anju.hub.cases.queries import unit_trail
from tests.hub.test_api import create_schema, seed


def test_audit_export_of_a_unit_is_its_case_trail(database_url: str, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_AUDIT_KEY", "k" * 32)
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        ids = seed(conn)
        record_audit(conn, actor="user:sup1", action="case.assign", object_type="case",
                     object_id=ids["filed_case"], detail={"assignee": "insp1"})
        record_audit(conn, actor="user:sup1", action="case.assign", object_type="case",
                     object_id=ids["pending_case"], detail={"assignee": "insp1"})  # another unit's
        conn.commit()
        expected = unit_trail(conn, unit_id="E01-1-0101")
    assert expected is not None
    capsys.readouterr()
    assert main(["audit", "export", "--unit", "E01-1-0101", "--database-url", database_url]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported == json.loads(expected.model_dump_json())
    assert [a["id"] for a in exported["alerts"]] == [ids["vacancy"]]
    assert [c["id"] for c in exported["cases"]] == [ids["filed_case"]]
    assert [(r["action"], r["object_id"]) for r in exported["audit"]] == [
        ("case.assign", str(ids["filed_case"]))]
    assert main(["audit", "export", "--unit", "E09-9-9999", "--database-url", database_url]) == 1


def test_demo_summary_line_counts_what_is_stored(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        seed(conn)
    assert summary_line(database_url) == (
        "units=3 readings=5 events=1 alerts_vacancy=2 alerts_sublet=1 cases_filed=1")
