"""The queue empties (issue 14, item 2): after a decision the same unit and kind stay quiet until the
evidence is new; a decided case's alerts leave the open queue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest

from anju.hub.audit.store import verify
from anju.hub.cases.alert_queue import list_alerts
from anju.hub.cases.service import transition
from anju.hub.cases.states import DISMISS_REASONS, Action
from anju.hub.cases.suppression import SUPPRESS_DAYS, Clearance, Decision, clearance, latest_decision
from anju.hub.detection.service import run_detection
from tests.hub.test_api import add_users
from tests.hub.test_case_workflow import INSP, SUP
from tests.hub.test_detection import AS_OF, INSERT_ACTIVE
from tests.hub.test_features import add_unit, prepare_schema

UNIT = "E01-1-0101"
WINDOW = 21  # models/policy.yaml window_days


# --- the rule, pure ------------------------------------------------------------------------------------

def dismissed(reason: str, window_end: date = AS_OF) -> Decision:
    return Decision(case_id=7, outcome="dismissed", reason=reason, window_end=window_end)


def judge(decision: Decision | None, as_of: date) -> Clearance:
    return clearance(decision, window_start=as_of - timedelta(days=WINDOW - 1), as_of=as_of)


def test_no_decision_never_suppresses() -> None:
    assert judge(None, AS_OF) == Clearance(True, "no_decision")


def test_a_hospital_stay_is_quiet_on_the_same_evidence_and_for_its_period() -> None:
    hospital = dismissed("hospital")
    for later in (0, 1, WINDOW - 1):
        assert judge(hospital, AS_OF + timedelta(days=later)).code == "same_evidence", later
    quiet = judge(hospital, AS_OF + timedelta(days=WINDOW))  # new window, period not over
    assert (quiet.allowed, quiet.code) == (False, "quiet_period")
    back_on = AS_OF + timedelta(days=SUPPRESS_DAYS["hospital"] + 1)
    assert quiet.resumes_on == back_on
    assert judge(hospital, back_on - timedelta(days=1)).allowed is False
    again = judge(hospital, back_on)
    assert (again.allowed, again.code, again.decision) == (True, "new_evidence", hospital)


def test_a_short_period_still_needs_a_window_of_new_data() -> None:
    meter = dismissed("meter_fault")
    assert SUPPRESS_DAYS["meter_fault"] < WINDOW
    assert judge(meter, AS_OF + timedelta(days=WINDOW - 1)).code == "same_evidence"
    assert judge(meter, AS_OF + timedelta(days=WINDOW)).allowed


@pytest.mark.parametrize("reason", list(DISMISS_REASONS))
def test_every_dismissal_reason_has_a_period(reason: str) -> None:
    assert SUPPRESS_DAYS[reason] > 0
    assert not judge(dismissed(reason), AS_OF + timedelta(days=1)).allowed


def test_confirmed_and_closed_cases_suppress_by_their_outcome() -> None:
    confirmed = Decision(case_id=1, outcome="confirmed", reason=None, window_end=AS_OF)
    closed = Decision(case_id=1, outcome="closed", reason=None, window_end=AS_OF)
    assert confirmed.quiet_days == SUPPRESS_DAYS["confirmed"] and closed.quiet_days == SUPPRESS_DAYS["closed"]
    assert not judge(confirmed, AS_OF + timedelta(days=SUPPRESS_DAYS["confirmed"])).allowed
    assert judge(closed, AS_OF + timedelta(days=SUPPRESS_DAYS["closed"] + 1)).allowed


# --- with the detector, on PostgreSQL ------------------------------------------------------------------

@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """One unit lived in until 40 days before AS_OF and empty since, with data to AS_OF + 60 days."""
    with psycopg.connect(database_url) as c:
        prepare_schema(c)
        add_users(c)
        add_unit(c, UNIT)
        start, end = AS_OF - timedelta(days=80), AS_OF + timedelta(days=60)
        empty_from = AS_OF - timedelta(days=39)
        rows = []
        day = start
        while day <= end:
            empty = day >= empty_from
            entries = 0 if empty else 3
            rows.append((UNIT, day, 0.6 if empty else 7.5, 0.0 if empty else 0.3, 0.0 if empty else 0.4,
                         24, 24, 24, entries, 1, 40, 0.0 if empty else 6.5, 0 if empty else 10,
                         0.0 if empty else 0.3, 0 if empty else 8, 0 if empty else 2, entries))
            day += timedelta(days=1)
        with c.cursor() as cur:
            cur.executemany(INSERT_ACTIVE, rows)
        c.commit()
        yield c


def detect(conn: psycopg.Connection[Any], as_of: date) -> tuple[int, int]:
    """Run detection; (alerts opened, cases opened)."""
    result = run_detection(conn, as_of=as_of)
    conn.commit()
    return result.alerts_opened, result.cases_opened


def one(conn: psycopg.Connection[Any], sql: str, *params: Any) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def act(conn: psycopg.Connection[Any], case_id: int, action: Action, **kw: Any) -> None:
    with conn.transaction():
        transition(conn, case_id=case_id, action=action, **kw)


def open_queue(conn: psycopg.Connection[Any]) -> list[int]:
    return [a.id for a in list_alerts(conn, status="open").items]


def test_a_dismissed_unit_is_not_flagged_again_on_unchanged_evidence(conn: psycopg.Connection[Any]) -> None:
    assert detect(conn, AS_OF) == (1, 1)
    case = one(conn, "SELECT id FROM cases")
    act(conn, case, Action.DISMISS, principal=INSP, reason="hospital", note="in hospital")
    assert open_queue(conn) == []
    # The same minute, the next days, and the rest of the period: nothing opens, nothing attaches.
    for later in (0, 0, 1, 5, WINDOW, SUPPRESS_DAYS["hospital"]):
        assert detect(conn, AS_OF + timedelta(days=later)) == (0, 0), later
    assert open_queue(conn) == []
    assert one(conn, "SELECT count(*) FROM alerts") == 1
    the_alert = one(conn, "SELECT id FROM alerts")
    assert one(conn, "SELECT alert_ids FROM cases WHERE id = %s", case) == [the_alert]
    assert one(conn, "SELECT count(*) FROM audit_log"
                     " WHERE action IN ('case.realerted', 'alert.reflagged')") == 0
    # Closing the dismissed case changes nothing: the same evidence does not come back as a new case.
    act(conn, case, Action.CLOSE, principal=SUP)
    assert detect(conn, AS_OF + timedelta(days=10)) == (0, 0)
    assert one(conn, "SELECT count(*) FROM cases") == 1


def test_after_the_period_new_evidence_opens_a_new_case_saying_so(conn: psycopg.Connection[Any]) -> None:
    detect(conn, AS_OF)
    case = one(conn, "SELECT id FROM cases")
    act(conn, case, Action.DISMISS, principal=INSP, reason="hospital", note="in hospital")
    back = AS_OF + timedelta(days=SUPPRESS_DAYS["hospital"] + 1)
    assert detect(conn, back) == (1, 1)
    # The dismissed case (never closed by a supervisor) is closed as superseded, the new one says why.
    assert conn.execute("SELECT id, status FROM cases ORDER BY id").fetchall()[0] == (case, "closed")
    new_case = one(conn, "SELECT id FROM cases WHERE status = 'open'")
    detail = one(conn, "SELECT detail FROM audit_log WHERE action = 'case.opened' AND object_id = %s",
                 str(new_case))
    assert (detail["after_case"], detail["after_outcome"], detail["after_reason"]) == (case, "dismissed",
                                                                                     "hospital")
    superseded = one(conn, "SELECT detail FROM audit_log WHERE action = 'case.close' AND object_id = %s",
                     str(case))
    assert superseded["by"] == "new_evidence"
    assert len(open_queue(conn)) == 1
    assert verify(conn).ok


def test_a_confirmed_case_leaves_the_queue_and_stays_out(conn: psycopg.Connection[Any]) -> None:
    detect(conn, AS_OF)
    case = one(conn, "SELECT id FROM cases")
    act(conn, case, Action.ASSIGN, principal=SUP, assignee="insp1")
    act(conn, case, Action.CONFIRM, principal=INSP, note="nobody lives here")
    assert open_queue(conn) == []
    for later in (0, 1, WINDOW + 5):
        assert detect(conn, AS_OF + timedelta(days=later)) == (0, 0)
    assert open_queue(conn) == [] and one(conn, "SELECT count(*) FROM alerts") == 1
    assert one(conn, "SELECT status FROM cases") == "confirmed"


def test_a_lead_filed_before_filing_stopped_moving_cases_on_is_undecided(
    conn: psycopg.Connection[Any],
) -> None:
    from anju.hub.cases.suppression import latest_decision

    detect(conn, AS_OF)
    conn.execute("UPDATE cases SET status = 'filed', filed_at = now()")
    conn.commit()
    assert latest_decision(conn, unit_id=UNIT, kind="vacancy") is None
    result = run_detection(conn, as_of=AS_OF + timedelta(days=1))
    conn.commit()
    assert result.alerts_updated == 1


def test_an_undecided_case_keeps_taking_its_alerts(conn: psycopg.Connection[Any]) -> None:
    detect(conn, AS_OF)
    act(conn, one(conn, "SELECT id FROM cases"), Action.ASSIGN, principal=SUP, assignee="insp1")
    result = run_detection(conn, as_of=AS_OF + timedelta(days=1))
    conn.commit()
    assert result.alerts_updated == 1 and len(open_queue(conn)) == 1


def test_a_case_without_alert_ids_is_dated_by_its_alert(conn: psycopg.Connection[Any]) -> None:
    """A case written before ``alert_ids`` was kept (empty) is still dated by its own alert's window, not by
    when it opened (the lookup finds the alerts by one index probe of ``alert_ids || alert_id``)."""
    detect(conn, AS_OF)
    case = one(conn, "SELECT id FROM cases")
    act(conn, case, Action.DISMISS, principal=INSP, reason="hospital", note="in hospital")
    for alert_ids in ([], [one(conn, "SELECT alert_id FROM cases WHERE id = %s", case)]):
        conn.execute("UPDATE cases SET alert_ids = %s WHERE id = %s", (alert_ids, case))
        decision = latest_decision(conn, unit_id=UNIT, kind="vacancy")
        assert decision is not None and decision.window_end == AS_OF, alert_ids
    conn.rollback()
