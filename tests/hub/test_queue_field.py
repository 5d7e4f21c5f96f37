"""The queue at scale and the field pages (issue 14): keyset paging with counts in every order, filters by
case state, assignee and overdue, search by address, the visit list as CSV and print, the visit sheet, the
building view."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from anju.hub.api.app import create_app
from anju.hub.cases.alert_queue import list_alerts
from anju.hub.cases.schemas import AlertSort
from tests.hub.test_api import CJK, add_users, create_schema, english_text, login, seed, serve

N_MANY = 230


def many_alerts(conn: psycopg.Connection[Any]) -> None:
    """230 open alerts in E01 with many ties in score and days, so that only the id breaks them."""
    conn.execute(
        "INSERT INTO units (unit_id, estate_id, building, floor, address)"
        " SELECT 'E01-5-' || lpad(i::text, 4, '0'), 'E01', '5', 1 + i %% 9, '幸福路 ' || i || ' 号'"
        " FROM generate_series(1, %s) i", (N_MANY,))
    conn.execute(
        "INSERT INTO alerts (unit_id, estate_id, kind, status, score, first_flagged, last_flagged, reasons,"
        " evidence, rule_version, window_start, window_end)"
        " SELECT 'E01-5-' || lpad(i::text, 4, '0'), 'E01', 'vacancy', 'open', (i %% 7) / 10.0,"
        "        current_date - (i %% 11), current_date - (i %% 3), '[]', '{}', 'rules-1', current_date - 28,"
        "        current_date FROM generate_series(1, %s) i", (N_MANY,))
    conn.commit()


@pytest.fixture
def hub(database_url: str) -> Iterator[tuple[str, dict[str, int]]]:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        ids = seed(conn)
        add_users(conn)
        many_alerts(conn)
        conn.execute("UPDATE units SET address = '和平街 3 号 1 单元 302' WHERE unit_id = 'E01-1-0302'")
        conn.commit()
    with serve(create_app(database_url=database_url)) as url:
        yield url, ids


@pytest.mark.parametrize("sort", list(AlertSort))
def test_keyset_pages_match_offset_pages_both_ways(database_url: str, sort: AlertSort) -> None:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        seed(conn)
        many_alerts(conn)
        every = [a.id for a in list_alerts(conn, sort=sort, limit=1000).items]
        assert len(every) == N_MANY + 3
        pages: list[list[int]] = []
        after: int | None = None
        while True:
            page = list_alerts(conn, sort=sort, limit=50, after=after)
            assert page.total == N_MANY + 3 and page.offset == 50 * len(pages)
            pages.append([a.id for a in page.items])
            if page.next_after is None:
                break
            after = page.next_after
        assert [i for p in pages for i in p] == every
        # ... and backwards from the last page, the same pages with their positions.
        before = pages[-1][0]
        for n in range(len(pages) - 2, -1, -1):
            page = list_alerts(conn, sort=sort, limit=50, before=before)
            assert [a.id for a in page.items] == pages[n] and page.offset == 50 * n
            assert (page.prev_before is None) == (n == 0)
            before = page.items[0].id
        # A cursor that is no alert: the first page.
        assert [a.id for a in list_alerts(conn, sort=sort, limit=50, after=10**12).items] == pages[0]


def test_queue_page_counts_and_pages_by_keyset(hub: tuple[str, dict[str, int]]) -> None:
    url, _ = hub
    with httpx.Client(base_url=url, timeout=10, headers=login(url, "insp1")) as http:
        first = http.get("/").text
        assert f"第 1–100 条，共 {N_MANY + 2} 条" in first
        nxt = re.search(r'<a class="button next" href="([^"]+)"', first)
        assert nxt is not None and "after=" in nxt.group(1)
        second = http.get(nxt.group(1).replace("&amp;", "&")).text
        assert f"第 101–200 条，共 {N_MANY + 2} 条" in second
        prev = re.search(r'<a class="button prev" href="([^"]+)"', second)
        assert prev is not None
        again = http.get(prev.group(1).replace("&amp;", "&")).text
        rows = re.compile(r'data-alert-id="(\d+)"')
        assert rows.findall(again) == rows.findall(first)
        assert 'class="button prev"' not in first


def test_filters_by_state_assignee_overdue_and_address(hub: tuple[str, dict[str, int]]) -> None:
    url, ids = hub
    with httpx.Client(base_url=url, timeout=10) as http:
        sup, insp = login(url, "sup1"), login(url, "insp1")
        case = ids["pending_case"]
        r = http.post(f"/api/cases/{case}/assign", json={"assignee": "insp1"}, headers=sup)
        assert r.status_code == 200

        def found(who: dict[str, str], **params: Any) -> list[int]:
            r = http.get("/api/alerts", params={"status": "open", **params}, headers=who)
            assert r.status_code == 200, r.text
            return [a["id"] for a in r.json()["items"]]

        assert found(sup, state="assigned") == [ids["sublet"]]
        assert found(sup, state="open", limit=5) == [ids["vacancy"]] or ids["sublet"] not in found(
            sup, state="open")
        assert found(sup, assignee="insp1") == [ids["sublet"]]
        assert found(sup, overdue=True) == []
        assert http.post(f"/api/cases/{case}/schedule-visit", json={"visit_on": "2020-01-02"},
                         headers=insp).status_code == 200
        assert found(sup, overdue=True) == [ids["sublet"]]
        # An address, or part of it: the unit whose address it is.
        assert found(insp, unit="和平街 3 号") == [ids["sublet"]]
        assert len(found(insp, unit="幸福路 1", limit=500)) == 1 + 10 + 100  # 1, 10-19, 100-199
        page = http.get("/", params={"state": "visit_scheduled", "overdue": "1"}, headers=sup).text
        assert re.findall(r'<tr class="alert[^"]*" data-alert-id="(\d+)"', page) == [str(ids["sublet"])]
        assert '<option value="visit_scheduled" selected>' in page
        assert re.search(r'<td class="due overdue"[^>]*data-overdue="1">.*?超期', page)
        assert "和平街 3 号 1 单元 302" in page


def test_visit_list_csv_print_and_sheets(hub: tuple[str, dict[str, int]]) -> None:
    url, ids = hub
    with httpx.Client(base_url=url, timeout=10) as http:
        sup, insp = login(url, "sup1"), login(url, "insp1")
        http.post(f"/api/cases/{ids['pending_case']}/assign", json={"assignee": "insp1"}, headers=sup)
        r = http.get("/visits.csv", params={"mine": "1"}, headers=insp)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.text.startswith("\ufeff")
        table = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
        assert table[0][:3] == ["案件号", "单元", "地址"]
        assert [row[1] for row in table[1:]] == ["E01-1-0302"]
        assert table[1][0] == str(ids["pending_case"]) and table[1][2] == "和平街 3 号 1 单元 302"
        english = list(csv.reader(io.StringIO(
            http.get("/visits.csv", params={"mine": "1", "lang": "en"}, headers=insp).text.lstrip("\ufeff"))))
        assert english[0][0] == "case" and english[1][8] == "sublet"

        printed = http.get("/visits", params={"mine": "1"}, headers=insp).text
        assert "走访清单" in printed and "E01-1-0302" in printed and "visit-sheet" not in printed
        sheets = http.get("/visits", params={"mine": "1", "sheets": "1"}, headers=insp).text
        assert sheets.count('<article class="visit-sheet"') == 1
        for text in ("和平街 3 号 1 单元 302", "登记住户", "2 人", "2024-05-01", "现场见到人数",
                     "已查验身份证件", "巡查员签名", "住户签名"):
            assert text in sheets, text
        assert sheets.count('<svg class="chart-svg"') == 3  # electricity, water, tenant entries
        one = http.get(f"/alerts/{ids['vacancy']}/sheet", headers=insp)
        assert one.status_code == 200 and one.text.count('<article class="visit-sheet"') == 1
        assert http.get(f"/alerts/{ids['other']}/sheet", headers=insp).status_code == 404
        # Ten at most by default for the sheets, everyone's oldest first.
        ten = http.get("/visits", params={"sheets": "1", "sort": "oldest"}, headers=sup).text
        assert ten.count('<article class="visit-sheet"') == 10


def test_building_view_shows_each_units_state(hub: tuple[str, dict[str, int]]) -> None:
    url, ids = hub
    with httpx.Client(base_url=url, timeout=10) as http:
        insp = login(url, "insp1")
        page = http.get("/estates/E01/grid", headers=insp)
        assert page.status_code == 200
        cells = dict(re.findall(r'data-unit="([^"]+)" data-state="([^"]+)"', page.text))
        assert cells["E01-1-0101"] == "filed" and cells["E01-1-0302"] == "open"
        assert cells["E01-5-0001"] == "alert" and len(cells) == N_MANY + 2
        floors = re.findall(r'<section class="building" data-building="5">(.*?)</section>', page.text, re.S)
        assert re.findall(r'data-floor="(\d+)"', floors[0]) == [str(f) for f in range(9, 0, -1)]
        assert re.search(rf'href="[^"]*/alerts/{ids["vacancy"]}"', page.text)
        assert http.get("/estates/E02/grid", headers=insp).status_code == 404


def test_new_pages_are_english_throughout_in_english(hub: tuple[str, dict[str, int]]) -> None:
    url, ids = hub
    with httpx.Client(base_url=url, timeout=10) as http:
        sup, aud = login(url, "sup1"), login(url, "aud")
        pages = [(sup, "/supervisor"), (sup, "/estates/E01/grid"), (sup, f"/alerts/{ids['vacancy']}/sheet"),
                 (sup, "/?state=open&overdue=1"), (aud, "/audit")]
        for who, path in pages:
            html = http.get(path, params={"lang": "en"}, headers=who).text
            html = re.sub(r"(幸福路|和平街)[^<]*", "", html)  # addresses are data, not the page's words
            assert CJK.findall(english_text(html)) == [], path
        csv_text = http.get("/visits.csv", params={"lang": "en", "status": "all"}, headers=sup).text
        assert CJK.findall(re.sub(r"(幸福路|和平街)[^,]*", "", csv_text)) == []
