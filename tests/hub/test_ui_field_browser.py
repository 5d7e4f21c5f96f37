"""The inspector's day in a real headless Chromium (issue 14): from sign-in to printed visit sheets for the
ten oldest cases in a few clicks, every page without horizontal overflow on a 390 px (and a 360 px)
phone, touch targets of 44 px, chart labels legible, and screenshots of the queue, case, supervisor page
and 走访单."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from anju.hub.api.app import create_app
from tests.hub.test_api import DAYS, PASSWORD, add_users, create_schema, insert_unit, seed, serve
from tests.hub.test_cases import new_case
from tests.hub.test_ui_browser import CHROMIUM, CHROMIUM_ARGS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screens"
# What a vacancy alert says (the detector's words are the fallback; the page words them from the codes).
VACANCY_REASONS = [
    {"code": "electricity_base_load", "text": "electricity at its floor", "value": 0.1, "baseline": 2.0,
     "unit": "kWh/day"},
    {"code": "no_tenant_entries", "text": "no tenant entries", "value": 0, "baseline": 6, "unit": "days"},
    {"code": "idle_streak", "text": "idle", "value": 19, "baseline": 180, "unit": "days"},
    {"code": "drop_by_visits", "text": "short visits", "value": 1, "unit": "days"},
]
# Playwright's ViewportSize (a TypedDict) without importing Playwright where Chromium is missing.
PHONE: Any = {"width": 390, "height": 844}
SMALL_PHONE: Any = {"width": 360, "height": 740}
DESKTOP: Any = {"width": 1280, "height": 900}

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None,
                       reason="chromium is not installed (Debian: apt-get install chromium)"),
]


@pytest.fixture
def hub(database_url: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The seed, and twelve cases of insp1 in E01 first flagged 12 to 23 days ago (a street address each)."""
    with psycopg.connect(database_url) as conn:
        create_schema(conn)
        ids: dict[str, Any] = dict(seed(conn))
        add_users(conn)
        units = [f"E01-7-{n:04d}" for n in range(1, 13)]
        for unit in units:
            insert_unit(conn, unit, "E01")
        conn.execute("UPDATE units SET address = '和平路 ' || right(unit_id, 2) || ' 号 3 单元 '"
                     " || right(unit_id, 4) WHERE unit_id LIKE 'E01-7-%'")
        conn.commit()
        cases = [new_case(conn, unit) for unit in units]
        conn.execute("UPDATE alerts SET reasons = %s, window_start = %s WHERE unit_id LIKE 'E01-7-%%'",
                     (Jsonb(VACANCY_REASONS), DAYS[7]))
        for n, (alert, _) in enumerate(cases):
            conn.execute("UPDATE alerts SET first_flagged = current_date - %s, window_end = current_date"
                         " WHERE id = %s", (11 + n, alert))
        conn.commit()
    ids["cases"] = cases
    with serve(create_app(database_url=database_url)) as url:
        sup = httpx.post(f"{url}/api/auth/login", json={"name": "sup1", "password": PASSWORD}).json()["token"]
        for _alert, case in cases:
            r = httpx.post(f"{url}/api/cases/{case}/assign", json={"assignee": "insp1"},
                           headers={"Authorization": f"Bearer {sup}"})
            assert r.status_code == 200, r.text
        yield url, ids


class Clicks:
    """A page whose clicks are counted (typing is not a click; following a link or a button is)."""

    def __init__(self, page: Any) -> None:
        self.page, self.n = page, 0

    def click(self, selector: str) -> None:
        self.n += 1
        self.page.click(selector)


def sign_in(page: Any, url: str, name: str, clicks: Clicks | None = None) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    (clicks.click if clicks else page.click)("form.login button[type=submit]")
    page.wait_for_url(f"{url}/")


def pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


def test_sign_in_to_printed_sheets_for_the_ten_oldest_cases_in_few_clicks(
    hub: tuple[str, dict[str, Any]], tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    url, ids = hub
    oldest = [alert for alert, _ in ids["cases"]][::-1][:10]  # first flagged 22, 21, ... 13 days ago
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE, locale="zh-CN")
            clicks = Clicks(page)
            sign_in(page, url, "insp1", clicks)
            clicks.click("a.oldest-sheets")
            page.wait_for_url("**/visits?*")
            sheets = page.locator("article.visit-sheet")
            assert sheets.count() == 10
            assert [int(s.get_attribute("data-alert-id") or 0) for s in sheets.all()] == oldest
            assert clicks.n < 10, clicks.n
            # Printed: no navigation or buttons, the list on a page of its own, then one A4 page per sheet.
            page.emulate_media(media="print")
            assert not page.locator("header.top").is_visible() and not page.locator("footer").is_visible()
            pdf = page.pdf(format="A4", print_background=True)
            (tmp_path / "sheets.pdf").write_bytes(pdf)
            assert pdf_pages(pdf) == 11, pdf_pages(pdf)
            print(f"sign-in to 10 printed visit sheets: {clicks.n} clicks, {pdf_pages(pdf)} A4 pages")
        finally:
            browser.close()


def overflow(page: Any) -> int:
    """How many px the page is wider than the window (0: no horizontal scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def small_targets(page: Any) -> list[str]:
    """Visible controls shorter than 44 px: buttons, button links, fields, the verdicts' first step."""
    return list(page.evaluate("""() => [...document.querySelectorAll(
        'button, a.button, select, input:not([type=hidden]):not([type=checkbox]), summary.button,'
        + ' header.top a')]
        .filter(e => e.offsetParent !== null)
        .filter(e => e.getBoundingClientRect().height < 43.5)
        .map(e => e.outerHTML.slice(0, 80))"""))


def smallest_chart_label(page: Any) -> float:
    """The rendered height in px of the smallest text on the page's charts (0 when it has none)."""
    return float(page.evaluate("""() => Math.min(...[...document.querySelectorAll('svg.chart-svg text')]
        .map(e => e.getBoundingClientRect().height).filter(h => h > 0), 1e9) % 1e9"""))


def test_no_overflow_at_390_px_touch_targets_and_screenshots(hub: tuple[str, dict[str, Any]],
                                                             tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, ids = hub
    alert = ids["cases"][0][0]
    shots = DOCS if os.environ.get("ANJU_SAVE_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    pages = {
        "insp1": [("queue", "/"), ("case", f"/alerts/{alert}"), ("visit-sheet", f"/alerts/{alert}/sheet"),
                  ("visit-list", "/visits?mine=1&sort=oldest"), ("grid", "/estates/E01/grid"),
                  ("queue-filtered", "/?state=assigned&sort=oldest&q=%E5%92%8C%E5%B9%B3%E8%B7%AF")],
        "sup1": [("supervisor", "/supervisor"), ("queue-supervisor", "/?status=all")],
        "aud": [("audit", "/audit")],
    }
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for size_name, size in (("phone", PHONE), ("small-phone", SMALL_PHONE), ("desktop", DESKTOP)):
                context = browser.new_context(viewport=size, locale="zh-CN")
                page = context.new_page()
                page.goto(f"{url}/login")
                if overflow(page) > 0:
                    problems.append(f"{size_name} /login overflows by {overflow(page)} px")
                for name, paths in pages.items():
                    sign_in(page, url, name)
                    for shot, path in paths:
                        page.goto(f"{url}{path}")
                        if overflow(page) > 0:
                            problems.append(f"{size_name} {path} ({name}) overflows by {overflow(page)} px")
                        if size_name == "phone":
                            problems += [f"{path}: {t} under 44 px" for t in small_targets(page)]
                            label = smallest_chart_label(page)
                            if label and label < 9:
                                problems.append(f"{path}: chart labels {label:.1f} px tall")
                        shown = shot in ("queue", "case", "supervisor", "visit-sheet")
                        if shown and size_name != "small-phone":
                            page.screenshot(path=str(shots / f"{shot}-{size_name}.png"), full_page=True)
                    page.click("form.logout button")
                    page.wait_for_url("**/login")
                context.close()
        finally:
            browser.close()
    assert problems == [], "\n".join(problems)
    assert (shots / "queue-phone.png").stat().st_size > 10_000


def test_phone_filters_second_step_kept_reason_and_supervisor(hub: tuple[str, dict[str, Any]]) -> None:
    from playwright.sync_api import sync_playwright

    url, ids = hub
    alert, case = ids["cases"][0]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE, locale="zh-CN")
            sign_in(page, url, "insp1")
            # Search by address, oldest first (keyset paging is tested over HTTP: 100 rows make a page).
            page.fill("input[name=q]", "和平路")
            page.select_option("select[name=sort]", "oldest")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**/?*q=*")
            assert page.locator("p.total").inner_text() == "共 12 条"
            assert page.locator("tr.alert").first.get_attribute("data-alert-id") == str(ids["cases"][-1][0])
            # The verdict needs its second step; "other" without a note is refused and stays chosen.
            page.goto(f"{url}/alerts/{alert}")
            dismiss = page.locator("form.dismiss")
            assert not dismiss.locator("button.confirm-yes").is_visible()
            dismiss.locator("select[name=reason]").select_option("other")
            dismiss.locator("input[name=occupants_seen]").fill("2")
            dismiss.locator("summary").click()
            assert "排除这条线索" in dismiss.locator(".confirm-question").inner_text()
            dismiss.locator("button.confirm-yes").click()
            page.wait_for_load_state()
            assert page.locator("p.error").is_visible()
            dismiss = page.locator("form.dismiss")
            assert dismiss.locator("select[name=reason]").input_value() == "other"
            assert dismiss.locator("input[name=occupants_seen]").input_value() == "2"
            assert dismiss.locator("button.confirm-yes").is_visible()  # the step stays open
            dismiss.locator("input[name=note]").fill("住户出示了工作证明，夜班")
            dismiss.locator("button.confirm-yes").click()
            page.wait_for_url(f"**/alerts/{alert}")
            assert page.locator("dd.case-status").inner_text().endswith("已排除")
            assert page.locator("dd.findings").get_attribute("data-occupants") == "2"
            page.click("form.logout button")
            page.wait_for_url("**/login")
            # The supervisor: the same queue filtered by state and inspector, then the supervisor page.
            sign_in(page, url, "sup1")
            page.goto(f"{url}/?state=dismissed&status=all")
            assert [r.get_attribute("data-case-id") for r in page.locator("tr.alert").all()] == [str(case)]
            page.click("header a.supervisor")
            page.wait_for_url("**/supervisor")
            row = page.locator('tr.inspector[data-inspector="insp1"]')
            assert row.locator("td.active").inner_text() == "11"
            assert "排除 1 件（100%）" in page.locator("p.rates").inner_text()
            assert overflow(page) == 0
        finally:
            browser.close()
