"""The case page in the field (issue 14): findings kept with the verdict (occupants seen, ID checked), a
second step before a verdict, and forms that keep what was typed when an action is refused."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import httpx
import psycopg

from anju.hub.api.app import create_app
from tests.hub.test_api import add_users, create_schema, insert_unit, login, seed, serve
from tests.hub.test_cases import new_case


def test_findings_kept_and_forms_keep_what_was_typed(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        seed(conn)
        add_users(conn)
        insert_unit(conn, "E01-6-0101", "E01")
        insert_unit(conn, "E01-6-0102", "E01")
        conn.commit()
        alert, case = new_case(conn, "E01-6-0101")
        other_alert, other_case = new_case(conn, "E01-6-0102", kind="sublet")
    with serve(create_app(database_url=database_url)) as url, httpx.Client(base_url=url, timeout=10) as http:
        sup, insp = login(url, "sup1"), login(url, "insp1")
        for c in (case, other_case):
            r = http.post(f"/api/cases/{c}/assign", json={"assignee": "insp1"}, headers=sup)
            assert r.status_code == 200
        page = http.get(f"/alerts/{alert}", headers=insp).text
        # The verdicts wait behind a second step: the button is inside a closed <details>.
        assert re.search(r'<details class="confirm-step" data-action="confirm">\s*<summary', page)
        assert 'name="occupants_seen"' in page and 'name="id_checked"' in page

        def act(**form: str) -> httpx.Response:
            return http.post(f"/cases/{case}/action", data={"alert_id": str(alert), **form}, headers=insp)

        # "Other" without a note is refused: the reason stays "other", the count stays, the step is open.
        refused = act(action="dismiss", reason="other", note="", occupants_seen="3", id_checked="1")
        assert refused.status_code == 409
        assert '<option value="other" selected>' in refused.text
        assert '<option value="travel" selected>' not in refused.text
        assert 'name="occupants_seen" type="number" min="0" max="99" step="1" inputmode="numeric" value="3"' \
            in refused.text
        assert '<details class="confirm-step" data-action="dismiss" open>' in refused.text
        assert '<details class="confirm-step" data-action="confirm">' in refused.text  # the others stay shut
        # A count that is not 0..99: nothing is decided, and the note typed comes back.
        bad = act(action="confirm", note="two men, not on the lease", occupants_seen="200")
        assert bad.status_code == 422 and "0 到 99" in bad.text
        assert 'value="two men, not on the lease"' in bad.text
        done = act(action="confirm", note="two men, not on the lease", occupants_seen="2", id_checked="1")
        assert done.status_code == 303
        shown = http.get(f"/alerts/{alert}", headers=insp).text
        assert re.search(r'<dd class="findings" data-occupants="2" data-id-checked="True">'
                         r"见到 2 人 · 已查验证件</dd>", shown)
        # A dismissal without findings keeps none.
        r = http.post(f"/cases/{other_case}/action", headers=insp,
                      data={"alert_id": str(other_alert), "action": "dismiss", "reason": "hospital"})
        assert r.status_code == 303
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT case_id, action, occupants_seen, id_checked, recorded_by"
                            " FROM case_findings").fetchall()
        audit = conn.execute("SELECT actor, detail->>'occupants_seen' FROM audit_log"
                             " WHERE action = 'case.findings'").fetchall()
    assert rows == [(case, "confirm", 2, True, "user:insp1")]
    assert audit == [("user:insp1", "2")]


def one_open_case(database_url: str) -> tuple[int, int]:
    """A seeded schema with users and one open case on unit E01-6-0101: (alert id, case id)."""
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        seed(conn)
        add_users(conn)
        insert_unit(conn, "E01-6-0101", "E01")
        conn.commit()
        return new_case(conn, "E01-6-0101")


def test_times_in_the_estate_zone_and_an_audit_log_in_words(database_url: str) -> None:
    alert, case = one_open_case(database_url)
    with serve(create_app(database_url=database_url)) as url, httpx.Client(base_url=url, timeout=10) as http:
        sup, insp, aud = login(url, "sup1"), login(url, "insp1"), login(url, "aud")
        r = http.post(f"/api/cases/{case}/assign", json={"assignee": "insp1"}, headers=sup)
        assert r.status_code == 200
        r = http.post(f"/api/cases/{case}/confirm", json={"note": "两名男子，不在租约上"}, headers=insp)
        assert r.status_code == 200
        page = http.get(f"/alerts/{alert}", headers=insp).text
        assert "时间：北京时间 (UTC+08:00)" in page
        audit = http.get("/audit", params={"object_type": "case", "object_id": str(case)}, headers=aud).text
        assert '<option value="case" selected>案件</option>' in audit
        assert "时间（北京时间 (UTC+08:00)）" in audit
        row = re.search(r'<tr class="audit-row" data-seq="\d+" data-action="case.confirm">(.*?)</tr>', audit,
                        re.S)
        assert row is not None
        assert '<td class="action">确认属实</td>' in row.group(1) and "案件 " in row.group(1)
        assert "两名男子，不在租约上" in row.group(1) and "\\u" not in audit
    with psycopg.connect(database_url) as conn:
        ts = conn.execute("SELECT ts FROM audit_log WHERE action = 'case.confirm'").fetchone()
    assert ts is not None
    local = ts[0].astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert f'<span class="ts">{local}</span>' in page  # the trail in local time, not UTC


def test_sign_in_keeps_the_name_after_a_wrong_password(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        add_users(conn)
    with serve(create_app(database_url=database_url)) as url, httpx.Client(base_url=url, timeout=10) as http:
        page = http.post("/login", data={"name": "insp1", "password": "wrong password"})
        assert page.status_code == 401
        assert 'name="name" autocomplete="username" required maxlength="64" value="insp1"' in page.text
        assert 'value="wrong password"' not in page.text  # never the password
