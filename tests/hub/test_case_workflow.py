"""The case workflow by the bureau's steps (issue 14, item 1): 派单, 签收, 走访, 核实, 办结,
each with a deadline from policy, 超期 when it passes and 督办 by a supervisor. Filing follows the
inspector's work: a lead is filed only once confirmed, or, where a city files leads when they open, the
case stays workable and each later decision goes out as an update; filing never holds a case."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from anju.device_sims.tenancy import create_app as tenancy_app
from anju.hub.api.i18n import LANGUAGES, MESSAGES
from anju.hub.audit.store import verify
from anju.hub.auth.models import Principal, Role
from anju.hub.cases.service import open_case, transition
from anju.hub.cases.states import STATUSES, TRANSITIONS, Action, case_guide, delivery_state
from anju.hub.cases.workflow import STAGE_OF, default_policy, due_after, is_overdue, load_policy
from anju.hub.tenancy.client import TenancyClient
from anju.hub.tenancy.outbox import deliver_pending
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
    from anju.hub.api.app import create_app
    from tests.hub.test_api import login, seed
    from tests.hub.test_api import serve as serve_hub

    with psycopg.connect(database_url) as c:
        create_schema(c)
        ids = seed(c)
        add_users(c)
    with serve_hub(create_app(database_url=database_url)) as url, httpx.Client(base_url=url) as http:
        got = http.get(f"/api/cases/{ids['pending_case']}", headers=login(url, "insp1")).json()
        assert got["actions"] == ["dismiss"] and got["next_step"] == "assign"
        assert got["missing"] == {
            "assign": "role", "accept": "needs_assignee", "schedule_visit": "needs_assignee",
            "record_visit": "needs_assignee", "confirm": "needs_assignee", "close": "role",
            "escalate": "role"}
        assert got["stage"] == "opened" and got["overdue"] is False
        filed = http.get(f"/api/cases/{ids['filed_case']}", headers=login(url, "sup1")).json()
        assert filed["actions"] == ["close"] and filed["next_step"] == "close_filed"
        assert filed["missing"]["confirm"] == "decided"


# The guide as a pure function: every action, in every status and for every role, is either offered
# or missing with a reason the pages can word in both languages.
@pytest.mark.parametrize("state", STATUSES)
@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("filing", [None, "pending", "sent", "dead"])
@pytest.mark.parametrize("overdue", [False, True])
def test_every_missing_button_has_a_reason_in_both_languages(
    state: str, role: Role, filing: str | None, overdue: bool,
) -> None:
    guide = case_guide(state, role, assignee="someone", viewer="me", filing=filing, overdue=overdue)
    assert sorted([*guide.actions, *(a for a, _ in guide.missing)]) == sorted(TRANSITIONS)
    for _, why in guide.missing:
        assert f"why.{why}" in MESSAGES and len(MESSAGES[f"why.{why}"]) == len(LANGUAGES)
    assert f"next.{guide.next_step}" in MESSAGES
    if state == "closed":
        assert guide.actions == () and guide.next_step == "none"


def test_guide_reasons() -> None:
    # Filing never takes a button away: a confirmed case is closed while its filing waits, or failed.
    sup = case_guide("confirmed", Role.SUPERVISOR, assignee="a", viewer="s", filing="pending")
    assert sup.actions == (Action.CLOSE,) and sup.next_step == "close_confirmed"
    assert dict(sup.missing)[Action.ESCALATE] == "not_overdue"
    dead = case_guide("confirmed", Role.SUPERVISOR, assignee="a", viewer="s", filing="dead", overdue=True)
    assert dead.actions == (Action.CLOSE, Action.ESCALATE) and dead.next_step == "filing_dead"
    other = case_guide("assigned", Role.INSPECTOR, assignee="a", viewer="b", filing=None)
    assert other.actions == () and dict(other.missing)[Action.CONFIRM] == "assigned_other"
    mine = case_guide("assigned", Role.INSPECTOR, assignee="b", viewer="b", filing="sent")
    assert mine.actions == (Action.ACCEPT, Action.SCHEDULE_VISIT, Action.RECORD_VISIT, Action.CONFIRM,
                            Action.DISMISS)
    accepted = case_guide("accepted", Role.INSPECTOR, assignee="b", viewer="b", filing=None)
    assert dict(accepted.missing)[Action.ACCEPT] == "already_accepted" and accepted.next_step == "visit"
    visited = case_guide("visited", Role.INSPECTOR, assignee="b", viewer="b", filing=None)
    assert visited.actions == (Action.CONFIRM, Action.DISMISS)
    assert dict(visited.missing)[Action.RECORD_VISIT] == "already_visited"
    assert case_guide("open", Role.AUDITOR, assignee=None, viewer="x", filing=None).actions == ()
    assert delivery_state([]) is None and delivery_state(["sent", "pending"]) == "pending"
    assert delivery_state(["sent", "dead", "pending"]) == "dead" and delivery_state(["sent"]) == "sent"


def test_every_refusal_code_is_worded_in_both_languages_from_its_parameters() -> None:
    """One catalogue of refusal codes (hub/cases/errors.py); the pages word each from its code and
    parameters, never from the English message."""
    from anju.hub.api.labels import refusal
    from anju.hub.cases.errors import ENGLISH, ActionForbidden, Refusal, TransitionRefused

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
    from anju.hub.cases.errors import ActionForbidden, Refusal, TransitionRefused

    _, case = lead(conn, auto_file=False)
    with pytest.raises(ActionForbidden) as forbidden:
        act(conn, case, Action.ASSIGN, INSP, assignee="insp1")
    assert forbidden.value.code is Refusal.ROLE and forbidden.value.params["action"] == "assign"
    with pytest.raises(TransitionRefused) as refused:
        act(conn, case, Action.ASSIGN, SUP, assignee="nobody")
    assert refused.value.code is Refusal.ASSIGNEE and refused.value.params == {"name": "nobody",
                                                                               "estate": "E01"}


def test_the_policy_gives_every_open_status_a_deadline_and_every_status_a_stage(tmp_path: Any) -> None:
    from datetime import UTC, datetime, timedelta

    import pydantic

    policy = default_policy()
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    for status in STATUSES:
        assert STAGE_OF[status]
        due = due_after(policy, status, t0)
        assert (due is None) == (status == "closed")
    assert due_after(policy, "assigned", t0) == t0 + timedelta(days=1)  # 签收 within a day
    assert not is_overdue("assigned", t0, t0) and is_overdue("assigned", t0, t0 + timedelta(seconds=1))
    assert not is_overdue("closed", t0, t0 + timedelta(days=99)) and not is_overdue("open", None, t0)
    broken = tmp_path / "workflow.yaml"
    broken.write_text("deadline_days: {assign: 2, accept: 1, visit: 7, verify: 3}\n")  # no close
    with pytest.raises(pydantic.ValidationError):
        load_policy(broken)


def test_bureau_steps_deadlines_overdue_and_escalation_each_go_to_the_tenancy_system(
    conn: psycopg.Connection[Any], stand_in: str,
) -> None:
    """派单 -> 签收 -> 走访 -> 核实 -> 办结 on a lead filed when it opened: each step moves the deadline; a
    supervisor escalates (督办) only once the case is overdue; every step is audited with actor and role
    and goes to the tenancy system as an update, and closing does not wait for the filing."""
    from datetime import UTC, datetime, timedelta

    from anju.hub.cases.errors import ActionForbidden, Refusal, TransitionRefused

    alert, case = lead(conn, auto_file=True)

    def due() -> datetime:
        row = conn.execute("SELECT due_at FROM cases WHERE id = %s", (case,)).fetchone()
        assert row is not None
        return row[0]

    opened = conn.execute("SELECT opened_at FROM cases WHERE id = %s", (case,)).fetchone()
    assert opened is not None and due() == opened[0] + timedelta(days=2)  # 派单 within two days
    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with conn.transaction():
        transition(conn, case_id=case, action=Action.ASSIGN, principal=SUP, assignee="insp1", now=t0)
    assert due() == t0 + timedelta(days=1)
    with pytest.raises(TransitionRefused) as early:  # not overdue yet: no 督办
        act(conn, case, Action.ESCALATE, SUP, note="hurry", now=t0 + timedelta(hours=1))
    assert early.value.code is Refusal.NOT_OVERDUE
    with pytest.raises(TransitionRefused) as bare:  # a 督办 says what is to be done
        act(conn, case, Action.ESCALATE, SUP, now=t0 + timedelta(days=2))
    assert bare.value.code is Refusal.NOTE_REQUIRED
    with pytest.raises(ActionForbidden):
        act(conn, case, Action.ESCALATE, INSP, note="me?", now=t0 + timedelta(days=2))
    assert act(conn, case, Action.ESCALATE, SUP, note="sign for it today", now=t0 + timedelta(days=2)) \
        == "assigned"
    assert act(conn, case, Action.ACCEPT, INSP, now=t0 + timedelta(days=2, hours=1)) == "accepted"
    assert due() == t0 + timedelta(days=9, hours=1)  # 走访 within 7 days of 签收
    # Scheduling the visit does not move the visit's deadline.
    assert act(conn, case, Action.SCHEDULE_VISIT, INSP, visit_on=t0.date() + timedelta(days=5),
               now=t0 + timedelta(days=3)) == "visit_scheduled"
    assert due() == t0 + timedelta(days=9, hours=1)
    assert act(conn, case, Action.RECORD_VISIT, INSP, note="two strangers", now=t0 + timedelta(days=5)) \
        == "visited"
    assert due() == t0 + timedelta(days=8)  # 核实 within 3 days of the visit
    assert act(conn, case, Action.CONFIRM, INSP, now=t0 + timedelta(days=6)) == "confirmed"
    # A confirmed case's alerts close.
    assert conn.execute("SELECT status FROM alerts WHERE id = %s", (alert,)).fetchone() == ("closed",)
    # Nothing was delivered yet: closing does not wait for the tenancy system (filing never holds a case).
    assert act(conn, case, Action.CLOSE, SUP, now=t0 + timedelta(days=7)) == "closed"
    row = conn.execute("SELECT due_at, escalations, accepted_at, visited_at FROM cases WHERE id = %s",
                       (case,)).fetchone()
    assert row is not None and row[0] is None and row[1] == 1
    assert row[2] == t0 + timedelta(days=2, hours=1) and row[3] == t0 + timedelta(days=5)
    assert drain(conn, stand_in) == 8
    there = remote(stand_in)
    assert [(u["action"], u["status"]) for u in there["updates"]] == [
        ("assign", "assigned"), ("escalate", "assigned"), ("accept", "accepted"),
        ("schedule_visit", "visit_scheduled"), ("record_visit", "visited"), ("confirm", "confirmed"),
        ("close", "closed")]
    steps = conn.execute(
        "SELECT actor, action, detail->>'role' FROM audit_log WHERE object_type = 'case'"
        " AND action IN ('case.assign', 'case.escalate', 'case.accept', 'case.schedule_visit',"
        " 'case.record_visit', 'case.confirm', 'case.close') ORDER BY seq").fetchall()
    assert steps == [
        ("user:sup1", "case.assign", "supervisor"), ("user:sup1", "case.escalate", "supervisor"),
        ("user:insp1", "case.accept", "inspector"), ("user:insp1", "case.schedule_visit", "inspector"),
        ("user:insp1", "case.record_visit", "inspector"), ("user:insp1", "case.confirm", "inspector"),
        ("user:sup1", "case.close", "supervisor")]
    assert conn.execute("SELECT city_case_no FROM cases WHERE id = %s", (case,)).fetchone() == (
        there["tenancy_case_id"],)
    assert verify(conn).ok


def test_a_visit_or_verdict_on_an_assigned_case_accepts_it(conn: psycopg.Connection[Any]) -> None:
    _, case = lead(conn, auto_file=False)
    act(conn, case, Action.ASSIGN, SUP, assignee="insp1")
    assert act(conn, case, Action.CONFIRM, INSP, note="seen") == "confirmed"
    row = conn.execute("SELECT accepted_at IS NOT NULL FROM cases WHERE id = %s", (case,)).fetchone()
    assert row == (True,)
    detail = conn.execute("SELECT detail FROM audit_log WHERE action = 'case.confirm'").fetchone()
    assert detail is not None and detail[0]["accepted"] is True


def test_the_case_page_shows_step_deadline_overdue_and_the_buttons_of_the_role(database_url: str) -> None:
    """An overdue case: the page says so; a supervisor gets 督办, an inspector does not; the 督办 is
    recorded from the page, and the city's case number shows once the tenancy system answered."""
    import re

    from anju.hub.api.app import create_app
    from tests.hub.test_api import login, seed
    from tests.hub.test_api import serve as serve_hub

    with psycopg.connect(database_url) as c:
        create_schema(c)
        ids = seed(c)
        add_users(c)
        c.execute("UPDATE cases SET due_at = now() - interval '1 day', city_case_no = 'TC-000042'"
                  " WHERE id = %s", (ids["pending_case"],))
        c.commit()
        alert = c.execute("SELECT alert_id FROM cases WHERE id = %s", (ids["pending_case"],)).fetchone()
        assert alert is not None
    with serve_hub(create_app(database_url=database_url)) as url, httpx.Client(base_url=url) as http:
        sup, insp = login(url, "sup1"), login(url, "insp1")
        got = http.get(f"/api/cases/{ids['pending_case']}", headers=sup).json()
        assert got["overdue"] is True and got["city_case_no"] == "TC-000042" and "escalate" in got["actions"]
        seen = http.get(f"/api/cases/{ids['pending_case']}", headers=insp).json()
        assert seen["missing"]["escalate"] == "role"
        page = http.get(f"/alerts/{alert[0]}?lang=zh", headers=sup).text
        assert 'data-overdue="1"' in page and "已超期" in page and "TC-000042" in page
        assert 'class="action escalate"' in page and 'data-stage="opened"' in page and "待派单" in page
        assert 'class="action escalate"' not in http.get(f"/alerts/{alert[0]}", headers=insp).text
        done = http.post(f"/cases/{ids['pending_case']}/action", headers=sup,
                         data={"action": "escalate", "alert_id": str(alert[0]), "note": "visit this week"})
        assert done.status_code == 303
        page = http.get(f"/alerts/{alert[0]}?lang=en", headers=sup).text
        assert re.search(r"escalated 1×", page) and "visit this week" in page
        refused = http.post(f"/api/cases/{ids['pending_case']}/escalate", json={"note": ""}, headers=sup)
        assert refused.status_code == 409 and "needs a note" in refused.json()["detail"]


def test_repeated_detections_fold_into_one_trail_line() -> None:
    from datetime import UTC, datetime, timedelta

    from anju.hub.api.trail import fold_repeats
    from anju.hub.cases.schemas import AuditEntry

    t0 = datetime(2026, 5, 18, 2, 0, tzinfo=UTC)

    def row(seq: int, action: str) -> AuditEntry:
        return AuditEntry(seq=seq, ts=t0 + timedelta(days=seq), actor="system:detector", action=action,
                          object_type="alert", object_id="7", detail={"score": 0.9})

    trail = [row(1, "alert.opened"), *(row(i, "alert.reflagged") for i in range(2, 12)),
             row(12, "case.assign"), row(13, "alert.reflagged"), row(14, "case.realerted"),
             row(15, "case.realerted")]
    folded = fold_repeats(trail)
    assert [(r.seq, r.action, r.detail.get("repeats")) for r in folded] == [
        (1, "alert.opened", None), (2, "alert.reflagged", 10), (12, "case.assign", None),
        (13, "alert.reflagged", None), (14, "case.realerted", 2)]
    assert folded[1].detail["last"] == (t0 + timedelta(days=11)).isoformat()
    assert folded[1].detail["score"] == 0.9 and "repeats" not in trail[1].detail  # a copy, not the row
    assert fold_repeats([]) == []


def test_the_case_page_shows_ten_reflags_as_one_line(database_url: str) -> None:
    import re

    from anju.hub.api.app import create_app
    from anju.hub.audit import record_audit
    from tests.hub.test_api import login, seed
    from tests.hub.test_api import serve as serve_hub

    with psycopg.connect(database_url) as c:
        create_schema(c)
        ids = seed(c)
        add_users(c)
        row = c.execute("SELECT alert_id FROM cases WHERE id = %s", (ids["pending_case"],)).fetchone()
        assert row is not None
        for _ in range(10):
            record_audit(c, actor="system:detector", action="alert.reflagged", object_type="alert",
                         object_id=row[0], detail={"as_of": "2026-05-28"})
        c.commit()
    with serve_hub(create_app(database_url=database_url)) as url, httpx.Client(base_url=url) as http:
        page = http.get(f"/alerts/{row[0]}?lang=en", headers=login(url, "sup1")).text
    lines = re.findall(r'<li data-action="alert.reflagged"', page)
    assert len(lines) == 1 and 'data-repeats="10"' in page and "10 times, last" in page


def test_the_hubs_settings_choose_the_deadlines(database_url: str, tmp_path: Any) -> None:
    """ANJU_WORKFLOW_POLICY names a city's own deadlines; the hub builds the policy once and the API's
    actions use it."""
    from datetime import datetime, timedelta

    from anju.hub.api.app import create_app
    from anju.hub.settings import HubSettings
    from tests.hub.test_api import login, seed
    from tests.hub.test_api import serve as serve_hub

    own = tmp_path / "workflow.yaml"
    own.write_text("deadline_days: {assign: 3, accept: 0.5, visit: 10, verify: 5, close: 30}\n")
    policy = HubSettings(workflow_policy=own).workflow()
    assert policy.deadline_days.accept == 0.5 and HubSettings().workflow() == default_policy()
    with psycopg.connect(database_url) as c:
        create_schema(c)
        ids = seed(c)
        add_users(c)
    with serve_hub(create_app(database_url=database_url, workflow=policy)) as url, \
            httpx.Client(base_url=url) as http:
        before = datetime.now().astimezone()
        got = http.post(f"/api/cases/{ids['pending_case']}/assign", json={"assignee": "insp1"},
                        headers=login(url, "sup1")).json()
    due = datetime.fromisoformat(got["due_at"])
    assert before + timedelta(hours=11) < due < before + timedelta(hours=13)  # 签收 within half a day


def test_a_passed_deadline_is_recorded_in_the_trail_once_per_deadline(conn: psycopg.Connection[Any]) -> None:
    from anju.hub.cases.deadlines import note_overdue

    _, case = lead(conn, auto_file=False)
    assert note_overdue(conn) == []  # two days to assign it: not late yet
    conn.execute("UPDATE cases SET due_at = now() - interval '1 hour' WHERE id = %s", (case,))
    assert note_overdue(conn) == [case] and note_overdue(conn) == []  # once
    act(conn, case, Action.ASSIGN, SUP, assignee="insp1")  # a new step, a new deadline
    assert note_overdue(conn) == []
    conn.execute("UPDATE cases SET due_at = now() - interval '1 minute' WHERE id = %s", (case,))
    assert note_overdue(conn) == [case]
    rows = conn.execute("SELECT actor, detail->>'status', detail->>'waits_for' FROM audit_log"
                        " WHERE action = 'case.overdue' ORDER BY seq").fetchall()
    assert rows == [("system:workflow", "open", "assign"), ("system:workflow", "assigned", "accept")]
    conn.commit()
    assert verify(conn).ok
