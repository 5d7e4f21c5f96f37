"""The inspector's HTML pages: sign-in, alerts by risk, one alert with its case actions, the audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import URL

from anju.hub.api import queries
from anju.hub.api.charts import evidence_charts
from anju.hub.api.deps import (
    SESSION_COOKIE,
    DbConn,
    FormFields,
    MaybeUser,
    Workflow,
    client_address,
    login_refusal,
    request_token,
)
from anju.hub.api.i18n import (
    HTML_LANG,
    LANG_COOKIE,
    LANGUAGES,
    Language,
    choose_language,
    known_language,
    message,
)
from anju.hub.api.labels import refusal
from anju.hub.api.queue_params import CASE_STATES, QueueQuery
from anju.hub.api.reason_figures import shown_reasons
from anju.hub.api.trail import fold_repeats
from anju.hub.api.views import set_session_cookie
from anju.hub.auth.models import Principal, Role
from anju.hub.auth.service import close_session, inspectors_for, open_session, sign_in
from anju.hub.cases import queries as case_queries
from anju.hub.cases.alert_queue import list_alerts, page_evidence, risk_rank
from anju.hub.cases.findings import InvalidFindings, latest_findings, parse_occupants, record_findings
from anju.hub.cases.schemas import AlertSort
from anju.hub.cases.service import ActionForbidden, CaseNotFound, TransitionRefused, assign_many, transition
from anju.hub.cases.states import DISMISS_REASONS, TRANSITIONS, Action, case_guide, delivery_state
from anju.hub.household.answers import answered_cases, case_answers, staff_hold
from anju.hub.household.viewers import record_view

router = APIRouter(include_in_schema=False)

# The actions whose form carries the visit's findings (occupants seen, ID checked).
FINDINGS_ACTIONS = frozenset({"confirm", "dismiss", "record_visit"})

# Everything the pages use is served by the hub itself: no CDN, no script at all.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
        " frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

PAGE_SIZE = 100
R = TypeVar("R", bound=Response)


def page_language(request: Request) -> Language:
    """The language of the page: ``?lang=``, then the cookie, then Accept-Language, else Chinese."""
    return choose_language(query=request.query_params.get("lang"), cookie=request.cookies.get(LANG_COOKIE),
                           accept_language=request.headers.get("accept-language"))


def remember_language(request: Request, response: R) -> R:
    """Keep a language chosen with ``?lang=`` in a cookie for the next pages (a year; no script reads it)."""
    chosen = known_language(request.query_params.get("lang"))
    if chosen is not None and request.cookies.get(LANG_COOKIE) != chosen:
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 24 * 3600, path="/", samesite="lax",
                            httponly=True)
    return response


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200,
    user: Principal | None = None, here: str | None = None,
) -> HTMLResponse:
    """Render a template in the page's language, with the page headers and the signed-in person.

    ``here``: the address the language switch reloads when this page answered a form (a POST)."""
    templates: Jinja2Templates = request.app.state.templates
    lang = page_language(request)
    other = LANGUAGES[1 - LANGUAGES.index(lang)]
    if request.method == "GET":
        switch = str(request.url.include_query_params(lang=other))
    else:
        switch = f"{here or '/'}?lang={other}"
    page = {"user": user, "lang": lang, "html_lang": HTML_LANG[lang], "switch_url": switch, **context}
    response = templates.TemplateResponse(request, name, page, status_code=status_code,
                                          headers=PAGE_HEADERS)
    return remember_language(request, response)


def to_login(request: Request) -> Response:
    """Send someone not signed in to the sign-in page (keeping a language chosen on the way)."""
    return remember_language(request, RedirectResponse("/login", status_code=303))


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    """The sign-in form."""
    return render(request, "login.html", {"error": None, "name": ""})


@router.post("/login", response_model=None)
def login_submit(request: Request, conn: DbConn, form: FormFields) -> Response:
    """Check the password, open a session, set its cookie and go to the alerts."""
    with conn.transaction():
        outcome = sign_in(conn, name=form.get("name", "")[:64], password=form.get("password", "")[:256],
                          address=client_address(request))
        principal = outcome.principal
        token = open_session(conn, principal=principal) if principal else None
    if token is None:
        refusal = login_refusal(outcome)
        key = "login.wrong" if refusal.status_code == 401 else f"login.{outcome.refused}"
        # The name stays filled in: only the password is typed again.
        page = render(request, "login.html", {"error": message(page_language(request), key),
                                              "name": form.get("name", "")[:64]},
                      status_code=refusal.status_code, here="/login")
        page.headers.update(refusal.headers or {})
        return page
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(request, response, token)
    return response


@router.post("/logout", response_model=None)
def logout_submit(request: Request, conn: DbConn, user: MaybeUser) -> Response:
    """End the session and go back to the sign-in page."""
    token, _ = request_token(request)
    if user is not None and token is not None:
        with conn.transaction():
            close_session(conn, token=token, principal=user)
    response = to_login(request)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse, response_model=None)
def alert_list_page(
    request: Request, conn: DbConn, user: MaybeUser,
    min_age_days: Annotated[str, Query(max_length=16)] = "",
    max_age_days: Annotated[str, Query(max_length=16)] = "",
    q: Annotated[str, Query(max_length=64)] = "",
    assigned: Annotated[int, Query(ge=0, le=1000)] = 0,
    refused: Annotated[int, Query(ge=0, le=1000)] = 0,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Alerts of the person's estates sorted by risk (or age), one compact row each with the top reason,
    the case's state, assignee and visit day; filters by assignee, case state and overdue, "my cases", a
    unit or address search; keyset pages with counts; supervisors assign a batch; the visit list.

    The filters come from a form: a blank or unknown value means no filter, not an error."""
    del min_age_days, max_age_days, q  # declared for their length limits; QueueQuery reads them
    if user is None:
        return to_login(request)
    ask = QueueQuery.parse(request.query_params)
    page = list_alerts(conn, **ask.query_args(user), limit=PAGE_SIZE, offset=offset,
                       after=ask.after, before=ask.before)
    estates = queries.list_estates(conn, estates=user.estate_filter())
    series = page_evidence(conn, [a.id for a in page.items])
    shown = {a.id: shown_reasons(a.reasons, series.get(a.id), window_start=a.window_start)
             for a in page.items}
    batch = user.role in TRANSITIONS[Action.ASSIGN].roles
    # Whom a supervisor may assign to or filter by (an inspector filters by "my cases" instead).
    people = sorted({n for e in estates for n in inspectors_for(conn, estate_id=e)}) if batch else []
    context = {
        "page": page,
        "shown": shown,
        "ask": ask,
        "filters": ask.form(),
        "sorts": [s.value for s in AlertSort],
        "case_states": CASE_STATES,
        "estates": estates,
        "counts": case_queries.summary_counts(conn) if not user.scoped else None,
        "inspectors": people,
        # Batch assignment: whom a supervisor may assign to, across the estates they see.
        "assignees": people if batch else [],
        "batch": {"assigned": assigned, "refused": refused},
        "answered": answered_cases(conn, [a.case_id for a in page.items if a.case_id]),
    }
    return render(request, "alerts.html", context, user=user)


@router.post("/cases/assign", response_model=None)
def batch_assign(
    request: Request, conn: DbConn, user: MaybeUser, form: FormFields, policy: Workflow,
) -> Response:
    """Assign the ticked cases of the queue to one inspector, each case audited on its own; back to the
    queue (its filters kept) with how many were assigned and how many refused."""
    if user is None:
        return to_login(request)
    if user.role not in TRANSITIONS[Action.ASSIGN].roles:
        return not_found(request, user, "case", status_code=403)
    ids = [int(k[5:]) for k in form if k.startswith("case_") and k[5:].isascii() and k[5:].isdigit()
           and len(k) < 24][:200]
    outcomes = assign_many(conn, case_ids=ids, assignee=form.get("assignee", "")[:64], principal=user,
                           policy=policy)
    done = sum(1 for o in outcomes if o.outcome == "assigned")
    back = form.get("back", "")
    back = back if back.startswith("?") and "\n" not in back and len(back) < 1000 else "?"
    target = str(request.url_for("alert_list_page")) + back
    target = str(URL(target).include_query_params(assigned=done, refused=len(outcomes) - done))
    return RedirectResponse(URL(target).path + "?" + URL(target).query, status_code=303)


def _alert_context(conn: Any, user: Principal, alert_id: int, lang: Language) -> dict[str, Any] | None:
    alert = queries.get_alert(conn, alert_id=alert_id)
    if alert is None or not user.sees(alert.estate_id):
        return None
    evidence = alert.evidence.model_dump()
    charts = evidence_charts(evidence, days=alert.evidence.days, lang=lang, mark=alert.window_start)
    case = alert.case
    trail = []
    actions: list[str] = []
    inspectors: list[str] = []
    missing: list[tuple[str, str]] = []
    next_step = ""
    if case is not None:
        # Repeated detections fold into one line each run (hub/api/trail.py).
        rows = queries.case_audit(conn, case_id=case.id, alert_ids=case.alert_ids or [alert.id])
        trail = fold_repeats(rows)
        # The page's buttons, and a line for each missing one saying why (hub/cases/states.py).
        guide = case_guide(case.status, user.role, assignee=case.assignee, viewer=user.name,
                           filing=delivery_state(case.deliveries), overdue=case.overdue)
        actions = [a.value for a in guide.actions]
        missing = [(a.value, why) for a, why in guide.missing]
        next_step = guide.next_step
        if Action.ASSIGN.value in actions:
            inspectors = inspectors_for(conn, estate_id=case.estate_id)
    return {"alert": alert, "charts": charts, "trail": trail, "actions": actions, "inspectors": inspectors,
            "missing": missing, "next_step": next_step, "updates": _updates(case),
            "dismiss_reasons": list(DISMISS_REASONS), "today": date.today().isoformat(), "error": None,
            "answers": case_answers(conn, case_id=case.id) if case is not None else [],
            "hold": staff_hold(conn, case_id=case.id) if case is not None else None,
            "kept": kept_fields({}), "findings": latest_findings(conn, case_id=case.id) if case else None,
            "shown": shown_reasons(alert.reasons, alert.evidence, window_start=alert.window_start),
            "rank": risk_rank(conn, estate_id=alert.estate_id, score=alert.score)
            if alert.status == "open" and alert.score is not None else None}


def kept_fields(form: dict[str, str]) -> Callable[[str, str], str]:
    """What was typed into an action's form, for the page shown again after that action was refused:
    ``kept(action, field)``, blank for the other actions' forms (and on a plain visit)."""
    return lambda action, field: form.get(field, "")[:2000] if form.get("action") == action else ""


def _updates(case: Any) -> dict[str, int]:
    """How many of the case's decisions went to the tenancy system as updates, and how many wait."""
    if case is None:
        return {"sent": 0, "waiting": 0}
    sent = sum(1 for state in case.updates if state == "sent")
    return {"sent": sent, "waiting": len(case.updates) - sent}


def not_found(request: Request, user: Principal | None, what: str, ident: int | None = None, *,
              status_code: int = 404) -> HTMLResponse:
    """The not-found (or not-allowed, 403) page for an object, named in the page's language."""
    lang = page_language(request)
    name = message(lang, f"object.{what}", id=ident)
    template = "not_found.html"
    return render(request, template, {"what": name, "forbidden": status_code == 403},
                  status_code=status_code, user=user)


@router.get("/alerts/{alert_id}", response_class=HTMLResponse, response_model=None)
def alert_page(request: Request, conn: DbConn, user: MaybeUser, alert_id: int) -> Response:
    """One alert: its reasons, its case with the actions open to this person, its trail, its charts."""
    if user is None:
        return to_login(request)
    context = _alert_context(conn, user, alert_id, page_language(request))
    if context is None:
        return not_found(request, user, "alert", alert_id)
    if context["alert"].case is not None:  # the household reads who viewed their case
        record_view(conn, actor=user.actor, case_id=context["alert"].case.id)
    return render(request, "alert.html", context, user=user)


@router.post("/cases/{case_id}/action", response_model=None)
def case_action(
    request: Request, conn: DbConn, user: MaybeUser, case_id: int, form: FormFields, policy: Workflow,
) -> Response:
    """Take the action of a button on the alert page, then show the alert again."""
    if user is None:
        return to_login(request)
    lang = page_language(request)
    back = form.get("alert_id", "")
    back = back if back.isascii() and back.isdigit() and len(back) < 19 else ""
    error: str | None = None
    status = 200
    try:
        action = Action(form.get("action", ""))
        visit = form.get("visit_on") or None
        occupants = parse_occupants(form.get("occupants_seen", ""))
        with conn.transaction():
            transition(
                conn, case_id=case_id, action=action, principal=user, policy=policy,
                assignee=form.get("assignee") or None,
                visit_on=date.fromisoformat(visit) if visit else None, reason=form.get("reason") or None,
                note=form.get("note", ""),
            )
            if action.value in FINDINGS_ACTIONS and (occupants is not None or form.get("id_checked")):
                record_findings(conn, case_id=case_id, action=action.value, occupants_seen=occupants,
                                id_checked=bool(form.get("id_checked")), note=form.get("note", ""),
                                actor=user.actor)
    except CaseNotFound:
        return not_found(request, user, "case", case_id)
    except ActionForbidden as err:
        error, status = message(lang, "error.forbidden", detail=refusal(err.code, err.params, lang)), 403
    except TransitionRefused as err:
        error, status = message(lang, "error.refused", detail=refusal(err.code, err.params, lang)), 409
    except InvalidFindings:
        error, status = message(lang, "findings.invalid"), 422
    except ValueError:  # an unknown action or a malformed date: no code, just "check your input"
        error, status = message(lang, "error.refused", detail=refusal("", {}, lang)), 409
    if error is None and back:
        return RedirectResponse(f"/alerts/{int(back)}", status_code=303)
    context = _alert_context(conn, user, int(back), lang) if back else None
    if context is None:
        return not_found(request, user, "case", case_id)
    context["error"] = error
    context["kept"] = kept_fields(dict(form))
    return render(request, "alert.html", context, status_code=status, user=user, here=f"/alerts/{int(back)}")


@router.get("/audit", response_class=HTMLResponse, response_model=None)
def audit_page(
    request: Request, conn: DbConn, user: MaybeUser,
    object_type: Annotated[str, Query(max_length=32)] = "",
    object_id: Annotated[str, Query(max_length=64)] = "",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """The audit log for auditors and admins, newest first, with the chain's verification."""
    if user is None:
        return to_login(request)
    if user.role not in (Role.AUDITOR, Role.ADMIN):
        return not_found(request, user, "audit", status_code=403)
    page = queries.audit_rows(conn, object_type=object_type or None, object_id=object_id or None,
                              limit=PAGE_SIZE, offset=offset)
    return render(request, "audit.html", {"page": page, "filters": {"object_type": object_type,
                                                                     "object_id": object_id}}, user=user)
