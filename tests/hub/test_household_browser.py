"""The household's side in a real headless Chromium on a 390 px phone: sign in by texted code, read the
case and answer with a photo in under five taps, see nothing of anyone else; the answer arrives in the
inspector's queue and case page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.hub.household_fixtures import NEIGHBOUR_PHONE, TENANT_PHONE, household_db, last_code, sms_gateway
from tests.hub.test_household_pages import SECRET_NOTE, hub, make_private, png
from tests.hub.test_ui_browser import CHROMIUM, CHROMIUM_ARGS, sign_in

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None,
                       reason="chromium is not installed (Debian: apt-get install chromium)"),
]


def phone(browser: Any) -> Any:
    """A new page in a 390 px wide touch phone's browser, in Chinese."""
    return browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
                               has_touch=True, locale="zh-CN").new_page()


LEAKS = ("7777", "8888", "CAMERA-FRAME", "0.8765", "rules-SECRET-9", SECRET_NOTE, "0.4321", "9.876")


@pytest.fixture(autouse=True)
def quick_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_HOUSEHOLD_CODE_GAP_S", "0")


class Taps:
    """Counts the taps a person makes (every tap in these tests goes through here)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, locator: Any) -> None:
        self.count += 1
        locator.tap()


def phone_sign_in(page: Any, url: str, gateway: Any, phone: str, taps: Taps, start: str = "/home") -> None:
    """Open ``start``, land on the sign-in, ask for a code, enter it; back on ``start``."""
    page.goto(url + start)
    page.wait_for_url("**/home/login**")
    page.fill("input[name=phone]", phone)
    taps(page.locator("form.phone button"))
    page.wait_for_selector("input[name=code]")
    page.fill("input[name=code]", last_code(gateway, phone))
    taps(page.locator("form.code button"))
    page.wait_for_url(url + start)


def fits_the_phone(page: Any) -> bool:
    """Whether the page needs no sideways scrolling at 390 px."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_household_reads_and_answers_with_a_photo_in_under_five_taps(database_url: str,
                                                                     tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with psycopg.connect(database_url) as conn:
        ids = household_db(conn)
        make_private(conn, ids)
    home_case, other_case = ids["home_case"], ids["neighbour_case"]
    photo = tmp_path / "discharge-note.png"
    photo.write_bytes(png(64, 64))
    with sms_gateway() as (sms_url, gateway), hub(database_url, sms_url) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = phone(browser)
            failed: list[str] = []
            page.on("requestfailed", lambda req: failed.append(req.url))
            signing = Taps()
            phone_sign_in(page, url, gateway, TENANT_PHONE, signing)
            assert signing.count == 2

            taps = Taps()  # from the list of the household's cases
            assert fits_the_phone(page)
            taps(page.locator(f'li[data-case-id="{home_case}"] a'))
            page.wait_for_url(f"**/home/cases/{home_case}")
            text = page.locator("main").inner_text()
            assert "用电只剩待机水平" in text and "按以往核查结论学得的模型" in text  # the inspectors' words
            assert page.locator("dd.state").inner_text() == "已分派"
            # Unknown days hatched, not zero.
            assert page.locator('svg[data-series="electricity"] rect.gap').count() == 3
            assert page.locator('svg[data-series="strangers"]').count() == 0
            html = page.content()
            for leaked in LEAKS:
                assert leaked not in html, leaked
            assert fits_the_phone(page)
            page.screenshot(path=str(tmp_path / "household-case.png"), full_page=True)
            taps(page.locator('label.reason:has(input[value="hospital"])'))
            with page.expect_file_chooser() as chooser:
                taps(page.locator("input[name=photos]"))
            chooser.value.set_files(str(photo))
            taps(page.locator("form.hh-answer button[type=submit]"))
            page.wait_for_url(f"**/home/cases/{home_case}?sent=1*")
            assert "申辩已提交" in page.locator("p.ok").inner_text()
            assert page.locator("ul.hh-answers a.photo").count() == 1
            print(f"household at 390 px: read the case and answered with a photo in {taps.count} taps"
                  f" (signing in by code: {signing.count} more)")
            assert taps.count < 5

            # English a click away.
            taps(page.locator("a.lang"))
            page.wait_for_selector("text=Who viewed this case")
            assert failed == []

            # A tenant of another unit: nothing of this home.
            other = phone(browser)
            phone_sign_in(other, url, gateway, NEIGHBOUR_PHONE, Taps())
            assert other.locator(f'li[data-case-id="{home_case}"]').count() == 0
            assert other.locator(f'li[data-case-id="{other_case}"]').count() == 1
            for path in (f"/home/cases/{home_case}", f"/home/cases/{home_case}/photos/1", "/", "/api/cases",
                         f"/alerts/{ids['home_alert']}"):
                response = other.goto(url + path)
                assert response is not None and response.status == 404, path
                assert "王芳" not in other.content() and "discharge" not in other.content()

            # The inspector's side: the answer shows in the queue and on the case page, photo included.
            staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
            sign_in(staff, url, "insp1")
            row = staff.locator(f'tr[data-alert-id="{ids["home_alert"]}"]')
            assert "住户已申辩" in row.inner_text()
            staff.goto(f"{url}/alerts/{ids['home_alert']}")
            answer = staff.locator("p.household-answer")
            assert "住院" in answer.inner_text() and "王芳" in answer.inner_text()
            shown = staff.goto(url + str(answer.locator("a.answer-photo").get_attribute("href")))
            assert shown is not None and shown.status == 200 and shown.body() == photo.read_bytes()
        finally:
            browser.close()
