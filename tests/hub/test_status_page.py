"""The operator's status page (issue 17): the figures of ``anju status`` on a page and as JSON, for admins
only, matching the database the test builds (agents, dead letters per estate, filing queue, detection,
retention, disk), and rendered in a real headless Chromium."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from anju.hub.api.app import create_app
from anju.hub.api.i18n import LANGUAGES
from anju.hub.api.i18n_status import STATUS_MESSAGES
from anju.hub.api.status_page import ago
from anju.hub.status import AGENT_ISSUES_EN, operator_status
from anju.hub.storage import ensure_months
from anju.hub.storage.retention import apply_retention
from tests.hub.test_api import (  # noqa: F401  (audit_key: the audit chain's key, autouse)
    PASSWORD,
    add_users,
    audit_key,
    create_schema,
    insert_alert,
    insert_case,
    login,
    seed,
    serve,
    vacancy_evidence,
)
from tests.hub.test_ui_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration

RUN_AT = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)  # the "last detection run" the alerts are dated to
OLD_MONTH = date(2024, 1, 1)  # a month far past the retention horizon, dropped by the retention run


def build_state(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The seed (one agent, one dead letter without an estate, a sent and a retrying filing, two open
    alerts and a closed one), plus: agents silent, backed up and offline; two dead letters in E01 and one
    in E02; a dead filing; alerts dated to one detection run; daily features; a retention run."""
    create_schema(conn)
    ids = seed(conn)
    add_users(conn)
    agents = [("E02-gw1", "E02", "online", {"outbox_depth": 50_000, "devices": [{"device": "m9",
                                                                                "available": False}]},
               "now() - interval '20 minutes'"),
              ("E03-gw1", "E03", "offline", {}, "now() - interval '2 days'")]  # fmt: skip
    for agent, estate, state, payload, when in agents:
        conn.execute(f"INSERT INTO agent_status (agent_id, estate_id, state, payload, updated_at)"
                     f" VALUES (%s, %s, %s, %s, {when})", (agent, estate, state, Jsonb(payload)))  # fmt: skip
    letters = [("E01", "bad_payload", "payload is not JSON", "now() - interval '3 days'"),
               ("E01", "unknown_unit", "unit E01-9-9999 is not registered", "now() - interval '1 hour'"),
               ("E02", "agent_estate", "agent E01-gw1 is not of estate E02", "now() - interval '2 hours'")]
    for estate, code, reason, when in letters:
        conn.execute(f"INSERT INTO dead_letters (received_at, topic, payload, reason, code, estate_id)"
                     f" VALUES ({when}, %s, 'x', %s, %s, %s)",
                     (f"anju/v1/{estate}/readings", reason, code, estate))  # fmt: skip
    # A third open alert, with a filing the tenancy system refused for good.
    third = insert_alert(conn, unit_id="E02-2-0501", estate_id="E02", kind="sublet", score=0.6, reasons=[],
                         evidence=vacancy_evidence())
    dead = insert_case(conn, alert_id=third, unit_id="E02-2-0501", estate_id="E02", kind="sublet",
                       filed=False)
    conn.execute("UPDATE tenancy_outbox SET state = 'dead', attempts = 8,"
                 " last_error = 'tenancy system answered 422: unit unknown' WHERE case_id = %s", (dead,))
    # The last detection run refreshed the vacancy and sublet alerts and opened the sublet one; the third
    # was written by an earlier run.
    conn.execute("UPDATE alerts SET updated_at = %s WHERE id = ANY(%s)",
                 (RUN_AT, [ids["vacancy"], ids["sublet"]]))
    conn.execute("UPDATE alerts SET created_at = %s WHERE id = %s", (RUN_AT, ids["sublet"]))
    conn.execute("UPDATE alerts SET created_at = %s - interval '1 day', updated_at = %s - interval '1 day'"
                 " WHERE id = %s", (RUN_AT, RUN_AT, third))
    features = (("E01-1-0101", "2026-11-27"), ("E01-1-0101", "2026-11-28"), ("E01-1-0302", "2026-11-28"),
                ("E02-2-0501", "2026-11-28"))
    for unit, day in features:
        conn.execute("INSERT INTO unit_daily (unit_id, day, elec_kwh) VALUES (%s, %s, 1.0)", (unit, day))
    conn.commit()
    ensure_months(conn, [OLD_MONTH])
    conn.commit()
    run = apply_retention(conn, horizon_days=365)
    assert run is not None
    return {**ids, "third": third, "dead_case": dead, "retention": run}


@pytest.fixture
def hub(database_url: str) -> Any:
    with psycopg.connect(database_url) as conn:
        state = build_state(conn)
    with serve(create_app(database_url=database_url)) as url:
        yield url, state


def cells(html: str, row_class: str, key: str, value: str) -> dict[str, str]:
    """The cells of the row ``<tr class="{row_class}..." data-{key}="{value}">`` by their class."""
    row = re.search(rf'<tr class="{row_class}(?: [^"]*)?" data-{key}="{re.escape(value)}"[^>]*>(.*?)</tr>',
                    html, re.S)
    assert row is not None, f"no {row_class} row {value}"
    return dict(re.findall(r'<td class="([\w-]+)(?: [^"]*)?">(.*?)</td>', row.group(1), re.S))


def fact(html: str, section: str, name: str) -> str:
    """The text of ``<dd class="{name}">`` in the ``status-{section}`` section."""
    part = re.search(rf'<section class="status-{section}">(.*?)</section>', html, re.S)
    assert part is not None
    found = re.search(rf'<dd class="{name}(?: [^"]*)?">(.*?)</dd>', part.group(1), re.S)
    assert found is not None, f"no {name} in {section}"
    return found.group(1)


def test_page_and_json_show_the_database_as_built(hub: tuple[str, dict[str, Any]], database_url: str) -> None:
    url, state = hub
    admin = login(url, "adm")
    with httpx.Client(base_url=url, timeout=10, headers=admin) as http:
        page = http.get("/status")
        assert page.status_code == 200, page.text
        html = page.text
        doc = http.get("/api/status").json()
    # Agents: three, two online, two needing a look; the words come from the issue codes.
    assert re.search(r'data-online="2" data-total="3" data-look="2"', html)
    assert cells(html, "agent", "agent", "E01-gw1")["issues"] == "正常"
    backed_up = cells(html, "agent", "agent", "E02-gw1")
    assert backed_up["issues"] == "20 分钟没有上报状态；50000 条记录等待上传；1 台设备不可用"
    assert backed_up["ago"] == "20 分钟" and backed_up["outbox"] == "50000" and backed_up["down"] == "1"
    offline = cells(html, "agent", "agent", "E03-gw1")
    assert offline["state"] == "离线" and offline["ago"] == "2 天"
    # Dead letters: two in E01 (the latest an unknown unit), one in E02, and the seed's one without an estate.
    e01 = cells(html, "estate", "estate", "E01")
    assert (e01["total"], e01["last-day"], e01["code"]) == ("2", "1", "unknown_unit")
    assert e01["reason"] == "unit E01-9-9999 is not registered"
    e02 = cells(html, "estate", "estate", "E02")
    assert (e02["total"], e02["code"]) == ("1", "agent_estate")
    assert cells(html, "estate", "estate", "-")["total"] == "1"
    # The filing queue: the seed's sent and retrying filings, and the dead one.
    assert [fact(html, "filings", k) for k in ("pending", "retrying", "dead", "sent")] == ["1", "1", "1", "1"]
    assert fact(html, "filings", "error") == "tenancy system answered 422: unit unknown"
    assert "anju filings requeue" in html
    # Detection: the run at RUN_AT wrote two alerts, one of them new; three are open; features to 11-28.
    assert fact(html, "detection", "at") == "2026-11-29 10:00"  # Beijing time
    assert [fact(html, "detection", k) for k in ("alerts", "opened", "open", "day", "units")] == [
        "2", "1", "3", "2026-11-28", "3"]
    # Retention: the pipeline's audited run dropped the old month's partitions.
    run = cells(html, "run", "source", "audit")
    assert set(run["dropped"].split(", ")) == {"meter_readings_p2024_01", "access_events_p2024_01"}
    assert set(state["retention"].dropped) == set(run["dropped"].split(", "))
    assert run["horizon"] == "365 days" and run["result"] == "正常"
    # Disk use: each listed table's bytes as the database counts them.
    with psycopg.connect(database_url) as conn:
        sizes = {t.table: t.bytes for t in operator_status(conn).tables}
        audit_seq = conn.execute("SELECT ts FROM audit_log WHERE action = 'retention'").fetchone()
    listed = dict(re.findall(r'data-table="(\w+)" data-bytes="(\d+)"', html))
    assert listed and set(listed) <= set(sizes) and "meter_readings" in listed
    # The JSON says the same as the page.
    assert [a["issues"] for a in doc["agents"]] == [[], [["silent", 20], ["backlog", 50000],
                                                         ["devices_down", 1]], [["offline", 0]]]
    assert {e["estate_id"]: e["total"] for e in doc["dead_letter_estates"]} == {"-": 1, "E01": 2, "E02": 1}
    assert doc["filings"] == {"dead": 1, "pending": 1, "sent": 1} and doc["filings_retrying"] == 1
    assert doc["detection"] == {"at": "2026-11-29T02:00:00Z", "alerts": 2, "opened": 1, "open_alerts": 3,
                                "feature_day": "2026-11-28", "units": 3}
    assert audit_seq is not None and datetime.fromisoformat(doc["retention"][0]["at"]) == audit_seq[0]
    assert {t["table"] for t in doc["tables"]} == set(listed)


def test_anju_status_prints_the_same_figures(
    hub: tuple[str, dict[str, Any]], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from anju.cli import main

    assert main(["status", "--database-url", database_url]) == 1  # two agents need a look
    out = capsys.readouterr().out
    assert "agents: 2 of 3 online, 2 need a look" in out
    assert "E01      latest: unknown_unit: unit E01-9-9999 is not registered" in out
    assert "filing queue: 1 pending (1 retrying)" in out and "1 dead" in out
    assert "last error: tenancy system answered 422: unit unknown" in out
    assert "last run: 2026-11-29 02:00, 2 units flagged (1 new alerts); 3 open; 3 units with features on" \
           " 2026-11-28" in out
    assert re.search(r"retention \(audit, meter_readings,access_events\): last \S+ \S+ ok, horizon 365 days,"
                     r" dropped \w+_p2024_01, \w+_p2024_01", out)


def test_english_page_words_the_same_figures(hub: tuple[str, dict[str, Any]]) -> None:
    url, _ = hub
    with httpx.Client(base_url=url, timeout=10, headers=login(url, "adm")) as http:
        html = http.get("/status", params={"lang": "en"}).text
    assert "2 of 3 online, 2 need a look" in html
    issues = cells(html, "agent", "agent", "E02-gw1")["issues"]
    assert issues == "no status for 20 min; 50000 records waiting; 1 devices unavailable"
    assert "Once the cause is fixed, put dead filings back with anju filings requeue." in html
    assert '<a class="status" href="/status">Status</a>' in html


def test_only_operators_see_the_status(hub: tuple[str, dict[str, Any]]) -> None:
    url, _ = hub
    with httpx.Client(base_url=url, timeout=10) as http:
        for name in ("insp1", "sup1", "aud"):  # inspectors, supervisors and auditors are not operators
            who = login(url, name)
            page = http.get("/status", headers=who)
            assert page.status_code == 403 and "您的角色不能查看运行状态页" in page.text
            assert http.get("/api/status", headers=who).status_code == 403
            assert 'href="/status"' not in http.get("/", headers=who).text
        assert http.get("/api/status").status_code == 401
        page = http.get("/status", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"


def test_every_status_message_has_both_languages_and_durations_read_right() -> None:
    assert all(len(texts) == len(LANGUAGES) and all(texts) for texts in STATUS_MESSAGES.values())
    assert {f"status.issue.{code}" for code in AGENT_ISSUES_EN} <= set(STATUS_MESSAGES)
    # Every text the template asks for exists (an unknown key would show as itself on the page).
    template = (Path(__file__).resolve().parents[2] / "hub" / "api" / "templates" / "status.html").read_text()
    keys = {k for k in re.findall(r'\bt\("([\w.]+)"', template) if not k.endswith(".")}
    keys |= {f"status.state.{s}" for s in ("online", "offline")} | {f"status.source.{s}" for s in
                                                                    ("audit", "timescaledb")}
    assert len(keys) > 40 and keys - set(STATUS_MESSAGES) == set()
    assert [ago(n, "en") for n in (0, 59, 60, 3599, 3600, 86400 * 3 + 5)] == [
        "0 s", "59 s", "1 min", "59 min", "1 h", "3 d"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_the_page_renders_in_a_browser(hub: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, _ = hub
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            failed: list[str] = []
            page.on("requestfailed", lambda req: failed.append(req.url))
            page.goto(f"{url}/login")
            page.fill("input[name=name]", "adm")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/")
            page.click("header a.status")
            page.wait_for_url(f"{url}/status")
            assert page.locator("h1").inner_text().startswith("运行状态")
            assert [h.inner_text() for h in page.locator("main h2").all()] == [
                "网关", "死信（无法入库的消息），按小区", "报送队列（租赁系统）", "检测", "数据保留",
                "磁盘占用（最大的表，含索引和分区）"]
            assert page.locator("tr.agent").count() == 3 and page.locator("tr.agent.look").count() == 2
            assert page.locator('tr.estate[data-estate="E01"] td.total').inner_text() == "2"
            assert page.locator("section.status-filings dd.dead").inner_text() == "1"
            assert page.locator("tr.table meter").count() == page.locator("tr.table").count() > 0
            # Nothing wider than the window, on a desktop and on a phone.
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 900})
                assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.set_viewport_size({"width": 1280, "height": 900})
            page.screenshot(path=str(tmp_path / "status.png"), full_page=True)
            page.click("header a.lang")
            page.wait_for_url("**/status?lang=en")
            assert page.locator("h2").first.inner_text() == "Gateways (edge agents)"
            assert failed == []
        finally:
            browser.close()


@pytest.mark.parametrize("storage_backend", ["timescaledb"])
def test_on_timescaledb_the_retention_jobs_are_shown(database_url_each_backend: str) -> None:
    """TimescaleDB's own jobs drop the chunks there (the pipeline's run does nothing): the page lists them.
    Their run times come from the job scheduler's statistics; the tests' server runs no scheduler (and
    ``run_job`` records none), so here each job shows as scheduled and not run yet."""
    from anju.hub.storage import TimescalePolicy, ensure_schema

    with psycopg.connect(database_url_each_backend, autocommit=True) as conn:
        ensure_schema(conn, policy=TimescalePolicy(retention_days=60))
        assert apply_retention(conn, horizon_days=60) is None
        shown = operator_status(conn).retention
    assert [(r.source, r.tables, r.at, r.status, r.horizon) for r in shown] == [
        ("timescaledb", "access_events", None, "scheduled", "60 days"),
        ("timescaledb", "meter_readings", None, "scheduled", "60 days"),
    ]
