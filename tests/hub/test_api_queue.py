"""The queue for hundreds of alerts (issue 14, item 3's basics): assignee and visit columns, "my cases",
search by unit id, batch assignment audited per case, compact rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from anju.hub.api.app import create_app
from tests.hub.test_api import add_users, create_schema, insert_unit, login, seed, serve
from tests.hub.test_cases import new_case


@pytest.fixture
def hub(database_url: str) -> Iterator[tuple[str, dict[str, int]]]:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        ids = seed(conn)
        add_users(conn)
        for unit in ("E01-3-0101", "E01-3-0102", "E02-3-0103"):
            insert_unit(conn, unit, unit[:3])
        conn.commit()
        for n, unit in enumerate(("E01-3-0101", "E01-3-0102", "E02-3-0103")):
            ids[f"alert{n}"], ids[f"case{n}"] = new_case(conn, unit)
    with serve(create_app(database_url=database_url)) as url:
        yield url, ids


def alert_ids(http: httpx.Client, who: dict[str, str], **params: Any) -> list[int]:
    resp = http.get("/api/alerts", params={"status": "open", **params}, headers=who)
    assert resp.status_code == 200, resp.text
    return [a["id"] for a in resp.json()["items"]]


def test_my_cases_assignee_and_unit_search(hub: tuple[str, dict[str, int]]) -> None:
    url, ids = hub
    with httpx.Client(base_url=url, timeout=10) as http:
        sup, insp = login(url, "sup1"), login(url, "insp1")
        r = http.post(f"/api/cases/{ids['pending_case']}/assign", json={"assignee": "insp1"}, headers=sup)
        assert r.status_code == 200
        r = http.post(f"/api/cases/{ids['pending_case']}/schedule-visit", json={"visit_on": "2026-04-02"},
                      headers=insp)
        assert r.status_code == 200
        assert alert_ids(http, insp, mine=True) == [ids["sublet"]]
        assert alert_ids(http, sup, mine=True) == []
        assert alert_ids(http, sup, assignee="insp1") == [ids["sublet"]]
        row = http.get("/api/alerts", params={"mine": True}, headers=insp).json()["items"][0]
        assert (row["case_assignee"], row["case_visit_on"]) == ("insp1", "2026-04-02")
        assert alert_ids(http, sup, unit="0302") == [ids["sublet"]]
        assert alert_ids(http, sup, unit="e01-3") == [ids["alert0"], ids["alert1"]]  # any case
        assert alert_ids(http, sup, unit="%") == [] and alert_ids(http, sup, unit="_") == []  # literal
        assert alert_ids(http, sup, unit="E02-3") == []  # another estate's unit stays out of sight
        assert http.get("/api/alerts", params={"unit": ""}, headers=sup).status_code == 422

        # The page: compact rows with the assignee and visit day, "my cases" and a search box.
        page = http.get("/", params={"mine": "1"}, headers=insp).text
        rows = re.findall(r'<tr class="alert[^"]*" data-alert-id="(\d+)"', page)
        assert rows == [str(ids["sublet"])]
        assert re.search(r'<td class="assignee"[^>]*>insp1</td>', page)
        assert re.search(r'<td class="visit"[^>]*>2026-04-02</td>', page)
        assert "另有 1 条" in page  # the second reason waits behind "1 more"
        found = http.get("/", params={"q": "3-01"}, headers=insp).text
        assert re.findall(r'data-alert-id="(\d+)"', found) == [str(ids["alert0"]), str(ids["alert1"])]
        assert 'name="case_' not in found  # an inspector gets no batch assignment


def test_batch_assign_per_case_audited_refusals_reported(
    hub: tuple[str, dict[str, int]], database_url: str,
) -> None:
    url, ids = hub
    with httpx.Client(base_url=url, timeout=10) as http:
        sup = login(url, "sup1")
        body = {"case_ids": [ids["case0"], ids["case1"], ids["case2"], ids["filed_case"], ids["case0"]],
                "assignee": "insp1"}
        r = http.post("/api/cases/assign", json=body, headers=sup)
        assert r.status_code == 200
        assert [(o["case_id"], o["outcome"], o["code"]) for o in r.json()["results"]] == [
            (ids["case0"], "assigned", ""), (ids["case1"], "assigned", ""),
            (ids["case2"], "not_found", "not_found"), (ids["filed_case"], "refused", "status")]
        assert http.post("/api/cases/assign", json=body, headers=login(url, "insp1")).status_code == 403
        assert http.post("/api/cases/assign", json={**body, "case_ids": []}, headers=sup).status_code == 422

        # The page's batch form: back to the same queue, saying how many went through.
        queue = http.get("/", params={"kind": "vacancy"}, headers=sup).text
        assert f'name="case_{ids["case0"]}"' in queue and "insp1b" in queue
        form = {f"case_{ids['case0']}": "on", f"case_{ids['pending_case']}": "on", "assignee": "insp1b",
                "back": "?kind=vacancy"}
        done = http.post("/cases/assign", data=form, headers=sup)
        assert done.status_code == 303
        assert done.headers["location"] == "/?kind=vacancy&assigned=2&refused=0"
        assert "已分派 2 件，未能分派 0 件。" in http.get(done.headers["location"], headers=sup).text
    with psycopg.connect(database_url) as conn:
        audit = conn.execute(
            "SELECT object_id, detail->>'assignee' FROM audit_log WHERE action = 'case.assign' ORDER BY seq"
        ).fetchall()
    assert audit == [(str(ids["case0"]), "insp1"), (str(ids["case1"]), "insp1"),
                     (str(ids["case0"]), "insp1b"), (str(ids["pending_case"]), "insp1b")]
