"""The inspector page in a real headless Chromium: alerts listed with reasons, click through to a chart."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from hub.api.app import create_app
from tests.hub.test_api import create_schema, seed, serve

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
    with serve(create_app(database_url=database_url)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            failed: list[str] = []
            page.on("requestfailed", lambda req: failed.append(req.url))
            page.goto(f"{url}/")

            rows = page.locator("tr.alert")
            assert rows.count() == 2
            vacancy = page.locator(f'tr[data-alert-id="{ids["vacancy"]}"]')
            sublet = page.locator(f'tr[data-alert-id="{ids["sublet"]}"]')
            assert "空置 vacancy" in vacancy.inner_text()
            assert "E01-1-0101" in vacancy.inner_text()
            assert "0.3 kWh/day vs baseline 基线 6.1 kWh/day" in vacancy.inner_text()
            assert "转租 sublet" in sublet.inner_text()
            assert "a recurring stranger at the building" in sublet.inner_text()
            assert rows.first.get_attribute("data-alert-id") == str(ids["vacancy"])  # highest score first
            assert "only pseudonymous ids and counts" in page.locator("footer").inner_text()
            page.screenshot(path=str(tmp_path / "alerts.png"), full_page=True)

            vacancy.get_by_role("link", name="详情 details").click()
            page.wait_for_url(f"**/alerts/{ids['vacancy']}")
            assert "空置 vacancy: E01-1-0101" in page.locator("h1").inner_text()
            electricity = page.locator('svg[data-series="electricity"]')
            electricity.wait_for()
            assert electricity.get_attribute("data-missing-days") == "3"
            assert electricity.locator("rect.bar").count() == 25
            assert electricity.locator("rect.gap").count() == 3
            assert page.locator("svg.chart-svg").count() == 5
            assert "已报送 sent" in page.locator("dd.filing").inner_text()
            shot = tmp_path / "alert.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            assert failed == []  # the stylesheet and everything else came from the hub itself
        finally:
            browser.close()
