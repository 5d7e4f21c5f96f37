"""Filing follows the inspector's work (issue 14, item 1): a lead is filed only once confirmed, or, where a
city files leads when they open, the case stays workable and each later decision goes out as an update."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from device_sims.tenancy import create_app as tenancy_app
from hub.api.i18n import LANGUAGES, MESSAGES
from hub.audit.store import verify
from hub.auth.models import Principal, Role
from hub.cases.service import open_case, transition
from hub.cases.states import STATUSES, TRANSITIONS, Action, case_guide, delivery_state
from hub.tenancy.client import TenancyClient
from hub.tenancy.outbox import deliver_pending
from tests.hub.test_api import add_users, create_schema, insert_alert, vacancy_evidence
from tests.hub.test_tenancy import serve

SUP = Principal(user_id=0, name="sup1", role=Role.SUPERVISOR, estates=frozenset({"E01", "E03"}))
INSP = Principal(user_id=0, name="insp1", role=Role.INSPECTOR, estates=frozenset({"E01"}))


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url) as c:
        create_schema(c)
        add_users(c)
        c.execute("INSERT INTO units (unit_id, estate_id) VALUES ('E01-3-0101', 'E01')")
        c.commit()
        yield c


@pytest.fixture
def stand_in() -> Iterator[str]:
    with serve(tenancy_app()) as url:
        yield url


def lead(conn: psycopg.Connection[Any], *, auto_file: bool) -> tuple[int, int]:
    """An open alert of E01-3-0101 and its case; (alert id, case id)."""
    alert = insert_alert(conn, unit_id="E01-3-0101", estate_id="E01", kind="vacancy", score=0.7, reasons=[],
                         evidence=vacancy_evidence())
    opened = open_case(conn, alert_id=alert, unit_id="E01-3-0101", estate_id="E01", kind="vacancy",
                       summary="lead", evidence={"reasons": [], "alert_id": alert}, auto_file=auto_file)
    assert opened is not None
    conn.commit()
    return alert, opened.case_id


def act(conn: psycopg.Connection[Any], case_id: int, action: Action, who: Principal, **kw: Any) -> str:
    with conn.transaction():
        return transition(conn, case_id=case_id, action=action, principal=who, **kw).after


def drain(conn: psycopg.Connection[Any], url: str) -> int:
    with TenancyClient(url, None, 5.0) as client:
        sent = deliver_pending(conn, client=client).sent
    conn.commit()
    return sent


def outbox(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str | None]]:
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT kind, state, payload->>'action' FROM tenancy_outbox ORDER BY id").fetchall()]


def status(conn: psycopg.Connection[Any], case_id: int) -> str:
    row = conn.execute("SELECT status FROM cases WHERE id = %s", (case_id,)).fetchone()
    assert row is not None
    return str(row[0])


def remote(url: str) -> dict[str, Any]:
    cases = httpx.get(f"{url}/api/v1/cases").json()["cases"]
    assert len(cases) == 1
    found: dict[str, Any] = cases[0]
    return found


def test_by_default_nothing_leaves_before_confirmation_and_the_alert_closes(
    conn: psycopg.Connection[Any], stand_in: str,
) -> None:
    from datetime import date

    alert, case = lead(conn, auto_file=False)
    assert act(conn, case, Action.ASSIGN, SUP, assignee="insp1") == "assigned"
    assert act(conn, case, Action.SCHEDULE_VISIT, INSP, visit_on=date(2026, 4, 2)) == "visit_scheduled"
    assert outbox(conn) == [] and drain(conn, stand_in) == 0
    assert act(conn, case, Action.CONFIRM, INSP, note="strangers living there") == "confirmed"
    # Confirming files the case and closes its alert: a decided case leaves the open queue.
    assert outbox(conn) == [("filing", "pending", None)]
    assert conn.execute("SELECT status FROM alerts WHERE id = %s", (alert,)).fetchone() == ("closed",)
    assert drain(conn, stand_in) == 1 and status(conn, case) == "filed"
    assert act(conn, case, Action.CLOSE, SUP, note="evicted") == "closed"
    # The tenancy system held the case already: closing it goes out as an update, after the filing.
    assert drain(conn, stand_in) == 1
    assert outbox(conn) == [("filing", "sent", None), ("update", "sent", "close")]
    assert [(u["action"], u["status"], u["update_seq"]) for u in remote(stand_in)["updates"]] == [
        ("close", "closed", 1)]
    assert verify(conn).ok


def test_a_lead_filed_on_opening_stays_workable_and_each_decision_follows_as_an_update(
    conn: psycopg.Connection[Any], stand_in: str,
) -> None:
    from datetime import date

    _, case = lead(conn, auto_file=True)
    assert drain(conn, stand_in) == 1
    # Filed, and still open: the inspector's buttons are all there.
    assert status(conn, case) == "open"
    assert conn.execute("SELECT filed_at IS NOT NULL FROM cases").fetchone() == (True,)
    assert act(conn, case, Action.ASSIGN, SUP, assignee="insp1") == "assigned"
    assert act(conn, case, Action.SCHEDULE_VISIT, INSP, visit_on=date(2026, 4, 2)) == "visit_scheduled"
    assert act(conn, case, Action.CONFIRM, INSP) == "confirmed"
    assert [k for k, _, _ in outbox(conn)] == ["filing", "update", "update", "update"]
    assert status(conn, case) == "confirmed"  # until the tenancy system has the confirmation
    assert drain(conn, stand_in) == 3 and status(conn, case) == "filed"
    there = remote(stand_in)
    assert [(u["update_seq"], u["action"], u["status"]) for u in there["updates"]] == [
        (1, "assign", "assigned"), (2, "schedule_visit", "visit_scheduled"), (3, "confirm", "confirmed")]
    assert there["updates"][1]["visit_on"] == "2026-04-02" and there["workflow_status"] == "confirmed"
    assert "note" not in there["updates"][2] and "insp1" not in str(there["updates"])  # names stay here
    actions = [r[0] for r in conn.execute(
        "SELECT action FROM audit_log WHERE object_type = 'case' ORDER BY seq").fetchall()]
    assert actions.count("tenancy.update_queued") == 3 and actions.count("tenancy.update_sent") == 3
    assert verify(conn).ok


def test_a_lead_filed_on_opening_can_be_dismissed_and_the_dismissal_is_sent(
    conn: psycopg.Connection[Any], stand_in: str,
) -> None:
    _, case = lead(conn, auto_file=True)
    drain(conn, stand_in)
    assert act(conn, case, Action.DISMISS, INSP, reason="hospital", note="in hospital") == "dismissed"
    assert act(conn, case, Action.CLOSE, SUP) == "closed"
    assert drain(conn, stand_in) == 2
    assert [(u["action"], u["reason"]) for u in remote(stand_in)["updates"]] == [
        ("dismiss", "hospital"), ("close", None)]


def test_updates_wait_for_their_filing(conn: psycopg.Connection[Any], stand_in: str) -> None:
    """The tenancy system never hears of a decision on a case it has not received."""
    _, case = lead(conn, auto_file=True)
    act(conn, case, Action.ASSIGN, SUP, assignee="insp1")
    assert httpx.post(f"{stand_in}/_sim/faults", json={"fail_next": 1}).status_code == 200
    with TenancyClient(stand_in, None, 5.0) as client:
        first = deliver_pending(conn, client=client)
        conn.commit()
        assert (first.sent, first.retried) == (0, 1)  # the filing failed; its update was not tried
        assert conn.execute("SELECT kind, attempts FROM tenancy_outbox ORDER BY id").fetchall() == [
            ("filing", 1), ("update", 0)]
        conn.execute("UPDATE tenancy_outbox SET next_attempt_at = now() - interval '1 minute'")
        conn.commit()
        assert deliver_pending(conn, client=client).sent == 2  # the filing, then its update
        conn.commit()
    assert [u["action"] for u in remote(stand_in)["updates"]] == ["assign"]


def test_the_case_api_says_what_can_be_done_next_and_why_buttons_are_missing(database_url: str) -> None:
    from hub.api.app import create_app
    from tests.hub.test_api import login, seed
    from tests.hub.test_api import serve as serve_hub

    with psycopg.connect(database_url) as c:
        create_schema(c)
        ids = seed(c)
        add_users(c)
    with serve_hub(create_app(database_url=database_url)) as url, httpx.Client(base_url=url) as http:
        got = http.get(f"/api/cases/{ids['pending_case']}", headers=login(url, "insp1")).json()
        assert got["actions"] == ["dismiss"] and got["next_step"] == "assign"
        assert got["missing"] == {"assign": "role", "schedule_visit": "needs_assignee",
                                  "confirm": "needs_assignee", "close": "role"}
        filed = http.get(f"/api/cases/{ids['filed_case']}", headers=login(url, "sup1")).json()
        assert filed["actions"] == ["close"] and filed["next_step"] == "close_filed"
        assert filed["missing"]["confirm"] == "decided"


# The guide as a pure function: every action, in every status and for every role, is either offered
# or missing with a reason the pages can word in both languages.
@pytest.mark.parametrize("state", STATUSES)
@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("filing", [None, "pending", "sent", "dead"])
def test_every_missing_button_has_a_reason_in_both_languages(
    state: str, role: Role, filing: str | None,
) -> None:
    guide = case_guide(state, role, assignee="someone", viewer="me", filing=filing)
    assert sorted([*guide.actions, *(a for a, _ in guide.missing)]) == sorted(TRANSITIONS)
    for _, why in guide.missing:
        assert f"why.{why}" in MESSAGES and len(MESSAGES[f"why.{why}"]) == len(LANGUAGES)
    assert f"next.{guide.next_step}" in MESSAGES
    if state == "closed":
        assert guide.actions == () and guide.next_step == "none"


def test_guide_reasons() -> None:
    sup = case_guide("confirmed", Role.SUPERVISOR, assignee="a", viewer="s", filing="pending")
    assert sup.actions == () and dict(sup.missing)[Action.CLOSE] == "awaiting_filing"
    assert sup.next_step == "await_filing"
    dead = case_guide("confirmed", Role.SUPERVISOR, assignee="a", viewer="s", filing="dead")
    assert dict(dead.missing)[Action.CLOSE] == "filing_dead" and dead.next_step == "filing_dead"
    other = case_guide("assigned", Role.INSPECTOR, assignee="a", viewer="b", filing=None)
    assert other.actions == () and dict(other.missing)[Action.CONFIRM] == "assigned_other"
    mine = case_guide("assigned", Role.INSPECTOR, assignee="b", viewer="b", filing="sent")
    assert mine.actions == (Action.SCHEDULE_VISIT, Action.CONFIRM, Action.DISMISS)
    assert case_guide("open", Role.AUDITOR, assignee=None, viewer="x", filing=None).actions == ()
    assert delivery_state([]) is None and delivery_state(["sent", "pending"]) == "pending"
    assert delivery_state(["sent", "dead", "pending"]) == "dead" and delivery_state(["sent"]) == "sent"


def test_every_refusal_code_is_worded_in_both_languages_from_its_parameters() -> None:
    """One catalogue of refusal codes (hub/cases/errors.py); the pages word each from its code and
    parameters, never from the English message."""
    from hub.api.labels import refusal
    from hub.cases.errors import ENGLISH, ActionForbidden, Refusal, TransitionRefused

    assert set(ENGLISH) == set(Refusal)
    for code in Refusal:
        assert len(MESSAGES[f"refused.{code}"]) == len(LANGUAGES)
    err = TransitionRefused(Refusal.STATUS, action="close", status="open")
    assert str(err) == "cannot close a case that is open"  # the API's English detail
    assert refusal(err.code, err.params, "zh") == "案件当前状态为“待分派”，不能结案。"
    assert refusal(err.code, err.params, "en") == "the case is open, so it cannot close."
    forbidden = ActionForbidden(Refusal.ROLE, role="inspector", action="assign")
    assert refusal(forbidden.code, forbidden.params, "zh") == "巡查员不能分派。"
    # The wording does not come from the English text: another English message changes nothing.
    assert refusal("not a code", {}, "en") == "the input is not valid; check it and try again."


def test_refusals_of_the_workflow_carry_their_code(conn: psycopg.Connection[Any]) -> None:
    from hub.cases.errors import ActionForbidden, Refusal, TransitionRefused

    _, case = lead(conn, auto_file=False)
    with pytest.raises(ActionForbidden) as forbidden:
        act(conn, case, Action.ASSIGN, INSP, assignee="insp1")
    assert forbidden.value.code is Refusal.ROLE and forbidden.value.params["action"] == "assign"
    with pytest.raises(TransitionRefused) as refused:
        act(conn, case, Action.ASSIGN, SUP, assignee="nobody")
    assert refused.value.code is Refusal.ASSIGNEE and refused.value.params == {"name": "nobody",
                                                                               "estate": "E01"}
