"""The household's pages under ``/home`` (phone-first, zh-CN with English a click away), and the staff
routes the household side adds: answer photos for inspectors, a supervisor's early-filing reason, the
welfare queue.

A household member signs in with a code texted to their phone and sees the cases about their own home
only: any other case, photo or unit answers 404, exactly like one that does not exist. A household
session never opens a staff page (``anju.hub.api.deps`` answers those 404 too).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from anju.hub.api.deps import (
    HOUSEHOLD_COOKIE,
    UNSAFE_METHODS,
    Admin,
    CurrentUser,
    DbConn,
    FormFields,
    MaybeUser,
    client_address,
    same_origin,
)
from anju.hub.api.household_text import household_message
from anju.hub.api.i18n import Language
from anju.hub.api.pages import not_found, page_language, render
from anju.hub.household.answers import (
    ANSWER_REASONS,
    AnswerRefused,
    NotYours,
    answer_photo,
    case_answers,
    record_filing_override,
    submit_answer,
)
from anju.hub.household.gateway import SmsGateway
from anju.hub.household.policy import HouseholdPolicy
from anju.hub.household.signin import (
    HouseholdPrincipal,
    close_household_session,
    deliver_code,
    household_session,
    open_household_session,
    request_code,
    verify_code,
)
from anju.hub.household.view import cases_of_unit, household_case
from anju.hub.household.viewers import record_view
from anju.hub.household.welfare import open_request, request_visit, welfare_queue

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["household side"])
# The largest answer form read at all (the default policy's photos); each answer is then held to the
# policy the application was built with (``install``; ANJU_HOUSEHOLD_* at start-up).
UPLOAD_CAP = HouseholdPolicy().max_upload_bytes
PHOTO_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
                 "Content-Security-Policy": "default-src 'none'"}


def policy_of(request: Request) -> HouseholdPolicy:
    """The household policy the application was built with."""
    found: HouseholdPolicy = request.app.state.household_policy
    return found


def household(request: Request, conn: DbConn) -> HouseholdPrincipal | None:
    """The signed-in household member, or None (a cross-site unsafe request counts as no one)."""
    token = request.cookies.get(HOUSEHOLD_COOKIE)
    if not token or len(token) > 200:
        return None
    if request.method in UNSAFE_METHODS and not same_origin(request):
        return None
    return household_session(conn, token)


def _to_sign_in(request: Request, back: str = "") -> Response:
    target = "/home/login" + (f"?next={back}" if back.startswith("/home/") and len(back) < 100 else "")
    return RedirectResponse(target, status_code=303)


def _page(request: Request, name: str, context: dict[str, Any], *, who: HouseholdPrincipal | None = None,
          status_code: int = 200, here: str | None = None) -> HTMLResponse:
    return render(request, name, {"who": who, "policy": policy_of(request), **context},
                  status_code=status_code, here=here)


def _not_found(request: Request, who: HouseholdPrincipal | None) -> HTMLResponse:
    return _page(request, "household_not_found.html", {}, who=who, status_code=404)


@router.get("/home/login", response_class=HTMLResponse)
def household_login(request: Request) -> HTMLResponse:
    """Step one: the phone number."""
    nxt = request.query_params.get("next", "")
    return _page(request, "household_login.html", {"step": "phone", "phone": "", "error": None,
                                                    "next": nxt if nxt.startswith("/home/") else ""})


@router.post("/home/login/code", response_class=HTMLResponse)
def household_code(request: Request, conn: DbConn, form: FormFields) -> HTMLResponse:
    """Text a code to the number if it is on a lease (the same answer either way); step two: the code."""
    lang, policy = page_language(request), policy_of(request)
    with conn.transaction():
        asked = request_code(conn, phone=form.get("phone", "")[:32], address=client_address(request),
                             policy=policy)
    error, status = None, 200
    if asked.refused:
        error, status = household_message(lang, "login.limited"), 429
    else:
        with SmsGateway(request.app.state.sms_url) as gateway:
            if not deliver_code(gateway, asked, policy=policy):
                error, status = household_message(lang, "login.unsent"), 503
    return _page(request, "household_login.html",
                 {"step": "code", "phone": asked.phone, "error": error, "next": form.get("next", "")[:100]},
                 status_code=status, here="/home/login")


@router.post("/home/login", response_model=None)
def household_login_submit(request: Request, conn: DbConn, form: FormFields) -> Response:
    """Check the code, open a session, go to the case the notice linked to (or the list)."""
    policy = policy_of(request)
    with conn.transaction():
        who, _ = verify_code(conn, phone=form.get("phone", "")[:32], code=form.get("code", ""),
                             address=client_address(request), policy=policy)
        token = open_household_session(conn, principal=who, policy=policy) if who else None
    if who is None or token is None:
        lang = page_language(request)
        return _page(request, "household_login.html",
                     {"step": "code", "phone": form.get("phone", "")[:32], "next": form.get("next", "")[:100],
                      "error": household_message(lang, "login.wrong")}, status_code=401, here="/home/login")
    nxt = form.get("next", "")
    target = nxt if nxt.startswith("/home/") and "\n" not in nxt else "/home"
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(HOUSEHOLD_COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/",
                        max_age=policy.session_hours * 3600)
    return response


@router.post("/home/logout", response_model=None)
def household_logout(request: Request, conn: DbConn) -> Response:
    """End the household session."""
    who = household(request, conn)
    token = request.cookies.get(HOUSEHOLD_COOKIE)
    if who is not None and token:
        with conn.transaction():
            close_household_session(conn, token=token, principal=who)
    response = RedirectResponse("/home/login", status_code=303)
    response.delete_cookie(HOUSEHOLD_COOKIE, path="/")
    return response


@router.get("/home", response_class=HTMLResponse, response_model=None)
def household_home(request: Request, conn: DbConn) -> Response:
    """The cases about the member's home, and the welfare visit request."""
    who = household(request, conn)
    if who is None:
        return _to_sign_in(request)
    return _page(request, "household_home.html", {
        "cases": cases_of_unit(conn, unit_id=who.unit_id),
        "welfare_asked": open_request(conn, unit_id=who.unit_id),
    }, who=who)


@router.post("/home/welfare", response_model=None)
def household_welfare(request: Request, conn: DbConn, form: FormFields) -> Response:
    """Ask for a welfare visit (kept apart from every case)."""
    who = household(request, conn)
    if who is None:
        return _to_sign_in(request)
    with conn.transaction():
        request_visit(conn, principal=who, note=form.get("note", ""))
    return RedirectResponse("/home", status_code=303)


def _case_page(request: Request, conn: Any, who: HouseholdPrincipal, case_id: int, *,
               error: str | None = None,
               status_code: int = 200) -> HTMLResponse:
    case = household_case(conn, case_id=case_id, unit_id=who.unit_id, now=datetime.now(UTC))
    if case is None:
        return _not_found(request, who)
    record_view(conn, actor=who.actor, case_id=case_id)
    from anju.hub.api.charts import evidence_charts

    charts = evidence_charts(case.evidence, days=case.days, lang=page_language(request))
    return _page(request, "household_case.html", {
        "case": case, "charts": charts, "reasons_list": ANSWER_REASONS, "error": error,
        "sent": request.query_params.get("sent") == "1",
        "answerable": case.status not in ("closed", "dismissed") and (
            case.answer_by is None or case.notice_waiting or datetime.now(UTC) <= case.answer_by),
    }, who=who, status_code=status_code, here=f"/home/cases/{case_id}")


@router.get("/home/cases/{case_id}", response_class=HTMLResponse, response_model=None)
def household_case_page(request: Request, conn: DbConn, case_id: int) -> Response:
    """One case about the member's home; any other case is 404."""
    who = household(request, conn)
    if who is None:
        return _to_sign_in(request, f"/home/cases/{case_id}")
    return _case_page(request, conn, who, case_id)


async def _photos(request: Request) -> tuple[dict[str, str], list[bytes]] | None:
    """The answer form's fields and photo bytes; None when a part is over the limits."""
    from python_multipart.exceptions import MultipartParseError
    from starlette.formparsers import MultiPartException

    policy = policy_of(request)
    try:
        form = await request.form(max_files=policy.max_photos + 1, max_fields=20,
                                  max_part_size=policy.max_photo_bytes + 1)
    except (MultiPartException, MultipartParseError):
        return None
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    photos = [await f.read(policy.max_photo_bytes + 1) for f in form.getlist("photos")
              if isinstance(f, UploadFile)]
    await form.close()
    return fields, photos


@router.post("/home/cases/{case_id}/answer", response_model=None, max_body_size=UPLOAD_CAP)
async def household_answer(request: Request, conn: DbConn, case_id: int) -> Response:
    """Take the household's answer: a reason from the inspectors' list, text, photos of documents."""
    who = await run_in_threadpool(household, request, conn)
    if who is None:
        return _to_sign_in(request)
    lang: Language = page_language(request)
    parsed = await _photos(request)
    if parsed is None:
        return await run_in_threadpool(_case_page, request, conn, who, case_id,
                                       error=household_message(lang, "refused.photo_too_large"),
                                       status_code=413)
    fields, photos = parsed

    def store() -> Response:
        try:
            with conn.transaction():
                submit_answer(conn, principal=who, case_id=case_id, reason=fields.get("reason", ""),
                              text=fields.get("text", ""), photos=photos, policy=policy_of(request))
        except NotYours:
            return _not_found(request, who)
        except AnswerRefused as err:
            code = str(err)
            status = (413 if code == "photo_too_large" else 409 if code in ("case_decided", "period_over")
                      else 422)
            return _case_page(request, conn, who, case_id, error=household_message(lang, f"refused.{code}"),
                              status_code=status)
        return RedirectResponse(f"/home/cases/{case_id}?sent=1#answers", status_code=303)

    return await run_in_threadpool(store)


@router.get("/home/cases/{case_id}/photos/{photo_id}", response_model=None)
def household_photo(request: Request, conn: DbConn, case_id: int, photo_id: int) -> Response:
    """A photo the household sent with an answer to its own case."""
    who = household(request, conn)
    if who is None:
        return _to_sign_in(request)
    owner = conn.execute("SELECT unit_id FROM cases WHERE id = %s", (case_id,)).fetchone()
    found = answer_photo(conn, case_id=case_id, photo_id=photo_id) if owner and who.owns(owner[0]) else None
    if found is None:
        return _not_found(request, who)
    return Response(found[1], media_type=found[0], headers=PHOTO_HEADERS)


@router.get("/cases/{case_id}/answer-photos/{photo_id}", response_model=None)
def staff_answer_photo(request: Request, conn: DbConn, user: MaybeUser, case_id: int, photo_id: int
                       ) -> Response:
    """A photo of a household's answer, for the staff who may see the case."""
    if user is None:
        return RedirectResponse("/login", status_code=303)
    owner = conn.execute("SELECT estate_id FROM cases WHERE id = %s", (case_id,)).fetchone()
    found = answer_photo(conn, case_id=case_id, photo_id=photo_id) if owner and user.sees(owner[0]) else None
    if found is None:
        raise HTTPException(status_code=404, detail=f"photo {photo_id} of case {case_id} not found")
    return Response(found[1], media_type=found[0], headers=PHOTO_HEADERS)


class AnswerOut(BaseModel):
    """A household's answer to a case, as the inspector API gives it."""

    id: int
    by: str
    relation: str
    reason: str
    text: str
    at: datetime
    photo_ids: list[int]


@api.get("/cases/{case_id}/answers", response_model=list[AnswerOut],
         responses={404: {"description": "no such case, or not in your estates"}})
def answers(conn: DbConn, principal: CurrentUser, case_id: int) -> list[AnswerOut]:
    """The household's answers to a case, oldest first (photos at ``/cases/{id}/answer-photos/{photo}``)."""
    owner = conn.execute("SELECT estate_id FROM cases WHERE id = %s", (case_id,)).fetchone()
    if owner is None or not principal.sees(owner[0]):
        raise HTTPException(status_code=404, detail=f"case {case_id} not found")
    return [AnswerOut(id=a.id, by=a.by, relation=a.relation, reason=a.reason, text=a.body, at=a.at,
                      photo_ids=list(a.photo_ids)) for a in case_answers(conn, case_id=case_id)]


@router.post("/cases/{case_id}/filing-override", response_model=None)
def filing_override_page(request: Request, conn: DbConn, user: MaybeUser, case_id: int, form: FormFields
                         ) -> Response:
    """The case page's form: a supervisor records why a held case is filed now; back to the case."""
    if user is None:
        return RedirectResponse("/login", status_code=303)
    back = form.get("alert_id", "")
    back = f"/alerts/{int(back)}" if back.isascii() and back.isdigit() and len(back) < 19 else "/"
    try:
        with conn.transaction():
            record_filing_override(conn, case_id=case_id, principal=user, why=form.get("why", ""))
    except NotYours:
        return not_found(request, user, "case", case_id)
    except AnswerRefused as err:
        status = 403 if str(err) == "role" else 409 if str(err) == "not_confirmed" else 422
        lang = page_language(request)
        return render(request, "household_staff_refused.html", {
            "message": household_message(lang, f"staff.refused.{err}"), "back": back,
        }, status_code=status, user=user)
    return RedirectResponse(back, status_code=303)


class OverrideRequest(BaseModel):
    """Why a confirmed case must be filed before its household's answer period ends."""

    why: Annotated[str, Field(min_length=10, max_length=2000)]


@api.post("/cases/{case_id}/filing-override", status_code=204,
          responses={404: {"description": "no such case, or not in your estates"},
                     403: {"description": "only a supervisor or an admin"},
                     409: {"description": "the case is not confirmed"}})
def filing_override(conn: DbConn, principal: CurrentUser, case_id: int, body: OverrideRequest) -> Response:
    """Record why a confirmed case is filed before its household's answer period ends; the filing goes
    out at once (supervisor, admin); audited."""
    try:
        with conn.transaction():
            record_filing_override(conn, case_id=case_id, principal=principal, why=body.why)
    except NotYours as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except AnswerRefused as err:
        code = 403 if str(err) == "role" else 409 if str(err) == "not_confirmed" else 422
        raise HTTPException(status_code=code, detail=str(err)) from err
    return Response(status_code=204)


class WelfareEntry(BaseModel):
    """One welfare visit to make: which home, why (asked for, or an elderly person's low use), when."""

    id: int
    unit_id: str
    estate_id: str
    source: str
    note: str
    created_at: datetime


@api.get("/welfare", response_model=list[WelfareEntry])
def welfare(conn: DbConn, principal: Admin) -> list[WelfareEntry]:
    """The open welfare visits (admin: the welfare office's export; enforcement roles never see it)."""
    return [WelfareEntry(id=w.id, unit_id=w.unit_id, estate_id=w.estate_id, source=w.source, note=w.note,
                         created_at=w.created_at) for w in welfare_queue(conn)]


def install(app: FastAPI, *, sms_url: str) -> None:
    """Add the household routes and their template helper to the application."""
    app.state.sms_url = sms_url
    app.state.household_policy = HouseholdPolicy()

    @jinja2.pass_context
    def ht(ctx: jinja2.runtime.Context, key: str, **fields: object) -> str:
        return household_message(ctx["lang"], key, **fields)

    app.state.templates.env.globals["ht"] = ht
    app.include_router(router)
    app.include_router(api)
