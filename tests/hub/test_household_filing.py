"""The answer period holds a confirmed case's filing; a supervisor's recorded reason releases it; welfare
records never reach the tenancy filing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from anju.device_sims.tenancy import create_app as tenancy_app
from anju.hub.auth.models import Principal, Role
from anju.hub.cases.service import transition
from anju.hub.cases.states import Action
from anju.hub.household.answers import AnswerRefused, NotYours, record_filing_override
from anju.hub.household.gateway import SmsGateway
from anju.hub.household.notify import deliver_notifications, queue_case_notices
from anju.hub.household.signin import add_member, member_principal
from anju.hub.household.view import household_case
from anju.hub.household.welfare import request_visit, sweep_elderly_signals, welfare_queue
from anju.hub.tenancy.client import TenancyClient
from anju.hub.tenancy.outbox import deliver_pending
from tests.hub.household_fixtures import HOME, household_db, sms_gateway
from tests.hub.test_api import serve
from tests.hub.test_cases import new_case

SUP = Principal(user_id=0, name="sup1", role=Role.SUPERVISOR, estates=frozenset({"E01", "E03"}))
INSP = Principal(user_id=0, name="insp1", role=Role.INSPECTOR, estates=frozenset({"E01"}))
WELFARE_NOTE = "请社区来看看我母亲，她一个人住"


def confirm(conn: psycopg.Connection[Any], case_id: int) -> None:
    with conn.transaction():
        transition(conn, case_id=case_id, action=Action.ASSIGN, principal=SUP, assignee="insp1")
        transition(conn, case_id=case_id, action=Action.CONFIRM, principal=INSP,
                   note="two strangers live there")


def filed(tenancy: httpx.Client) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = tenancy.get("/api/v1/cases").json()["cases"]
    return cases


def test_answer_period_holds_the_filing_and_a_supervisor_may_release_it(database_url: str) -> None:
    with (psycopg.connect(database_url) as conn, sms_gateway() as (sms_url, _),
          SmsGateway(sms_url) as gateway, serve(tenancy_app()) as tenancy_url,
          TenancyClient(tenancy_url) as client, httpx.Client(base_url=tenancy_url) as tenancy):
        ids = household_db(conn)
        t0 = datetime.now(UTC)
        queue_case_notices(conn, now=t0)
        deliver_notifications(conn, gateway=gateway, now=t0)  # the households hear of their cases at t0
        confirm(conn, ids["home_case"])
        held = conn.execute("SELECT next_attempt_at FROM tenancy_outbox WHERE case_id = %s"
                            " AND kind = 'filing'", (ids["home_case"],)).fetchone()
        assert held is not None and held[0] >= t0 + timedelta(days=13)
        queued = conn.execute("SELECT detail FROM audit_log WHERE action = 'tenancy.queued'"
                              " AND object_id = %s", (str(ids["home_case"]),)).fetchone()
        assert queued is not None and queued[0]["held_by"] == "household_answer_period"
        assert deliver_pending(conn, client=client, now=t0 + timedelta(minutes=5)).sent == 0
        # The confirmation's own notice goes out an hour later: its period is the one that counts now.
        later = t0 + timedelta(hours=1)
        assert queue_case_notices(conn, now=later) == 1
        deliver_notifications(conn, gateway=gateway, now=later)
        answer_by = conn.execute("SELECT answer_by FROM household_notices WHERE case_id = %s"
                                 " AND event = 'confirmed'", (ids["home_case"],)).fetchone()
        assert answer_by is not None and answer_by[0] == later + timedelta(days=14)
        assert deliver_pending(conn, client=client, now=later + timedelta(days=13, hours=23)).sent == 0
        assert filed(tenancy) == []  # nothing reached enforcement inside the answer period
        assert deliver_pending(conn, client=client, now=later + timedelta(days=14, seconds=1)).sent == 1
        assert [c["case_ref"] for c in filed(tenancy)] == [f"ANJU-{ids['home_case']}"]

        # Another confirmed case: a supervisor records why it must go now, and it goes at once.
        conn.execute("INSERT INTO units (unit_id, estate_id) VALUES ('E01-3-0201', 'E01')")
        _, urgent = new_case(conn, "E01-3-0201")
        with conn.transaction():
            add_member(conn, unit_id="E01-3-0201", name="赵敏", phone="+8613800000201", relation="tenant",
                       adult=True)
        confirm(conn, urgent)
        now = t0 + timedelta(days=1)
        assert deliver_pending(conn, client=client, now=now).sent == 0
        try:
            with conn.transaction():
                record_filing_override(conn, case_id=urgent, principal=INSP, why="the flat is being sold on")
        except AnswerRefused as err:
            assert str(err) == "role"
        else:
            raise AssertionError("an inspector may not release a held filing")
        outsider = Principal(user_id=0, name="sup2", role=Role.SUPERVISOR, estates=frozenset({"E02"}))
        try:
            with conn.transaction():
                record_filing_override(conn, case_id=urgent, principal=outsider, why="another district's")
        except NotYours:
            pass
        else:
            raise AssertionError("another district's supervisor sees no such case")
        with conn.transaction():
            record_filing_override(conn, case_id=urgent, principal=SUP, why="the flat is being sold on today",
                                   now=now)
        assert deliver_pending(conn, client=client, now=now).sent == 1
        assert len(filed(tenancy)) == 2
        # A unit with nobody on its lease on record has no household side to wait for: filed at once.
        conn.execute("INSERT INTO units (unit_id, estate_id) VALUES ('E01-3-0202', 'E01')")
        _, unregistered = new_case(conn, "E01-3-0202")
        confirm(conn, unregistered)
        assert deliver_pending(conn, client=client, now=now).sent == 1
        override = conn.execute("SELECT actor, detail FROM audit_log WHERE action = 'case.filing_override'"
                                ).fetchone()
        assert override == ("user:sup1", {"why": "the flat is being sold on today"})
        assert len(filed(tenancy)) == 3


def test_welfare_requests_and_elderly_signals_never_reach_the_tenancy_filing(database_url: str) -> None:
    with (psycopg.connect(database_url) as conn, serve(tenancy_app()) as tenancy_url,
          TenancyClient(tenancy_url) as client, httpx.Client(base_url=tenancy_url) as tenancy):
        ids = household_db(conn)
        tenant = member_principal(conn, ids["tenant"])
        assert tenant is not None
        with conn.transaction():
            assert request_visit(conn, principal=tenant, note=WELFARE_NOTE)
            assert not request_visit(conn, principal=tenant, note="again")  # one open request per home
        # An inspector finds an elderly tenant who simply uses little: a welfare signal, not a lead.
        conn.execute("INSERT INTO units (unit_id, estate_id) VALUES ('E01-3-0301', 'E01')")
        _, elderly = new_case(conn, "E01-3-0301")
        with conn.transaction():
            transition(conn, case_id=elderly, action=Action.DISMISS, principal=INSP,
                       reason="elderly_low_use", note="lives alone, very frugal")
            assert sweep_elderly_signals(conn) == 1
            assert sweep_elderly_signals(conn) == 0  # once per verdict
        queue = welfare_queue(conn)
        assert [(w.unit_id, w.source) for w in queue] == [(HOME, "household"),
                                                          ("E01-3-0301", "elderly_low_use")]
        # Enforcement goes on around it: the household's case is confirmed, its filing released and sent.
        confirm(conn, ids["home_case"])
        with conn.transaction():
            record_filing_override(conn, case_id=ids["home_case"], principal=SUP,
                                   why="test: file at once")
        assert deliver_pending(conn, client=client).sent == 1
        sent = json.dumps(filed(tenancy), ensure_ascii=False)
        payloads = conn.execute("SELECT payload FROM tenancy_outbox").fetchall()
        outbox = json.dumps([r[0] for r in payloads], ensure_ascii=False)
        for text in (sent, outbox):
            assert "welfare" not in text and WELFARE_NOTE not in text and "关怀" not in text
        # Structurally apart: nothing refers to the welfare queue and it refers to no case, alert or filing.
        links = conn.execute(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
            " WHERE contype = 'f'"
            " AND (conrelid = 'welfare_queue'::regclass OR confrelid = 'welfare_queue'::regclass)").fetchall()
        assert links == [("welfare_queue", "units")]
        # And the household's page shows no welfare record inside the case either.
        shown = household_case(conn, case_id=ids["home_case"], unit_id=HOME, now=datetime.now(UTC))
        assert shown is not None and WELFARE_NOTE not in repr(shown)
        print(f"welfare: {len(queue)} records queued; {len(filed(tenancy))} filing sent;"
              " 0 welfare records in it")


def test_a_lead_filed_on_opening_has_its_confirmation_held(database_url: str) -> None:
    from anju.hub.cases.service import open_case
    from tests.hub.test_api import insert_alert, vacancy_evidence

    with (psycopg.connect(database_url) as conn, sms_gateway() as (sms_url, _),
          SmsGateway(sms_url) as gateway, serve(tenancy_app()) as tenancy_url,
          TenancyClient(tenancy_url) as client, httpx.Client(base_url=tenancy_url) as tenancy):
        household_db(conn)
        alert = insert_alert(conn, unit_id=HOME, estate_id="E01", kind="sublet", score=0.7, reasons=[],
                             evidence=vacancy_evidence())
        opened = open_case(conn, alert_id=alert, unit_id=HOME, estate_id="E01", kind="sublet", summary="lead",
                           evidence={"reasons": []}, auto_file=True)
        assert opened is not None
        conn.commit()
        t0 = datetime.now(UTC)
        queue_case_notices(conn, now=t0)
        deliver_notifications(conn, gateway=gateway, now=t0)
        assert deliver_pending(conn, client=client, now=t0).sent == 1  # the lead itself is not held
        confirm(conn, opened.case_id)  # assign, then confirm: two updates
        assert deliver_pending(conn, client=client, now=t0 + timedelta(minutes=1)).sent == 1  # the assignment
        later = t0 + timedelta(hours=1)
        queue_case_notices(conn, now=later)
        deliver_notifications(conn, gateway=gateway, now=later)
        assert deliver_pending(conn, client=client, now=later + timedelta(days=13)).sent == 0
        assert deliver_pending(conn, client=client, now=later + timedelta(days=14, seconds=1)).sent == 1
        updates = next(c for c in filed(tenancy) if c["case_ref"] == f"ANJU-{opened.case_id}")["updates"]
        assert [u["action"] for u in updates] == ["assign", "confirm"]


def test_a_supervisor_records_why_on_the_case_page(database_url: str) -> None:
    from anju.hub.api.app import create_app
    from tests.hub.test_api import login

    with psycopg.connect(database_url) as conn:
        ids = household_db(conn)
        confirm(conn, ids["home_case"])
    with serve(create_app(database_url=database_url)) as url:
        sup = httpx.Client(base_url=url, headers=login(url, "sup1"), follow_redirects=False)
        insp = httpx.Client(base_url=url, headers=login(url, "insp1"), follow_redirects=False)
        page = sup.get(f"/alerts/{ids['home_alert']}").text
        assert 'class="filing-held"' in page and 'class="action filing-override"' in page
        assert 'class="action filing-override"' not in insp.get(f"/alerts/{ids['home_alert']}").text
        form = {"alert_id": str(ids["home_alert"]), "why": "short"}
        assert sup.post(f"/cases/{ids['home_case']}/filing-override", data=form).status_code == 422
        assert insp.post(f"/cases/{ids['home_case']}/filing-override",
                         data={**form, "why": "the flat is being sold on today"}).status_code == 403
        done = sup.post(f"/cases/{ids['home_case']}/filing-override",
                        data={**form, "why": "the flat is being sold on today"})
        assert done.status_code == 303 and done.headers["location"] == f"/alerts/{ids['home_alert']}"
        after = sup.get(f"/alerts/{ids['home_alert']}").text
        assert "sup1 已记录提前报送的理由：the flat is being sold on today" in after
        assert 'class="filing-held"' not in after
        sup.close()
        insp.close()
