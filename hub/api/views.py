"""JSON endpoints of the inspector API under ``/api``; thin: authorise, parse, call a service, answer.

Every object is looked up within the caller's estates: another estate's unit, alert or case is 404,
exactly like one that does not exist. A role that may never take an action gets 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from anju.hub.api import queries
from anju.hub.api.deps import (
    SESSION_COOKIE,
    Admin,
    AuditReader,
    CurrentUser,
    DbConn,
    DbPool,
    Overseer,
    Workflow,
    client_address,
    login_refusal,
    request_token,
)
from anju.hub.api.health import monitor_of, with_parts
from anju.hub.api.models import (
    AgentStatus,
    AlertDetail,
    AssignRequest,
    AuditCheck,
    AuditPage,
    BatchAnswer,
    BatchAssignRequest,
    BatchOutcome,
    CaseWithTrail,
    DismissRequest,
    EstatesRequest,
    Health,
    LoginAnswer,
    LoginRequest,
    Me,
    NewUser,
    NoteRequest,
    Stats,
    UserInfo,
    VisitRequest,
)
from anju.hub.auth.errors import InvalidUser, UnknownUser, UserExists
from anju.hub.auth.models import Principal
from anju.hub.auth.service import add_user, close_session, list_users, open_session, set_estates, sign_in
from anju.hub.cases import alert_queue
from anju.hub.cases import queries as case_queries
from anju.hub.cases.schemas import AlertPage, AlertSort, CaseDetail, CasePage, UnitDetail, UnitTrail
from anju.hub.cases.service import ActionForbidden, CaseNotFound, TransitionRefused, assign_many, transition
from anju.hub.cases.states import TRANSITIONS, Action, case_guide, delivery_state
from anju.hub.cases.workflow import WorkflowPolicy
from anju.hub.household.viewers import record_view

router = APIRouter(prefix="/api", tags=["inspector API"])

Estate = Annotated[str | None, Query(max_length=64, description="estate id, e.g. E01")]
Kind = Annotated[str | None, Query(max_length=32, description="vacancy | sublet")]
Status = Annotated[
    str | None, Query(max_length=16, description="alert: open | closed; case: a workflow status")
]
MinAge = Annotated[int | None, Query(ge=0, le=36_500, description="first flagged at least N days ago")]
MaxAge = Annotated[int | None, Query(ge=0, le=36_500, description="first flagged at most N days ago")]
Sort = Annotated[AlertSort, Query(description="risk: highest score first; oldest / newest: by first flagged")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such object, or not in your estates"}}
ACTION_ANSWERS: dict[int | str, dict[str, Any]] = {**NOT_FOUND, 403: {"description": "your role may not"},
                  409: {"description": "not possible in the case's status"}}


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure when the request came over https."""
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/",
                        max_age=12 * 3600)


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(request: Request, pool: DbPool) -> Health | JSONResponse:
    """Whether the database answers, which storage path is in use, and whether the hub's background parts
    (ingest, broker, pipeline) are up, with dead letters by estate; 503 when anything is down (no sign-in)."""
    try:
        with pool.connection(timeout=request.app.state.pool_timeout_s) as conn:
            answer = queries.database_health(conn)
    except (PoolTimeout, psycopg.Error) as err:
        reason = f"database unavailable: {err.__class__.__name__}"
        answer = Health(status=reason, database=False, storage="unknown")
    answer = with_parts(answer, monitor_of(request))
    if answer.status != "ok":
        return JSONResponse(answer.model_dump(mode="json"), status_code=503)
    return answer


def _me(p: Principal) -> Me:
    return Me(name=p.name, role=p.role.value, estates=sorted(p.estates))


@router.post("/auth/login", response_model=LoginAnswer,
             responses={401: {"description": "wrong name or password"},
                        429: {"description": "too many failed sign-ins: wait (Retry-After) or ask an admin"}})
def login(request: Request, response: Response, conn: DbConn, body: LoginRequest) -> LoginAnswer:
    """Sign in: answers a bearer token and sets the same token as a session cookie."""
    with conn.transaction():
        outcome = sign_in(conn, name=body.name, password=body.password, address=client_address(request))
        principal = outcome.principal
        token = open_session(conn, principal=principal) if principal is not None else None
    if principal is None or token is None:
        raise login_refusal(outcome)
    set_session_cookie(request, response, token)
    return LoginAnswer(**_me(principal).model_dump(), token=token)


@router.post("/auth/logout", status_code=204, responses={401: {"description": "not signed in"}})
def logout(request: Request, conn: DbConn, principal: CurrentUser) -> Response:
    """End this session."""
    token, _ = request_token(request)
    assert token is not None  # CurrentUser had one
    with conn.transaction():
        close_session(conn, token=token, principal=principal)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", response_model=Me)
def me(principal: CurrentUser) -> Me:
    """Who is signed in, with their role and estates."""
    return _me(principal)


@router.get("/alerts", response_model=AlertPage)
def list_alerts(
    conn: DbConn, principal: CurrentUser, estate: Estate = None, kind: Kind = None, status: Status = None,
    min_age_days: MinAge = None, max_age_days: MaxAge = None, sort: Sort = AlertSort.RISK,
    assignee: Annotated[str | None, Query(max_length=64, description="case assigned to this person")] = None,
    mine: Annotated[bool, Query(description="only alerts whose case is assigned to you")] = False,
    unit: Annotated[str | None, Query(min_length=1, max_length=64,
                                      description="unit ids or addresses containing this text")] = None,
    state: Annotated[str | None, Query(max_length=32, description="the case's state")] = None,
    overdue: Annotated[bool, Query(description="only alerts whose case is past its deadline")] = False,
    after: Annotated[int | None, Query(ge=1, description="keyset: the page after this alert")] = None,
    before: Annotated[int | None, Query(ge=1, description="keyset: the page before this alert")] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> AlertPage:
    """Alerts in your estates, highest score first (or oldest / newest first), filtered by estate, kind,
    status, age (days since first flagged), the case's assignee (``mine``: you), state and deadline, and
    unit id or address. Pages by ``offset``, or by keyset with ``after``/``before`` (the answer's
    ``next_after``/``prev_before``); ``offset`` in the answer is then the page's position."""
    return alert_queue.list_alerts(conn, estate=estate, kind=kind, status=status, min_age_days=min_age_days,
                                   max_age_days=max_age_days, sort=sort, limit=limit, offset=offset,
                                   estates=principal.estate_filter(),
                                   assignee=principal.name if mine else assignee, unit_search=unit,
                                   case_state=state, overdue=overdue, after=after, before=before)


@router.get("/alerts/{alert_id}", response_model=AlertDetail, responses=NOT_FOUND)
def get_alert(conn: DbConn, principal: CurrentUser, alert_id: int) -> AlertDetail:
    """One alert with its reasons, evidence series and case."""
    alert = queries.get_alert(conn, alert_id=alert_id)
    if alert is None or not principal.sees(alert.estate_id):
        raise HTTPException(status_code=404, detail=f"alert {alert_id} not found")
    return alert


@router.get("/cases", response_model=CasePage)
def list_cases(
    conn: DbConn, principal: CurrentUser, estate: Estate = None, kind: Kind = None, status: Status = None,
    limit: Limit = 50, offset: Offset = 0,
) -> CasePage:
    """Cases in your estates, newest first, each with its latest filing state in the tenancy system."""
    return case_queries.list_cases(conn, estate=estate, kind=kind, status=status, limit=limit,
                                    offset=offset, estates=principal.estate_filter())


def visible_case(conn: psycopg.Connection, principal: Principal, case_id: int) -> CaseDetail:
    """The case if this person may see it; 404 otherwise."""
    case = case_queries.get_case(conn, case_id=case_id)
    if case is None or not principal.sees(case.estate_id):
        raise HTTPException(status_code=404, detail=f"case {case_id} not found")
    return case


@router.get("/cases/{case_id}", response_model=CaseWithTrail, responses=NOT_FOUND)
def get_case(conn: DbConn, principal: CurrentUser, case_id: int) -> CaseWithTrail:
    """One case with its evidence, every filing attempt and its audit trail."""
    case = visible_case(conn, principal, case_id)
    record_view(conn, actor=principal.actor, case_id=case_id)  # the household reads who viewed it
    trail = queries.case_audit(conn, case_id=case_id, alert_ids=case.alert_ids or
                               ([case.alert_id] if case.alert_id else []))
    guide = case_guide(case.status, principal.role, assignee=case.assignee, viewer=principal.name,
                       filing=delivery_state(case.deliveries), overdue=case.overdue)
    return CaseWithTrail(**case.model_dump(), trail=trail, actions=[a.value for a in guide.actions],
                         missing={a.value: why for a, why in guide.missing}, next_step=guide.next_step)


@contextmanager
def case_errors() -> Iterator[None]:
    """The workflow's refusals as HTTP answers."""
    try:
        yield
    except CaseNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except ActionForbidden as err:
        raise HTTPException(status_code=403, detail=str(err)) from err
    except TransitionRefused as err:
        raise HTTPException(status_code=409, detail=str(err)) from err


def act(
    conn: psycopg.Connection, principal: Principal, case_id: int, policy: WorkflowPolicy, action: Action,
    **kw: object,
) -> CaseDetail:
    """Take a workflow action in one transaction (deadlines by ``policy``) and answer the case as it now
    is."""
    with case_errors(), conn.transaction():
        transition(conn, case_id=case_id, action=action, principal=principal, policy=policy,
                   **kw)  # type: ignore[arg-type]
    return visible_case(conn, principal, case_id)


@router.post("/cases/assign", response_model=BatchAnswer,
             responses={403: {"description": "your role may not"}})
def assign_cases(
    conn: DbConn, principal: CurrentUser, body: BatchAssignRequest, policy: Workflow,
) -> BatchAnswer:
    """Assign several cases to one inspector (supervisor, admin): each case on its own, audited on its
    own; the answer says per case whether it was assigned and, if not, why (404, 403 or 409 as code)."""
    if principal.role not in TRANSITIONS[Action.ASSIGN].roles:
        raise HTTPException(status_code=403, detail=f"a {principal.role.value} may not assign a case")
    outcomes = assign_many(conn, case_ids=body.case_ids, assignee=body.assignee, principal=principal,
                           note=body.note, policy=policy)
    return BatchAnswer(results=[BatchOutcome(case_id=o.case_id, outcome=o.outcome, detail=o.detail,
                                             code=o.code) for o in outcomes])


@router.post("/cases/{case_id}/assign", response_model=CaseDetail, responses=ACTION_ANSWERS)
def assign_case(
    conn: DbConn, principal: CurrentUser, case_id: int, body: AssignRequest, policy: Workflow,
) -> CaseDetail:
    """Assign the case to an inspector of its estate (supervisor, admin)."""
    return act(conn, principal, case_id, policy, Action.ASSIGN, assignee=body.assignee, note=body.note)


@router.post("/cases/{case_id}/accept", response_model=CaseDetail, responses=ACTION_ANSWERS)
def accept_case(
    conn: DbConn, principal: CurrentUser, case_id: int, body: NoteRequest, policy: Workflow,
) -> CaseDetail:
    """签收: the assigned inspector accepts the case; the visit's deadline starts."""
    return act(conn, principal, case_id, policy, Action.ACCEPT, note=body.note)


@router.post("/cases/{case_id}/record-visit", response_model=CaseDetail, responses=ACTION_ANSWERS)
def record_visit(
    conn: DbConn, principal: CurrentUser, case_id: int, body: NoteRequest, policy: Workflow,
) -> CaseDetail:
    """走访: the home visit is done (what was found goes in the note); the verdict's deadline starts."""
    return act(conn, principal, case_id, policy, Action.RECORD_VISIT, note=body.note)


@router.post("/cases/{case_id}/escalate", response_model=CaseDetail, responses=ACTION_ANSWERS)
def escalate_case(
    conn: DbConn, principal: CurrentUser, case_id: int, body: NoteRequest, policy: Workflow,
) -> CaseDetail:
    """督办: a supervisor escalates an overdue case, saying what is to be done (the note is required);
    409 when the case is not overdue."""
    return act(conn, principal, case_id, policy, Action.ESCALATE, note=body.note)


@router.post("/cases/{case_id}/schedule-visit", response_model=CaseDetail, responses=ACTION_ANSWERS)
def schedule_visit(
    conn: DbConn, principal: CurrentUser, case_id: int, body: VisitRequest, policy: Workflow,
) -> CaseDetail:
    """Schedule the home visit."""
    return act(conn, principal, case_id, policy, Action.SCHEDULE_VISIT, visit_on=body.visit_on,
               note=body.note)


@router.post("/cases/{case_id}/confirm", response_model=CaseDetail, responses=ACTION_ANSWERS)
def confirm_case(
    conn: DbConn, principal: CurrentUser, case_id: int, body: NoteRequest, policy: Workflow,
) -> CaseDetail:
    """Confirm the suspicion after the visit; the case is queued for filing to the tenancy system."""
    return act(conn, principal, case_id, policy, Action.CONFIRM, note=body.note)


@router.post("/cases/{case_id}/dismiss", response_model=CaseDetail, responses=ACTION_ANSWERS)
def dismiss_case(
    conn: DbConn, principal: CurrentUser, case_id: int, body: DismissRequest, policy: Workflow,
) -> CaseDetail:
    """Dismiss the case with a reason from the list and free text; its alert is closed."""
    return act(conn, principal, case_id, policy, Action.DISMISS, reason=body.reason, note=body.note)


@router.post("/cases/{case_id}/close", response_model=CaseDetail, responses=ACTION_ANSWERS)
def close_case(
    conn: DbConn, principal: CurrentUser, case_id: int, body: NoteRequest, policy: Workflow,
) -> CaseDetail:
    """办结: close a case with its verdict (supervisor, admin); a filing under way does not hold it."""
    return act(conn, principal, case_id, policy, Action.CLOSE, note=body.note)


@router.get("/units/{unit_id}", response_model=UnitDetail, responses=NOT_FOUND)
def get_unit(conn: DbConn, principal: CurrentUser, unit_id: Annotated[str, Path(max_length=64)]
             ) -> UnitDetail:
    """One unit with its alerts, cases and recent daily features."""
    unit = case_queries.get_unit(conn, unit_id=unit_id)
    if unit is None or not principal.sees(unit.estate_id):
        raise HTTPException(status_code=404, detail=f"unit {unit_id} not found")
    return unit


@router.get("/units/{unit_id}/trail", response_model=UnitTrail, responses=NOT_FOUND)
def unit_trail(conn: DbConn, principal: Overseer, unit_id: Annotated[str, Path(max_length=64)]) -> UnitTrail:
    """A household's case trail for export: alerts, cases, verdicts and every audit row about them."""
    trail = case_queries.unit_trail(conn, unit_id=unit_id)
    if trail is None or not principal.sees(trail.estate_id):
        raise HTTPException(status_code=404, detail=f"unit {unit_id} not found")
    return trail


@router.get("/stats", response_model=Stats)
def stats(conn: DbConn, principal: Overseer) -> Stats:
    """Counts of units, readings, events, dead letters, alerts per kind and cases (the demo summary's)."""
    counts = case_queries.summary_counts(conn)
    return Stats(
        units=counts["units"], readings=counts["readings"], events=counts["events"],
        dead_letters=counts["dead_letters"], alerts_by_kind=case_queries.alert_kinds(counts),
        alerts_open=counts["alerts_open"], cases_open=counts["cases_open"], cases_filed=counts["cases_filed"],
        agents=counts["agents"],
    )


@router.get("/agents", response_model=list[AgentStatus])
def list_agents(conn: DbConn, principal: CurrentUser) -> list[AgentStatus]:
    """The last reported status of every edge agent of your estates."""
    return [a for a in queries.list_agents(conn) if a.estate_id is not None and principal.sees(a.estate_id)]


@router.get("/audit", response_model=AuditPage)
def audit_log(
    conn: DbConn, principal: AuditReader,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 100, offset: Offset = 0,
) -> AuditPage:
    """The audit log, newest first (auditor, admin)."""
    return queries.audit_rows(conn, object_type=object_type, object_id=object_id, actor=actor, limit=limit,
                              offset=offset)


@router.get("/audit/verify", response_model=AuditCheck)
def audit_verify(conn: DbConn, principal: AuditReader) -> AuditCheck:
    """Walk the whole hash chain and name the first bad sequence number, if any (auditor, admin)."""
    from anju.hub.audit.store import verify

    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        result = verify(conn)
    return AuditCheck(ok=result.ok, rows=result.rows, head_seq=result.head_seq, head_mac=result.head_mac,
                      bad_seq=result.bad_seq, problem=result.problem)


def _user(conn: psycopg.Connection, name: str) -> UserInfo:
    found = next((u for u in list_users(conn) if u["name"] == name), None)
    if found is None:
        raise HTTPException(status_code=404, detail=f"user {name} not found")
    return UserInfo.model_validate(found)


@router.get("/users", response_model=list[UserInfo])
def users(conn: DbConn, principal: Admin) -> list[UserInfo]:
    """Every person who may sign in, with role and estates (admin)."""
    return [UserInfo.model_validate(u) for u in list_users(conn)]


@router.post("/users", status_code=201, response_model=UserInfo,
             responses={409: {"description": "the name is taken"},
                        422: {"description": "unknown role, or no estate for a scoped role"}})
def create_user(conn: DbConn, principal: Admin, body: NewUser) -> UserInfo:
    """Add a person with a role and estates; audited under the admin's name (admin)."""
    try:
        with conn.transaction():
            add_user(conn, name=body.name, role=body.role, password=body.password, estates=body.estates,
                     actor=principal.actor)
    except UserExists as err:
        raise HTTPException(status_code=409, detail=str(err)) from err
    except InvalidUser as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    return _user(conn, body.name)


@router.put("/users/{name}/estates", response_model=UserInfo,
            responses={404: {"description": "no such user"},
                       422: {"description": "a scoped role left with no estate"}})
def put_estates(conn: DbConn, principal: Admin, name: Annotated[str, Path(max_length=64)],
                body: EstatesRequest) -> UserInfo:
    """Replace the estates a person may see; audited with the lists before and after (admin)."""
    try:
        with conn.transaction():
            set_estates(conn, name=name, estates=body.estates, actor=principal.actor)
    except UnknownUser as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except InvalidUser as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    return _user(conn, name)
