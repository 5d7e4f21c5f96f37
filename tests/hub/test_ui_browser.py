"""The inspector page in a real headless Chromium: alerts listed with reasons, click through to a chart."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from anju.hub.api.app import create_app
from tests.hub.test_api import PASSWORD, add_users, create_schema, seed, serve
from tests.hub.test_cases import new_case

DOCS = Path(__file__).resolve().parents[2] / "docs"

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)"
    ),
]


def test_inspector_clicks_from_list_to_alert_chart(database_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        ids = seed(conn)
        add_users(conn)
    with serve(create_app(database_url=database_url)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            failed: list[str] = []
            page.on("requestfailed", lambda req: failed.append(req.url))
            sign_in(page, url, "insp1")

            rows = page.locator("tr.alert")
            assert rows.count() == 2
            vacancy = page.locator(f'tr[data-alert-id="{ids["vacancy"]}"]')
            sublet = page.locator(f'tr[data-alert-id="{ids["sublet"]}"]')
            assert "空置" in vacancy.inner_text()
            assert "E01-1-0101" in vacancy.inner_text()
            assert "用电只剩待机水平 (0.3 千瓦时/天，此前为 6.4 千瓦时/天)" in vacancy.inner_text()
            assert "转租" in sublet.inner_text()
            # Compact rows: the top reason, the others behind "n more" until asked for.
            assert "registered tenants absent while the unit is lived in" in sublet.inner_text()
            assert "登记住户消失后，楼里反复出现陌生面孔" not in sublet.inner_text()
            sublet.locator("details.more summary").click()
            assert "登记住户消失后，楼里反复出现陌生面孔" in sublet.inner_text()
            assert vacancy.bounding_box()["height"] < 60  # one line, not the 125 px rows of before
            assert rows.first.get_attribute("data-alert-id") == str(ids["vacancy"])  # highest score first
            assert "本页只显示化名编号和计数" in page.locator("footer").inner_text()
            page.screenshot(path=str(tmp_path / "alerts.png"), full_page=True)

            vacancy.get_by_role("link", name="详情").click()
            page.wait_for_url(f"**/alerts/{ids['vacancy']}")
            assert "空置: E01-1-0101" in page.locator("h1").inner_text()
            electricity = page.locator('svg[data-series="electricity"]')
            electricity.wait_for()
            assert electricity.get_attribute("data-missing-days") == "3"
            assert electricity.locator("rect.bar").count() == 25
            assert electricity.locator("rect.gap").count() == 3
            assert page.locator("svg.chart-svg").count() == 5
            assert "已报送" in page.locator("dd.filing").inner_text()
            shot = tmp_path / "alert.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            assert failed == []  # the stylesheet and everything else came from the hub itself
        finally:
            browser.close()


def sign_in(page: Any, url: str, name: str) -> None:
    """Fill in the sign-in form and land on the alert list."""
    page.goto(f"{url}/")
    page.wait_for_url("**/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def sign_out(page: Any) -> None:
    """Press the sign-out button."""
    page.click("form.logout button")
    page.wait_for_url("**/login")


def test_triage_confirm_dismiss_audit_and_refusal(database_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        seed(conn)
        add_users(conn)
        conn.execute("INSERT INTO units (unit_id, estate_id) VALUES ('E01-3-0101', 'E01'),"
                     " ('E01-3-0102', 'E01'), ('E02-3-0101', 'E02')")
        confirm_alert, confirm_case = new_case(conn, "E01-3-0101")
        dismiss_alert, dismiss_case = new_case(conn, "E01-3-0102", kind="sublet")
        other_alert, other_case = new_case(conn, "E02-3-0101")
    with serve(create_app(database_url=database_url)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
            page = context.new_page()
            page.goto(f"{url}/login")
            page.fill("input[name=name]", "insp1")
            page.fill("input[name=password]", "wrong password")
            page.click("button[type=submit]")
            assert "用户名或密码错误" in page.locator("p.error").inner_text()

            # The supervisor triages: assigns the alert's case to an inspector.
            sign_in(page, url, "sup1")
            cookie = next(c for c in context.cookies() if c["name"] == "anju_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            # From the queue, a batch: tick the sublet lead and assign it.
            page.check(f'input[name="case_{dismiss_case}"]')
            page.select_option("form.batch select[name=assignee]", "insp1")
            page.click("form.batch button")
            page.wait_for_url("**/?*assigned=1*")
            assert page.locator("p.batch-result").inner_text() == "已分派 1 件，未能分派 0 件。"
            row = page.locator(f'tr[data-case-id="{dismiss_case}"]')
            assert row.locator("td.assignee").inner_text() == "insp1"
            page.goto(f"{url}/alerts/{confirm_alert}")
            page.select_option("form.assign select[name=assignee]", "insp1")
            page.click("form.assign button")
            page.wait_for_url(f"**/alerts/{confirm_alert}")
            assert "已分派" in page.locator("dd.case-status").inner_text()
            assert page.locator("dd.assignee").inner_text() == "insp1"
            sign_out(page)

            # The inspector schedules the visit, then confirms.
            sign_in(page, url, "insp1")
            page.goto(f"{url}/alerts/{confirm_alert}")
            page.fill("form.schedule input[name=visit_on]", "2026-04-02")
            page.click("form.schedule button")
            page.wait_for_url(f"**/alerts/{confirm_alert}")
            assert "已约上门" in page.locator("dd.case-status").inner_text()
            page.fill("form.confirm input[name=note]", "two people not on the lease live there")
            page.click("form.confirm summary")  # the second step: the real button shows
            page.click("form.confirm button.confirm-yes")
            page.wait_for_url(f"**/alerts/{confirm_alert}")
            assert "已核实" in page.locator("dd.case-status").inner_text()
            assert "待报送" in page.locator("dd.filing").inner_text()
            # The page says what comes next and why the buttons are gone.
            # Filing never holds the case: a supervisor closes it (办结) while the filing goes on.
            assert page.locator("p.next-step").get_attribute("data-next-step") == "close_confirmed"
            assert "由主管办结" in page.locator("p.next-step").inner_text()
            missing = page.locator("details.missing-actions")
            assert missing.get_attribute("open") is not None  # no button left: the reasons show
            assert missing.locator('li[data-action="confirm"]').inner_text() == "确认属实: 案件已有核实结论"
            assert missing.locator('li[data-action="close"]').get_attribute("data-why") == "role"
            trail = page.locator("ol.trail").inner_text()
            assert "user:sup1" in trail and "user:insp1" in trail
            confirmed = page.locator('ol.trail li[data-action="case.confirm"]')
            assert confirmed.count() == 1 and "确认属实" in confirmed.inner_text()
            # ANJU_SAVE_SCREENSHOTS=1 refreshes the committed docs/alert-page.png; otherwise a temp copy,
            # so that running the tests does not dirty the working tree.
            shots = DOCS if os.environ.get("ANJU_SAVE_SCREENSHOTS") else tmp_path
            page.screenshot(path=str(shots / "alert-page.png"), full_page=True)
            assert (shots / "alert-page.png").stat().st_size > 10_000

            # ... and dismisses another lead with a reason from the list.
            page.goto(f"{url}/alerts/{dismiss_alert}")
            page.select_option("form.dismiss select[name=reason]", "night_shift")
            page.fill("form.dismiss input[name=note]", "works nights at the hospital")
            page.click("form.dismiss summary")
            page.click("form.dismiss button.confirm-yes")
            page.wait_for_url(f"**/alerts/{dismiss_alert}")
            assert "已排除" in page.locator("dd.case-status").inner_text()
            assert page.locator('ol.trail span.reason[data-reason="night_shift"]').inner_text() == "夜班作息"
            assert page.locator("p.next-step").get_attribute("data-next-step") == "close_dismissed"

            # Another estate's alert does not exist for this inspector; the audit page is not theirs.
            refused = page.goto(f"{url}/alerts/{other_alert}")
            assert refused is not None and refused.status == 404
            api = page.request.get(f"{url}/api/cases/{other_case}")
            assert api.status == 404
            audit = page.goto(f"{url}/audit")
            assert audit is not None and audit.status == 403
            sign_out(page)

            # The auditor reads the log: the inspector's actions under their name.
            sign_in(page, url, "aud")
            assert page.locator("form.action").count() == 0
            page.goto(f"{url}/alerts/{confirm_alert}")
            assert page.locator("section.actions").count() == 0  # read-only
            page.goto(f"{url}/audit?object_type=case&object_id={confirm_case}")
            rows = page.locator("tr.audit-row")
            assert rows.count() >= 4
            seen = {(r.locator(".actor").inner_text(), r.get_attribute("data-action")) for r in rows.all()}
            assert "确认属实" in page.locator('tr[data-action="case.confirm"] td.action').first.inner_text()
            assert ("user:insp1", "case.confirm") in seen and ("user:sup1", "case.assign") in seen
            context.close()
        finally:
            browser.close()


def test_inspector_switches_to_english_and_filters_by_age(database_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        ids = seed(conn)
        add_users(conn)
        for alert_id, days in ((ids["vacancy"], 40), (ids["sublet"], 3)):
            conn.execute("UPDATE alerts SET first_flagged = current_date - %s::int, last_flagged ="
                         " greatest(last_flagged, current_date - %s::int), window_end = current_date"
                         " WHERE id = %s", (days, days, alert_id))
        conn.commit()
    with serve(create_app(database_url=database_url)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            page = context.new_page()
            sign_in(page, url, "insp1")
            assert page.locator("html").get_attribute("lang") == "zh-CN"
            assert page.locator("h1").inner_text() == "线索（按风险排序）"

            # The switch in the header: the same page in English, and it stays English.
            page.click("header a.lang")
            page.wait_for_url("**/?lang=en")
            assert page.locator("html").get_attribute("lang") == "en"
            assert page.locator("h1").inner_text() == "Alerts, highest risk first"
            vacancy = page.locator(f'tr[data-alert-id="{ids["vacancy"]}"]')
            assert "vacancy" in vacancy.inner_text() and "40 days" in vacancy.inner_text()
            assert "Electricity at base load (0.3 kWh/day vs 6.4 kWh/day before)" in vacancy.inner_text()
            assert page.locator("header a.lang").inner_text() == "中文"

            # Only leads first flagged 30 days ago or more, oldest first.
            page.fill("input[name=min_age_days]", "30")
            page.select_option("select[name=sort]", "oldest")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**/?*min_age_days=30*")
            assert page.locator("h1").inner_text() == "Alerts, oldest first"
            rows = page.locator("tr.alert")
            assert [r.get_attribute("data-alert-id") for r in rows.all()] == [str(ids["vacancy"])]
            assert page.locator("p.total").inner_text() == "1 alert"
            assert page.locator("input[name=min_age_days]").input_value() == "30"
            # ... and those of the last week.
            page.fill("input[name=min_age_days]", "")
            page.fill("input[name=max_age_days]", "7")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**/?*max_age_days=7*")
            assert [r.get_attribute("data-alert-id") for r in rows.all()] == [str(ids["sublet"])]
            assert "3 days" in rows.first.inner_text()
            page.screenshot(path=str(tmp_path / "alerts-en.png"), full_page=True)

            # The alert page is English too (the cookie remembers the choice): reasons, case, charts.
            rows.first.get_by_role("link", name="details").click()
            page.wait_for_url(f"**/alerts/{ids['sublet']}")
            assert page.locator("html").get_attribute("lang") == "en"
            assert page.locator("h1").inner_text() == "sublet: E01-1-0302"
            assert "Daily evidence" in page.locator("main").inner_text()
            assert "Strangers at the building" in page.locator("#chart-strangers figcaption").inner_text()
            assert "pending" in page.locator("dd.filing").inner_text()
            assert "Faces never leave the estate" in page.locator("footer").inner_text()
            page.screenshot(path=str(tmp_path / "alert-en.png"), full_page=True)

            # And back to Chinese.
            page.click("header a.lang")
            page.wait_for_url(f"**/alerts/{ids['sublet']}?lang=zh")
            assert page.locator("html").get_attribute("lang") == "zh-CN"
            assert page.locator("h1").inner_text() == "转租: E01-1-0302"
            context.close()
        finally:
            browser.close()
