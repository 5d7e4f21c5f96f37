"""Pages for the field: the visit list (CSV and printable, with a one-page 走访单 per case), one case's
visit sheet, and an estate's buildings floor by floor with each unit's state."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from anju.hub.api import queries
from anju.hub.api.charts import EVIDENCE_SERIES, BarChart, bar_chart
from anju.hub.api.deps import DbConn, MaybeUser
from anju.hub.api.field_queries import estate_grid
from anju.hub.api.i18n import Language, message
from anju.hub.api.labels import ALERT_KINDS, CASE_STATUSES, label, reason_comparison, reason_text
from anju.hub.api.models import AlertDetail
from anju.hub.api.pages import PAGE_HEADERS, not_found, page_language, render, to_login
from anju.hub.api.queue_params import QueueQuery
from anju.hub.api.reason_figures import shown_reasons
from anju.hub.auth.models import Principal
from anju.hub.cases.alert_queue import list_alerts, page_evidence
from anju.hub.cases.schemas import AlertSummary
from anju.hub.household.answers import case_answers

router = APIRouter(include_in_schema=False)

MAX_LIST = 500  # rows of a visit list
MAX_SHEETS = 50  # visit sheets printed at once
SHEET_SERIES = ("electricity", "water", "tenant_entries")


def sheet_charts(alert: AlertDetail, lang: Language) -> list[BarChart]:
    """The small charts of a visit sheet: electricity, water and tenant entries, as the case page draws
    them (same series, same gaps), sized for a third of an A4 page."""
    evidence = alert.evidence.model_dump()
    specs = [s for s in EVIDENCE_SERIES if s.key in SHEET_SERIES and evidence.get(s.key)]
    return [bar_chart(s, days=alert.evidence.days, values=evidence[s.key], width=360, height=110, lang=lang,
                      mark=alert.window_start) for s in specs]


def _sheet(conn: Any, alert_id: int, lang: Language) -> dict[str, Any] | None:
    alert = queries.get_alert(conn, alert_id=alert_id)
    if alert is None:
        return None
    return {"alert": alert, "case": alert.case, "charts": sheet_charts(alert, lang),
            "answers": case_answers(conn, case_id=alert.case.id) if alert.case else [],
            "shown": shown_reasons(alert.reasons, alert.evidence, window_start=alert.window_start)}


def _visit_rows(conn: Any, user: Principal, ask: QueueQuery, n: int) -> list[AlertSummary]:
    """The first ``n`` alerts of the queue as asked (its filters and order), from its first page."""
    return list_alerts(conn, **ask.query_args(user), limit=n).items


def _count(text: str, default: int, most: int) -> int:
    return max(1, min(int(text), most)) if text.isascii() and text.isdigit() and len(text) < 6 else default


@router.get("/visits", response_class=HTMLResponse, response_model=None)
def visit_list_page(
    request: Request, conn: DbConn, user: MaybeUser,
    n: Annotated[str, Query(max_length=8)] = "", sheets: Annotated[str, Query(max_length=4)] = "",
) -> Response:
    """A printable visit list of the queue as filtered (its first ``n`` rows, 100 by default), and with
    ``sheets=1`` a 走访单 per case after it, each on its own page."""
    if user is None:
        return to_login(request)
    ask = QueueQuery.parse(request.query_params)
    with_sheets = bool(sheets)
    rows = _visit_rows(conn, user, ask, _count(n, 10 if with_sheets else 100,
                                                MAX_SHEETS if with_sheets else MAX_LIST))
    lang = page_language(request)
    pages = [s for s in (_sheet(conn, a.id, lang) for a in rows if with_sheets) if s is not None]
    series = page_evidence(conn, [a.id for a in rows])
    shown = {a.id: shown_reasons(a.reasons, series.get(a.id), window_start=a.window_start) for a in rows}
    return render(request, "visits.html", {"rows": rows, "sheets": pages, "ask": ask, "shown": shown,
                                           "today": date.today().isoformat()}, user=user)


@router.get("/visits.csv", response_model=None)
def visit_list_csv(request: Request, conn: DbConn, user: MaybeUser,
                   n: Annotated[str, Query(max_length=8)] = "") -> Response:
    """The visit list as CSV (UTF-8 with a byte-order mark, so that spreadsheet programs read the Chinese),
    in the page's language."""
    if user is None:
        return to_login(request)
    ask = QueueQuery.parse(request.query_params)
    lang = page_language(request)
    rows = _visit_rows(conn, user, ask, _count(n, MAX_LIST, MAX_LIST))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([message(lang, f"csv.{c}") for c in CSV_COLUMNS])
    for a in rows:
        top = a.reasons[0] if a.reasons else None
        reason = "" if top is None else " ".join(filter(None, (reason_text(top, lang),
                                                               reason_comparison(top, lang))))
        writer.writerow([
            a.case_id or "", a.unit_id, a.unit_address or "", a.estate_id, a.unit_building or "",
            "" if a.unit_floor is None else a.unit_floor, "" if a.unit_household_size is None
            else a.unit_household_size, a.unit_lease_start or "", label(ALERT_KINDS, a.kind, lang),
            f"{a.score:.2f}" if a.score is not None else "", a.first_flagged or "",
            label(CASE_STATUSES, a.case_status, lang) if a.case_status else "", a.case_assignee or "",
            a.case_visit_on or "", reason,
        ])
    headers = {**PAGE_HEADERS, "Content-Disposition": 'attachment; filename="visits.csv"'}
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


CSV_COLUMNS = ("case", "unit", "address", "estate", "building", "floor", "household", "lease_start", "kind",
               "score", "first_flagged", "state", "assignee", "visit_on", "top_reason")


@router.get("/alerts/{alert_id}/sheet", response_class=HTMLResponse, response_model=None)
def visit_sheet_page(request: Request, conn: DbConn, user: MaybeUser, alert_id: int) -> Response:
    """One alert's 走访单 (visit sheet), to print on one page."""
    if user is None:
        return to_login(request)
    sheet = _sheet(conn, alert_id, page_language(request))
    if sheet is None or not user.sees(sheet["alert"].estate_id):
        return not_found(request, user, "alert", alert_id)
    return render(request, "visits.html", {"rows": [], "sheets": [sheet], "ask": None, "shown": {},
                                           "today": date.today().isoformat()}, user=user)


@router.get("/estates/{estate}/grid", response_class=HTMLResponse, response_model=None)
def building_grid_page(request: Request, conn: DbConn, user: MaybeUser,
                       estate: Annotated[str, Path(max_length=64)]) -> Response:
    """An estate's buildings, floor by floor (top floor first), each unit a cell with its state."""
    if user is None:
        return to_login(request)
    if not user.sees(estate):
        return not_found(request, user, "estate", status_code=404)
    grid = estate_grid(conn, estate_id=estate)
    return render(request, "grid.html", {"estate": estate, "grid": grid}, user=user)
