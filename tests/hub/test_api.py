"""The inspector API and pages against a real PostgreSQL: list, filter, detail, 404, stats."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from psycopg.types.json import Jsonb

from anju.hub.api.app import create_app
from anju.hub.auth.service import add_user, hash_password
from anju.hub.storage import ensure_schema
from tests.services import drop_database, free_port

START = date(2026, 3, 1)
DAYS = [START + timedelta(days=i) for i in range(28)]


def create_schema(conn: psycopg.Connection[Any]) -> None:
    """The hub's tables, as the hub creates them."""
    ensure_schema(conn)
    conn.commit()


def vacancy_evidence() -> dict[str, Any]:
    """Four weeks of a unit gone quiet, with a three-day meter outage in the middle."""
    elec: list[float | None] = [6.0 + (i % 3) * 0.4 for i in range(7)]
    elec += [0.3] * 21
    for i in (12, 13, 14):
        elec[i] = None
    return {
        "days": [d.isoformat() for d in DAYS],
        "electricity": elec,
        "water": [0.3] * 7 + [0.0] * 21,
        "gas": [0.5] * 7 + [0.0] * 21,
        "tenant_entries": [3] * 7 + [0] * 21,
        "strangers": [0] * 28,
    }


def sublet_evidence() -> dict[str, Any]:
    """Four weeks of normal consumption, the registered tenant gone, a recurring stranger."""
    return {
        "days": [d.isoformat() for d in DAYS],
        "electricity": [5.5] * 28,
        "water": [0.25] * 28,
        "gas": [0.4] * 28,
        "tenant_entries": [2] * 6 + [0] * 22,
        "strangers": [0] * 6 + [2] * 22,
    }


def insert_unit(conn: psycopg.Connection[Any], unit_id: str, estate_id: str) -> None:
    """A registered unit."""
    conn.execute(
        "INSERT INTO units (unit_id, estate_id, building, floor, area_m2, household_size, lease_start)"
        " VALUES (%s, %s, '1', 3, 45.0, 2, '2024-05-01')",
        (unit_id, estate_id),
    )


def insert_alert(
    conn: psycopg.Connection[Any], *, unit_id: str, estate_id: str, kind: str, score: float,
    reasons: list[dict[str, Any]], evidence: dict[str, Any], status: str = "open",
) -> int:
    """An alert row as the detectors write it; returns its id."""
    row = conn.execute(
        "INSERT INTO alerts (unit_id, estate_id, kind, status, score, first_flagged, last_flagged, reasons,"
        " evidence, rule_version, window_start, window_end) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " 'rules-1', %s, %s) RETURNING id",
        (unit_id, estate_id, kind, status, score, DAYS[20], DAYS[-1], Jsonb(reasons), Jsonb(evidence),
         DAYS[7], DAYS[-1]),  # a window of 21 days, the week before it on the charts
    ).fetchone()
    assert row is not None
    return int(row[0])


def insert_case(
    conn: psycopg.Connection[Any], *, alert_id: int, unit_id: str, estate_id: str, kind: str, filed: bool,
) -> int:
    """A case for an alert, with one delivery in the tenancy outbox; returns its id."""
    opened = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)
    row = conn.execute(
        "INSERT INTO cases (unit_id, estate_id, kind, alert_id, status, opened_at, evidence, evidence_sha256,"
        " filed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (unit_id, estate_id, kind, alert_id, "filed" if filed else "open", opened,
         Jsonb({"alert_id": alert_id}), "ab" * 32, opened + timedelta(minutes=1) if filed else None),
    ).fetchone()
    assert row is not None
    case_id = int(row[0])
    conn.execute(
        "INSERT INTO tenancy_outbox (case_id, idempotency_key, payload, state, attempts, next_attempt_at,"
        " last_error, sent_at, response_status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (case_id, f"anju-case-{case_id}", Jsonb({"case_ref": f"ANJU-{case_id}"}),
         "sent" if filed else "pending", 1 if filed else 2, opened,
         None if filed else "tenancy system answered 503",
         opened + timedelta(minutes=1) if filed else None, 201 if filed else 503),
    )
    return case_id


def seed(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Units, readings, events, a dead letter, an agent, three alerts and two cases; returns their ids."""
    for unit_id, estate in (("E01-1-0101", "E01"), ("E01-1-0302", "E01"), ("E02-2-0501", "E02")):
        insert_unit(conn, unit_id, estate)
    ts0 = datetime(2026, 3, 1, tzinfo=UTC)
    for h in range(5):
        conn.execute(
            "INSERT INTO meter_readings (ts, unit_id, meter, value, quality, device, agent_id, seq)"
            " VALUES (%s, 'E01-1-0101', 'electricity', %s, 'good', 'm1', 'E01-gw1', %s)",
            (ts0 + timedelta(hours=h), 100.0 + h, h),
        )
    conn.execute(
        "INSERT INTO access_events (ts, estate_id, device_id, event_id, building, method, person, unit_id,"
        " agent_id, seq) VALUES (%s, 'E01', 'E01-G1', 'E01-G1:1', '1', 'face', 'p-ab12', 'E01-1-0302',"
        " 'E01-gw1', 9)",
        (ts0,),
    )
    conn.execute(
        "INSERT INTO dead_letters (topic, payload, reason) VALUES ('anju/v1/E01/readings', 'x', 'bad json')"
    )
    conn.execute(
        "INSERT INTO agent_status (agent_id, estate_id, state, payload, updated_at) VALUES"
        " ('E01-gw1', 'E01', 'online', %s, now())",
        (Jsonb({"outbox_depth": 0}),),
    )
    vacancy = insert_alert(
        conn, unit_id="E01-1-0101", estate_id="E01", kind="vacancy", score=0.93, evidence=vacancy_evidence(),
        reasons=[
            {"code": "electricity_base_load",
             "text": "median electricity over the last 21 days is at base load",
             "value": 0.3, "baseline": 6.1, "unit": "kWh/day"},
            {"code": "no_tenant_entries", "text": "no registered tenant entry for 21 days",
             "value": 0, "baseline": 3.0, "unit": "entries/day"},
        ],
    )
    sublet = insert_alert(
        conn, unit_id="E01-1-0302", estate_id="E01", kind="sublet", score=0.81, evidence=sublet_evidence(),
        reasons=[
            # A code the pages do not know: shown in the detector's own words, in either language.
            {"code": "tenant_absent", "text": "registered tenants absent while the unit is lived in",
             "value": 0, "baseline": 2.0, "unit": "entries/day"},
            {"code": "recurring_strangers", "text": "a recurring stranger at the building",
             "value": 2.0, "baseline": 0.1, "unit": "strangers/day"},
        ],
    )
    other = insert_alert(
        conn, unit_id="E02-2-0501", estate_id="E02", kind="vacancy", score=0.55, status="closed",
        evidence=vacancy_evidence(), reasons=[{"code": "electricity_base_load",
                                               "text": "electricity at base load",
                                               "value": 0.5, "baseline": 4.0, "unit": "kWh/day"}],
    )
    filed = insert_case(
        conn, alert_id=vacancy, unit_id="E01-1-0101", estate_id="E01", kind="vacancy", filed=True
    )
    pending = insert_case(
        conn, alert_id=sublet, unit_id="E01-1-0302", estate_id="E01", kind="sublet", filed=False
    )
    conn.commit()
    return {
        "vacancy": vacancy, "sublet": sublet, "other": other, "filed_case": filed, "pending_case": pending,
    }


PASSWORD = "correct horse battery"
# name -> (role, estates): an inspector and a supervisor of each estate, an auditor and an admin.
USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "insp1": ("inspector", ("E01",)),
    "insp1b": ("inspector", ("E01",)),
    "insp2": ("inspector", ("E02",)),
    "sup1": ("supervisor", ("E01", "E03")),
    "sup2": ("supervisor", ("E02",)),
    "aud": ("auditor", ()),
    "adm": ("admin", ()),
}


@functools.cache
def password_hash() -> str:
    """One argon2 hash of ``PASSWORD`` for all test users (hashing is slow on purpose)."""
    return hash_password(PASSWORD)


def add_users(conn: psycopg.Connection[Any]) -> None:
    """The test users, all with ``PASSWORD``."""
    for name, (role, estates) in USERS.items():
        add_user(conn, name=name, role=role, password=PASSWORD, estates=estates,
                 password_hash=password_hash())
    conn.commit()


def login(base_url: str, name: str) -> dict[str, str]:
    """Sign in over the API; the bearer header to send."""
    resp = httpx.post(f"{base_url}/api/auth/login", json={"name": name, "password": PASSWORD}, timeout=10)
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


@pytest.fixture(autouse=True)
def audit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test MAC key for the audit chain, from the environment as in production."""
    monkeypatch.setenv("ANJU_AUDIT_KEY", "test-audit-key-" + "k" * 32)


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free port; yield its base URL; stop it on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.02)
        if not server.started:
            raise RuntimeError("uvicorn did not start (see the log above)")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def seeded(database_url: str) -> dict[str, int]:
    """A database with the schema and the seed rows."""
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        ids = seed(conn)
        add_users(conn)
        return ids


@pytest.fixture
def client(database_url: str, seeded: dict[str, int]) -> Iterator[httpx.Client]:
    """An HTTP client of the app signed in as an admin, served by uvicorn over the seeded database."""
    with (serve(create_app(database_url=database_url)) as url,
          httpx.Client(base_url=url, timeout=10, headers=login(url, "adm")) as c):
        yield c


def test_health_reports_database_and_storage(client: httpx.Client) -> None:
    body = client.get("/api/health").json()
    assert body["database"] is True
    assert body["status"] == "ok"
    assert body["storage"] == "postgresql monthly partitions" or "hypertables" in body["storage"]
    assert body["server_version"]


def test_database_gone_is_503_not_500(database_url: str, pg_admin_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
    app = create_app(database_url=database_url, pool_timeout_s=0.5)
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/api/health").status_code == 200
        drop_database(pg_admin_url, database_url)
        down = c.get("/api/health")
        assert down.status_code == 503 and down.json()["database"] is False
        assert c.get("/api/alerts").status_code == 503


def test_alerts_listed_by_score(client: httpx.Client, seeded: dict[str, int]) -> None:
    body = client.get("/api/alerts").json()
    assert body["total"] == 3
    assert [a["id"] for a in body["items"]] == [seeded["vacancy"], seeded["sublet"], seeded["other"]]
    top = body["items"][0]
    assert top["kind"] == "vacancy" and top["unit_id"] == "E01-1-0101"
    assert top["reasons"][0]["baseline"] == 6.1
    assert top["case_id"] == seeded["filed_case"] and top["case_status"] == "filed"
    assert "evidence" not in top


def test_alert_filters_and_paging(client: httpx.Client, seeded: dict[str, int]) -> None:
    def ids(**params: str | int) -> list[int]:
        return [a["id"] for a in client.get("/api/alerts", params=params).json()["items"]]

    assert ids(kind="sublet") == [seeded["sublet"]]
    assert ids(estate="E02") == [seeded["other"]]
    assert ids(status="open") == [seeded["vacancy"], seeded["sublet"]]
    assert ids(status="closed", kind="vacancy") == [seeded["other"]]
    assert ids(estate="E99") == []
    page = client.get("/api/alerts", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and [a["id"] for a in page["items"]] == [seeded["sublet"]]
    assert client.get("/api/alerts", params={"limit": 0}).status_code == 422


def test_alert_detail_with_evidence_and_case(client: httpx.Client, seeded: dict[str, int]) -> None:
    body = client.get(f"/api/alerts/{seeded['sublet']}").json()
    assert [r["code"] for r in body["reasons"]] == ["tenant_absent", "recurring_strangers"]
    assert body["evidence"]["days"][0] == "2026-03-01"
    assert body["evidence"]["strangers"][-1] == 2
    case = body["case"]
    assert case["id"] == seeded["pending_case"] and case["status"] == "open"
    assert case["filing"]["state"] == "pending" and case["filing"]["response_status"] == 503

    vacancy = client.get(f"/api/alerts/{seeded['vacancy']}").json()
    assert vacancy["evidence"]["electricity"][12] is None  # a gap stays unknown, not zero

    closed = client.get(f"/api/alerts/{seeded['other']}").json()
    assert closed["case"] is None


def test_missing_things_are_404(client: httpx.Client) -> None:
    assert client.get("/api/alerts/999999").status_code == 404
    assert client.get("/api/cases/999999").status_code == 404
    assert client.get("/api/units/NOPE").status_code == 404
    assert client.get("/alerts/999999").status_code == 404
    assert client.get("/api/alerts/abc").status_code == 422


def test_cases_list_and_detail(client: httpx.Client, seeded: dict[str, int]) -> None:
    body = client.get("/api/cases").json()
    assert body["total"] == 2
    assert {c["id"] for c in body["items"]} == {seeded["filed_case"], seeded["pending_case"]}
    filed = client.get("/api/cases", params={"status": "filed"}).json()["items"]
    assert [c["id"] for c in filed] == [seeded["filed_case"]]
    assert filed[0]["filing"]["state"] == "sent"
    detail = client.get(f"/api/cases/{seeded['filed_case']}").json()
    assert detail["evidence"] == {"alert_id": seeded["vacancy"]}
    assert [f["idempotency_key"] for f in detail["filings"]] == [f"anju-case-{seeded['filed_case']}"]


def test_unit_detail(client: httpx.Client, seeded: dict[str, int]) -> None:
    body = client.get("/api/units/E01-1-0101").json()
    assert body["estate_id"] == "E01" and body["household_size"] == 2
    assert body["faces_enrolled"] is None  # not known: no gate enrolment was imported for it
    assert [a["id"] for a in body["alerts"]] == [seeded["vacancy"]]
    assert [c["id"] for c in body["cases"]] == [seeded["filed_case"]]
    assert body["recent_days"] == []


def test_stats_match_summary_counts(client: httpx.Client, database_url: str) -> None:
    from anju.hub.cases.queries import summary_counts

    body = client.get("/api/stats").json()
    assert body == {
        "units": 3, "readings": 5, "events": 1, "dead_letters": 1,
        "alerts_by_kind": {"vacancy": 2, "sublet": 1}, "alerts_open": 2,
        "cases_open": 2, "cases_filed": 1, "agents": 1,
    }
    with psycopg.connect(database_url) as conn:
        counts = summary_counts(conn)
    assert counts["alerts_vacancy"] == 2 and counts["alerts_sublet"] == 1 and counts["cases_filed"] == 1


def test_stats_on_an_empty_database_name_both_kinds(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        add_users(conn)
    with serve(create_app(database_url=database_url)) as url:
        body = httpx.get(f"{url}/api/stats", timeout=10, headers=login(url, "adm")).json()
    assert body["alerts_by_kind"] == {"vacancy": 0, "sublet": 0}
    assert body["units"] == 0


def test_agents(client: httpx.Client) -> None:
    body = client.get("/api/agents").json()
    assert body == [
        {"agent_id": "E01-gw1", "estate_id": "E01", "state": "online", "payload": {"outbox_depth": 0},
         "updated_at": body[0]["updated_at"]},
    ]


def test_openapi_docs_served(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/alerts", "/api/alerts/{alert_id}", "/api/stats", "/api/health"} <= set(paths)
    assert "/" not in paths


def test_inspector_page_lists_alerts_with_reasons(client: httpx.Client, seeded: dict[str, int]) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    html = resp.text
    assert '<html lang="zh-CN">' in html  # Chinese without any choice made
    assert "E01-1-0101" in html and "E01-1-0302" in html
    assert "E02-2-0501" not in html  # closed alerts are hidden by default
    assert "用电只剩待机水平 <span class=\"cmp\">(0.3 千瓦时/天，此前为 6.4 千瓦时/天)</span>" in html
    assert "registered tenants absent while the unit is lived in" in html  # unknown code: stored words
    base = str(client.base_url).rstrip("/")
    assert f'href="{base}/alerts/{seeded["vacancy"]}"' in html
    assert "本页只显示化名编号和计数" in html
    own = html.replace(base, "").replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in own and "https://" not in own  # nothing fetched from elsewhere
    everything = client.get("/", params={"status": "all", "estate": "E02"}).text
    assert "E02-2-0501" in everything and "E01-1-0101" not in everything


def test_alert_page_draws_charts_with_gaps(client: httpx.Client, seeded: dict[str, int]) -> None:
    html = client.get(f"/alerts/{seeded['vacancy']}").text
    assert html.count("<svg") == 5
    assert 'data-series="electricity" data-missing-days="3"' in html
    assert 'data-series="water" data-missing-days="0"' in html
    assert "2026-03-13: 无数据（未知）" in html and "3 天无数据" in html
    assert f"#{seeded['filed_case']}" in html and "已报送" in html and "HTTP 201" in html
    sublet = client.get(f"/alerts/{seeded['sublet']}").text
    assert "待报送" in sublet and "tenancy system answered 503" in sublet


CJK = re.compile(r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]")


def english_text(html: str) -> str:
    """The page without the one Chinese word an English page has: the switch back to 中文."""
    return html.replace(">中文</a>", "></a>").replace('title="切换到中文"', "")


def test_pages_in_english_with_the_choice_remembered(client: httpx.Client, seeded: dict[str, int]) -> None:
    zh = client.get("/").text
    assert 'class="lang"' in zh and "lang=en" in zh and ">English</a>" in zh
    resp = client.get("/", params={"lang": "en"})
    assert resp.status_code == 200 and resp.cookies.get("anju_lang") == "en"
    html = resp.text
    assert '<html lang="en">' in html and "Alerts, highest risk first" in html
    assert "Electricity at base load <span class=\"cmp\">(0.3 kWh/day vs 6.4 kWh/day before)</span>" in html
    assert "Registered tenants hardly ever entered" in html
    assert "registered tenants absent while the unit is lived in" in html
    assert "vacancy" in html and "case #" in html and "filed" in html
    assert CJK.findall(english_text(html)) == []  # every visible string is English
    assert ">中文</a>" in html and "lang=zh" in html

    # The cookie keeps English on the next pages: the alert page, its charts, its case and trail.
    assert client.cookies.get("anju_lang") == "en"
    page = client.get(f"/alerts/{seeded['vacancy']}").text
    assert '<html lang="en">' in page and CJK.findall(english_text(page)) == []
    assert "Daily evidence" in page and "3 days without data" in page
    assert "2026-03-13: no data (unknown)" in page
    assert 'aria-label="Electricity, daily, kWh/day"' in page
    assert "sent" in page and "Filed to tenancy system" in page
    for path in ("/audit", f"/alerts/{seeded['sublet']}", "/alerts/999999", "/?status=all&sort=oldest"):
        other = client.get(path)
        assert CJK.findall(english_text(other.text)) == [], path
    assert "Alert #999999 does not exist." in client.get("/alerts/999999").text

    # ?lang=zh switches back and is remembered in its turn.
    back = client.get("/", params={"lang": "zh"})
    assert back.cookies.get("anju_lang") == "zh" and '<html lang="zh-CN">' in back.text
    assert "线索（按风险排序）" in back.text and "Alerts, highest risk first" not in back.text
    assert '<html lang="zh-CN">' in client.get("/").text


@pytest.mark.parametrize(
    ("accept", "lang"),
    [("en-US,en;q=0.9", "en"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), ("fr-FR, de;q=0.5", "zh-CN"),
     ("en;q=0.3, zh;q=0.7", "zh-CN"), ("de, en-GB;q=0.8", "en"), ("en;q=0, fr", "zh-CN"), ("", "zh-CN")],
)
def test_language_from_accept_language_without_a_cookie(
    database_url: str, seeded: dict[str, int], accept: str, lang: str
) -> None:
    with serve(create_app(database_url=database_url)) as url, httpx.Client(base_url=url, timeout=10) as http:
        page = http.get("/login", headers={"Accept-Language": accept})
        assert f'<html lang="{lang}">' in page.text
        # An explicit choice beats the browser's.
        chosen = http.get("/login?lang=zh", headers={"Accept-Language": accept})
        assert '<html lang="zh-CN">' in chosen.text


def test_sign_in_page_and_its_error_in_english(database_url: str, seeded: dict[str, int]) -> None:
    with serve(create_app(database_url=database_url)) as url, httpx.Client(base_url=url, timeout=10) as http:
        login_page = http.get("/login", params={"lang": "en"}).text
        assert "<h1>Sign in</h1>" in login_page and CJK.findall(english_text(login_page)) == []
        wrong = http.post("/login", data={"name": "insp1", "password": "nope"},
                          headers={"Origin": url})
        assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
        assert 'href="/login?lang=zh"' in wrong.text  # the switch of a form's answer reloads the form
        # Someone not signed in who asks for English lands on an English sign-in page.
        http.cookies.clear()
        going = http.get("/?lang=en", follow_redirects=True)
        assert str(going.url).endswith("/login") and "<h1>Sign in</h1>" in going.text
        assert "用户名或密码错误" in http.post("/login", data={"name": "insp1", "password": "nope"},
                                          params={"lang": "zh"}, headers={"Origin": url}).text


def test_refusals_on_the_alert_page_in_either_language(database_url: str, seeded: dict[str, int]) -> None:
    case, alert = seeded["pending_case"], seeded["sublet"]  # an open case of E01

    with serve(create_app(database_url=database_url)) as url, httpx.Client(base_url=url, timeout=10) as http:
        insp, sup = login(url, "insp1"), login(url, "sup1")

        def refused(who: dict[str, str], lang: str, **form: str) -> tuple[int, str]:
            http.cookies.set("anju_lang", lang)
            resp = http.post(f"/cases/{case}/action", data={"alert_id": str(alert), **form}, headers=who)
            found = re.search(r'<p class="warn error" role="alert">(.*?)</p>', resp.text)
            assert found is not None, resp.text[:300]
            return resp.status_code, found.group(1)

        assert refused(insp, "zh", action="close") == (403, "不允许：巡查员不能结案。")
        assert refused(insp, "en", action="close") == (
            403, "Not allowed: your role (inspector) may not close a case.")
        assert refused(sup, "zh", action="schedule_visit", visit_on="2026-04-01") == (
            409, "无法执行：案件当前状态为“待分派”，不能预约上门。")
        assert refused(sup, "en", action="schedule_visit", visit_on="2026-04-01") == (
            409, "Cannot do that: the case is open, so it cannot schedule the visit.")
        assert refused(sup, "zh", action="assign", assignee="nobody") == (
            409, "无法执行：nobody 不是小区 E01 的巡查员。")
        assert refused(sup, "en", action="dismiss", reason="other") == (
            409, "Cannot do that: a dismissal for “other” needs a note.")
        assert refused(sup, "zh", action="dismiss", reason="bored") == (
            409, "无法执行：请从列表中选择排除原因。")
        assert refused(sup, "zh", action="fly") == (409, "无法执行：输入有误，请检查后重试。")


def age_alerts(database_url: str, ages: dict[int, int]) -> None:
    """Move alerts' first flagging to so many days before today (the database's today)."""
    with psycopg.connect(database_url) as conn:
        for alert_id, days in ages.items():
            # Its data ends today (the as-of day), as a daily detection run's does.
            conn.execute("UPDATE alerts SET first_flagged = current_date - %s::int, last_flagged ="
                         " greatest(last_flagged, current_date - %s::int), window_end = current_date"
                         " WHERE id = %s", (days, days, alert_id))


def test_alert_queue_filters_by_age_and_sorts(
    client: httpx.Client, database_url: str, seeded: dict[str, int]
) -> None:
    vacancy, sublet, other = seeded["vacancy"], seeded["sublet"], seeded["other"]
    age_alerts(database_url, {vacancy: 40, sublet: 5, other: 100})

    def ids(**params: str | int) -> list[int]:
        body = client.get("/api/alerts", params=params).json()
        assert body["total"] >= len(body["items"])
        return [a["id"] for a in body["items"]]

    assert ids(min_age_days=30) == [vacancy, other]  # older than 30 days, still by risk
    assert ids(max_age_days=10) == [sublet]  # first flagged within the last 10 days
    assert ids(min_age_days=30, max_age_days=60) == [vacancy]
    assert ids(min_age_days=40, max_age_days=40) == [vacancy]  # both ends included
    assert ids(min_age_days=60, max_age_days=30) == []
    assert ids(min_age_days=0) == [vacancy, sublet, other]
    assert ids(sort="oldest") == [other, vacancy, sublet]
    assert ids(sort="newest") == [sublet, vacancy, other]
    assert ids(sort="risk") == ids() == [vacancy, sublet, other]
    assert ids(sort="oldest", status="open") == [vacancy, sublet]
    assert ids(sort="newest", min_age_days=30, estate="E01") == [vacancy]
    page = client.get("/api/alerts", params={"sort": "oldest", "limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and [a["id"] for a in page["items"]] == [vacancy]
    assert client.get("/api/alerts", params={"min_age_days": 30}).json()["total"] == 2
    top = client.get("/api/alerts", params={"sort": "oldest"}).json()["items"][0]
    assert top["age_days"] == 100
    assert client.get(f"/api/alerts/{vacancy}").json()["age_days"] == 40

    # Odd values are refused with 422, never a server error.
    for params in ({"sort": "age"}, {"sort": ""}, {"min_age_days": -1}, {"max_age_days": "abc"},
                   {"min_age_days": 36_501}, {"max_age_days": "1e3"}, {"min_age_days": "9" * 30}):
        assert client.get("/api/alerts", params=params).status_code == 422, params
    schema = client.get("/openapi.json").json()
    names = {p["name"] for p in schema["paths"]["/api/alerts"]["get"]["parameters"]}
    assert {"min_age_days", "max_age_days", "sort"} <= names


def test_alert_list_page_filters_by_age_and_sorts(
    client: httpx.Client, database_url: str, seeded: dict[str, int]
) -> None:
    vacancy, sublet, other = seeded["vacancy"], seeded["sublet"], seeded["other"]
    age_alerts(database_url, {vacancy: 40, sublet: 1, other: 100})

    def rows(**params: str | int) -> list[int]:
        resp = client.get("/", params=params)
        assert resp.status_code == 200
        return [int(i) for i in re.findall(r'data-alert-id="(\d+)"', resp.text)]

    assert rows(status="all", sort="oldest") == [other, vacancy, sublet]
    assert rows(status="all", sort="newest") == [sublet, vacancy, other]
    assert rows(status="all", min_age_days=30) == [vacancy, other]
    assert rows(status="all", max_age_days=30, sort="oldest") == [sublet]
    # A form sends blank fields; nonsense is no limit and an unknown sort the default, not an error.
    assert rows(status="all", min_age_days="", max_age_days="", sort="") == [vacancy, sublet, other]
    assert rows(status="all", min_age_days="abc", sort="sideways") == [vacancy, sublet, other]
    assert rows(status="all", min_age_days="٣") == [vacancy, sublet, other]
    assert rows(status="all", min_age_days="0" * 15 + "1") == [vacancy, sublet, other]
    assert rows(status="all", min_age_days="9" * 16) == []  # clamped to 100 years
    assert client.get("/", params={"min_age_days": "9" * 17}).status_code == 422
    html = client.get("/", params={"status": "all", "min_age_days": 30, "sort": "oldest"}).text
    assert 'name="min_age_days" type="number"' in html and 'value="30"' in html
    assert '<option value="oldest" selected>' in html and "线索（最早的在前）" in html
    assert 'data-age-days="100"' in html and "100 天" in html
    assert re.search(r'<td class="age"[^>]*>1 天</td>', client.get("/", params={"max_age_days": 1}).text)
    english = client.get("/", params={"status": "all", "sort": "newest", "lang": "en"}).text
    assert "Alerts, newest first" in english and "100 days" in english and ">1 day<" in english
    assert "First flagged at least N days ago" in english


def test_static_css_is_local(client: httpx.Client) -> None:
    resp = client.get("/static/style.css")
    assert resp.status_code == 200 and "text/css" in resp.headers["content-type"]


def test_admin_lists_adds_and_rescopes_users_audited(database_url: str, seeded: dict[str, int]) -> None:
    with serve(create_app(database_url=database_url)) as url, httpx.Client(base_url=url, timeout=30) as http:
        admin = login(url, "adm")
        listed = http.get("/api/users", headers=admin).json()
        assert [u["name"] for u in listed] == sorted(USERS)
        assert all("password" not in json_key for u in listed for json_key in u)
        body = {"name": "insp9", "role": "inspector", "password": PASSWORD, "estates": ["E02"]}
        made = http.post("/api/users", json=body, headers=admin)
        assert made.status_code == 201 and made.json()["estates"] == ["E02"]
        assert http.post("/api/users", json=body, headers=admin).status_code == 409
        assert http.post("/api/users", json={**body, "name": "x1", "estates": []}, headers=admin
                         ).status_code == 422
        assert http.post("/api/users", json={**body, "name": "x2", "role": "boss"}, headers=admin
                         ).status_code == 422

        # The new inspector sees E02 only; moved to E01, the next request already sees E01's alerts.
        insp9 = login(url, "insp9")
        assert {a["estate_id"] for a in http.get("/api/alerts", headers=insp9).json()["items"]} == {"E02"}
        moved = http.put("/api/users/insp9/estates", json={"estates": ["E01"]}, headers=admin)
        assert moved.status_code == 200 and moved.json()["estates"] == ["E01"]
        assert {a["estate_id"] for a in http.get("/api/alerts", headers=insp9).json()["items"]} == {"E01"}
        assert http.put("/api/users/insp9/estates", json={"estates": []}, headers=admin).status_code == 422
        assert http.put("/api/users/nobody/estates", json={"estates": ["E01"]}, headers=admin
                        ).status_code == 404
        assert http.get("/api/users", headers=insp9).status_code == 403

        trail = http.get("/api/audit", params={"object_type": "user", "object_id": "insp9"}, headers=admin)
        actions = [(r["actor"], r["action"], r["detail"]) for r in reversed(trail.json()["items"])]
        assert actions[0][:2] == ("user:adm", "user.added")
        assert ("user:adm", "user.estates", {"from": ["E02"], "to": ["E01"]}) in actions
        assert http.get("/api/audit/verify", headers=admin).json()["ok"] is True


def test_nul_byte_in_a_text_parameter_is_422_not_500(client: httpx.Client) -> None:
    # Found by schemathesis: PostgreSQL refuses NUL in text, which was a server error.
    assert client.get("/api/audit", params={"object_type": "a\x00b"}).status_code == 422
    assert client.get("/api/alerts", params={"estate": "E\x0001"}).status_code == 422
    assert client.get("/api/alerts").status_code == 200  # the pooled connection is still good
