"""The supervisor's page (issue 14): workload per inspector, open and overdue per estate, verdict rates with
reasons, alerts per week, median days from assignment to verdict; supervisors and admins only."""

from __future__ import annotations

import re

import httpx
import psycopg

from anju.hub.api.app import create_app
from anju.hub.api.supervisor_queries import overview
from tests.hub.test_api import add_users, create_schema, insert_unit, login, seed, serve
from tests.hub.test_cases import new_case


def test_supervisor_sees_workload_overdue_rates_and_weeks(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        seed(conn)
        add_users(conn)
        units = [f"E01-4-{n:04d}" for n in range(1, 6)] + ["E02-4-0001"]
        for unit in units:
            insert_unit(conn, unit, unit[:3])
        conn.commit()
        cases = [new_case(conn, unit)[1] for unit in units]
        conn.execute("UPDATE alerts SET first_flagged = current_date - 8 WHERE unit_id = 'E01-4-0001'")
        conn.commit()
    with serve(create_app(database_url=database_url)) as url, httpx.Client(base_url=url, timeout=10) as http:
        sup, insp, insp_b = login(url, "sup1"), login(url, "insp1"), login(url, "insp1b")

        def act(who: dict[str, str], case: int, action: str, **body: str) -> None:
            r = http.post(f"/api/cases/{case}/{action}", json=body, headers=who)
            assert r.status_code == 200, r.text

        for case in cases[:3]:
            act(sup, case, "assign", assignee="insp1")
        act(sup, cases[3], "assign", assignee="insp1b")
        act(insp, cases[0], "confirm", note="two strangers live there")
        act(insp, cases[1], "dismiss", reason="hospital", note="")
        act(insp, cases[2], "schedule-visit", visit_on="2020-01-01")  # long past: overdue
        act(insp_b, cases[3], "dismiss", reason="hospital", note="")

        page = http.get("/supervisor", headers=sup)
        assert page.status_code == 200
        html = page.text
        row = re.search(r'<tr class="inspector" data-inspector="insp1">(.*?)</tr>', html, re.S)
        assert row is not None
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
        assert cells[1] == "1" and ">1</a>" in cells[2]  # one in hand, and it is overdue
        assert (cells[4], cells[5]) == ("1", "1")
        assert re.search(r"\d+\.\d 天", cells[6])  # median days from assignment to verdict
        assert 'data-confirmed="1" data-dismissed="2"' in html
        assert "核实属实 1 件（33%），排除 2 件（67%）" in html
        assert re.search(r'<text[^>]*>住院</text>\s*<rect class="bar"[^>]*data-value="2.0"', html)
        estate = re.search(r'<tr class="estate" data-estate="E01">(.*?)</tr>', html, re.S)
        assert estate is not None and 'class="overdue warn">1<' in estate.group(1)
        assert 'data-estate="E02"' not in html  # another district's estate stays out of sight
        assert len(re.findall(r'<span class="week" data-week=', html)) == 12
        assert 'data-series="alerts_per_week"' in html and "每周新线索" in html
        # Only supervisors and admins.
        assert http.get("/supervisor", headers=insp).status_code == 403
        assert http.get("/supervisor", headers=login(url, "aud")).status_code == 403
        assert http.get("/supervisor", headers=login(url, "adm")).status_code == 200
        english = http.get("/supervisor", params={"lang": "en"}, headers=sup).text
        assert "1 confirmed (33%), 2 dismissed (67%)" in english and "hospital stay" in english

    with psycopg.connect(database_url) as conn:
        data = overview(conn, estates=["E01", "E03"])
        weekly = conn.execute(
            "SELECT count(*) FROM alerts WHERE estate_id = ANY(%s) AND first_flagged >="
            " date_trunc('week', current_date)::date - 77", (["E01", "E03"],)).fetchone()
    assert weekly is not None and sum(n for _, n in data.weeks) == weekly[0]  # chart and table agree
    assert data.reasons == [("hospital", 2)]
