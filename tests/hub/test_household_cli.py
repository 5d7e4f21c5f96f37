"""``anju household add|remove|list`` and ``anju welfare list`` against a real PostgreSQL."""

from __future__ import annotations

import json

import psycopg
import pytest

from anju.cli import main
from tests.hub.test_api import create_schema


def test_lease_members_added_listed_removed_and_welfare_listed(database_url: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        conn.execute("INSERT INTO units (unit_id, estate_id) VALUES ('E01-1-0101', 'E01')")
        conn.commit()
    db = ["--database-url", database_url]
    assert main(["household", "add", "E01-1-0101", "--name", "王芳", "--phone", "+86 138 0000 0001",
                 "--relation", "tenant", *db]) == 0
    assert main(["household", "add", "E01-1-0101", "--name", "王小", "--phone", "13800000003",
                 "--relation", "member", *db]) == 0
    assert main(["household", "add", "E09-9-9999", "--name", "x", "--phone", "13800000004",
                 "--relation", "tenant", *db]) == 2  # no such unit
    capsys.readouterr()
    assert main(["household", "list", "E01-1-0101", *db]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["relation"], m["adult"], m["phone"]) for m in listed] == [
        ("王芳", "tenant", True, "**********0001"), ("王小", "member", False, "*******0003")]
    assert main(["household", "remove", "--phone", "+8613800000001", *db]) == 0
    assert main(["household", "remove", "--phone", "+8613800000001", *db]) == 1
    capsys.readouterr()
    assert main(["welfare", "list", *db]) == 0
    assert json.loads(capsys.readouterr().out) == []
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO welfare_queue (unit_id, estate_id, source, source_key, note)"
                     " VALUES ('E01-1-0101', 'E01', 'household', 'k1', '请来看看')")
        conn.commit()
    assert main(["welfare", "list", *db]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(w["unit_id"], w["source"], w["note"]) for w in listed] == [
        ("E01-1-0101", "household", "请来看看")]
    assert main(["welfare", "visited", str(listed[0]["id"]), *db]) == 0
    assert main(["welfare", "visited", str(listed[0]["id"]), *db]) == 1  # no longer open
    capsys.readouterr()
    assert main(["welfare", "list", *db]) == 0
    assert json.loads(capsys.readouterr().out) == []
    with psycopg.connect(database_url) as conn:
        actions = [r[0] for r in conn.execute(
            "SELECT action FROM audit_log WHERE action LIKE 'household.%' OR action LIKE 'welfare.%'"
            " ORDER BY seq")]
    assert actions == ["household.member_added", "household.member_added", "household.member_removed",
                       "welfare.visited"]
