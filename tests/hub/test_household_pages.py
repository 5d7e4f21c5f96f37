"""The household's pages over HTTP: sign in by texted code, own case only, privacy, answer with a photo
that reaches the inspector's queue and case page, and the staff surface closed to a household."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from anju.hub.api.app import create_app
from anju.hub.auth.models import Principal, Role
from anju.hub.cases.service import transition
from anju.hub.cases.states import Action
from anju.hub.household.privacy import PRIVATE_FIELDS, public, public_reason
from tests.hub.household_fixtures import (
    NEIGHBOUR_PHONE,
    TENANT_PHONE,
    household_db,
    last_code,
    sms_gateway,
)
from tests.hub.test_api import login, serve

SECRET_NOTE = "SECRET-NOTE-only-for-inspectors"


def png(width: int = 4, height: int = 4) -> bytes:
    """A small valid PNG (a grey square)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def make_private(conn: psycopg.Connection[Any], ids: dict[str, int]) -> None:
    """Put a value under every kind of private field of the home case: strangers and gate events in the
    evidence, a model's reason, a score and rule version, an inspector's note."""
    evidence = conn.execute("SELECT evidence FROM alerts WHERE id = %s", (ids["home_alert"],)).fetchone()
    assert evidence is not None
    data = dict(evidence[0])
    data["strangers"] = [7777] * len(data["days"])
    data["gate_events"] = [8888] * len(data["days"])
    data["camera"] = {"snapshot": "CAMERA-FRAME-XYZ"}
    reasons = [
        {"code": "electricity_base_load", "text": "base load", "value": 0.3, "baseline": 6.1,
         "unit": "kWh/day"},
        {"code": "verdict_model", "text": "learned", "value": 0.4321, "baseline": 0.1234,
         "unit": "probability confirmed"},
        {"code": "recurring_strangers", "text": "strangers", "value": 9.876, "baseline": 0.1,
         "unit": "strangers/day"},
    ]
    conn.execute("UPDATE alerts SET evidence = %s, reasons = %s, score = 0.8765,"
                 " rule_version = 'rules-SECRET-9'"
                 " WHERE id = %s", (Jsonb(data), Jsonb(reasons), ids["home_alert"]))
    insp = Principal(user_id=0, name="insp1", role=Role.INSPECTOR, estates=frozenset({"E01"}))
    sup = Principal(user_id=0, name="sup1", role=Role.SUPERVISOR, estates=frozenset({"E01"}))
    with conn.transaction():
        transition(conn, case_id=ids["home_case"], action=Action.ASSIGN, principal=sup, assignee="insp1",
                   note=SECRET_NOTE)
    conn.commit()
    del insp


@pytest.fixture(autouse=True)
def quick_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    """No wait between two codes to one number (the tests ask for several in a row)."""
    monkeypatch.setenv("ANJU_HOUSEHOLD_CODE_GAP_S", "0")


@contextmanager
def hub(database_url: str, sms_url: str) -> Iterator[str]:
    with serve(create_app(database_url=database_url, sms_url=sms_url)) as url:
        yield url


@contextmanager
def household_login(url: str, gateway: httpx.Client, phone: str) -> Iterator[httpx.Client]:
    """Sign a household member in through the pages; a client holding their session cookie."""
    with httpx.Client(base_url=url, timeout=10, follow_redirects=False) as http:
        assert http.post("/home/login/code", data={"phone": phone}).status_code == 200
        resp = http.post("/home/login", data={"phone": phone, "code": last_code(gateway, phone)})
        assert resp.status_code == 303 and resp.headers["location"] == "/home", resp.text
        assert http.cookies.get("anju_household")
        yield http


def test_private_fields_are_one_list_and_the_filter_drops_each_at_any_depth() -> None:
    nested: dict[str, Any] = {name: {"inner": [{name: 1, "kept": 2}]} for name in PRIVATE_FIELDS}
    nested["electricity"] = {"inner": [{"note": "x", "kept": 3}]}
    assert public(nested) == {"electricity": {"inner": [{"kept": 3}]}}
    assert public_reason({"code": "verdict_model", "text": "t", "value": 0.4, "baseline": 0.1}) == {
        "code": "verdict_model", "text": "t"}
    assert public_reason({"code": "idle_streak", "value": 30, "baseline": 21, "unit": "days"})["value"] == 30
    assert {"strangers", "camera", "score", "note", "rule_version", "gate_events"} <= PRIVATE_FIELDS


def test_household_reads_own_case_only_and_answers_with_a_photo(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        ids = household_db(conn)
        make_private(conn, ids)
    with sms_gateway() as (sms_url, gateway), hub(database_url, sms_url) as url:
        anon = httpx.Client(base_url=url, timeout=10, follow_redirects=False)
        assert anon.get(f"/home/cases/{ids['home_case']}").headers["location"].startswith("/home/login")
        # A wrong code answers 401 and signs no one in.
        assert anon.post("/home/login/code", data={"phone": TENANT_PHONE}).status_code == 200
        assert anon.post("/home/login", data={"phone": TENANT_PHONE, "code": "x"}).status_code == 401
        with household_login(url, gateway, TENANT_PHONE) as home, \
                household_login(url, gateway, NEIGHBOUR_PHONE) as neighbour:
            listing = home.get("/home")
            assert listing.status_code == 200 and f'data-case-id="{ids["home_case"]}"' in listing.text
            assert f'data-case-id="{ids["neighbour_case"]}"' not in listing.text
            page = home.get(f"/home/cases/{ids['home_case']}")
            assert page.status_code == 200
            text = page.text
            # The reasons in the inspectors' words.
            assert "用电只剩待机水平" in text and "0.3 千瓦时/天，此前为 6.1 千瓦时/天" in text
            assert "按以往核查结论学得的模型" in text  # a model's reason in words, without its numbers
            assert 'data-series="electricity"' in text and 'data-series="tenant_entries"' in text
            assert 'data-missing-days="3"' in text  # the meter outage is hatched, not zero
            for leaked in ("7777", "8888", "CAMERA-FRAME", "0.8765", "87.65", "rules-SECRET-9", SECRET_NOTE,
                           "0.4321", "43.2", "9.876", 'data-series="strangers"', 'data-series="gate_events"'):
                assert leaked not in text, leaked
            assert "sup1" in text and "主管" in text  # the trail: who (name and role) assigned it
            # The detector opened it: the system part named in words.
            assert '<span class="actor">线索检测</span> <span class="role">(系统)</span>' in text
            # Another unit's case, photo and every staff endpoint: 404 for a household session.
            assert home.get(f"/home/cases/{ids['neighbour_case']}").status_code == 404
            assert home.get(f"/home/cases/{ids['neighbour_case']}/photos/1").status_code == 404
            assert neighbour.get(f"/home/cases/{ids['home_case']}").status_code == 404
            for path in ("/", f"/alerts/{ids['home_alert']}", "/api/cases", f"/api/cases/{ids['home_case']}",
                         "/api/units/E01-3-0101", "/audit", "/api/welfare"):
                assert home.get(path).status_code == 404, path
            refused = home.post(f"/home/cases/{ids['home_case']}/answer",
                                data={"reason": "hospital", "text": "x"},
                                files={"photos": ("a.png", b"GIF89a")})
            assert refused.status_code == 422 and "只接受 JPEG、PNG 或 WebP 照片" in refused.text
            big = home.post(f"/home/cases/{ids['home_case']}/answer", data={"reason": "hospital"},
                            files={"photos": ("a.png", png() + b"\0" * (5 * 1024 * 1024))})
            assert big.status_code == 413
            stolen = neighbour.post(f"/home/cases/{ids['home_case']}/answer", data={"reason": "hospital"})
            assert stolen.status_code == 404
            sent = home.post(f"/home/cases/{ids['home_case']}/answer",
                             data={"reason": "hospital", "text": "在市一医院住院三周"},
                             files={"photos": ("discharge.png", png(), "image/png")})
            assert sent.status_code == 303, sent.text
            after = home.get(sent.headers["location"])
            assert "申辩已提交" in after.text and "在市一医院住院三周" in after.text
        staff = httpx.Client(base_url=url, timeout=10, headers=login(url, "insp1"))
        queue = staff.get("/")
        assert 'data-answered="1"' in queue.text and "住户已申辩" in queue.text
        sheet = staff.get(f"/alerts/{ids['home_alert']}")
        assert "在市一医院住院三周" in sheet.text and "住院" in sheet.text
        visit_sheet = staff.get(f"/alerts/{ids['home_alert']}/sheet")  # the printed 走访单 carries it too
        assert visit_sheet.status_code == 200 and "在市一医院住院三周" in visit_sheet.text
        listed = staff.get(f"/api/cases/{ids['home_case']}/answers").json()
        assert [(a["reason"], a["text"], len(a["photo_ids"])) for a in listed] == [
            ("hospital", "在市一医院住院三周", 1)]
        photo_path = sheet.text.split('class="answer-photo" href="')[1].split('"')[0]
        photo = staff.get(photo_path)
        assert photo.status_code == 200 and photo.content == png()
        assert photo.headers["content-type"] == "image/png"
        other = httpx.Client(base_url=url, timeout=10, headers=login(url, "insp2"))
        assert other.get(photo_path).status_code == 404  # another estate's inspector
        for client in (anon, staff, other):
            client.close()  # an unclosed socket fails the test (warnings are errors)
        # The household sees that the inspector viewed the case.
        with household_login(url, gateway, TENANT_PHONE) as home:
            viewers = home.get(f"/home/cases/{ids['home_case']}").text.split('class="hh-viewers"')[1]
            assert "insp1" in viewers and "巡查员" in viewers
            assert "Who viewed this case" in home.get(f"/home/cases/{ids['home_case']}?lang=en").text
    with psycopg.connect(database_url) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log WHERE object_type IN ('case',"
                                              " 'case_view') AND object_id = %s ORDER BY seq",
                                              (str(ids["home_case"]),))]
    assert "household.answered" in actions and "case.viewed" in actions


@pytest.mark.parametrize("phone", ["+8613800000003", "+8612345678901"])
def test_child_or_unknown_number_gets_the_same_page_and_no_text(database_url: str, phone: str) -> None:
    with psycopg.connect(database_url) as conn:
        household_db(conn)
    with sms_gateway() as (sms_url, gateway), hub(database_url, sms_url) as url:
        resp = httpx.post(f"{url}/home/login/code", data={"phone": phone}, timeout=10)
        assert resp.status_code == 200 and "如果该号码登记在租约上" in resp.text
        assert gateway.get("/api/v1/messages", params={"to": phone}).json()["messages"] == []
