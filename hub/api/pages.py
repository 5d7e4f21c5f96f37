"""The inspector's HTML pages: alerts by risk, and one alert with its reasons, case and charts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from hub.api import queries
from hub.api.charts import evidence_charts
from hub.api.deps import DbConn

router = APIRouter(include_in_schema=False)

# Everything the pages use is served by the hub itself: no CDN, no script at all.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
        " frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

PAGE_SIZE = 100


def render(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """Render a template with the page headers."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status_code, headers=PAGE_HEADERS)


@router.get("/", response_class=HTMLResponse)
def alert_list_page(
    request: Request,
    conn: DbConn,
    estate: Annotated[str, Query(max_length=64)] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
    status: Annotated[str, Query(max_length=16)] = "open",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """Alerts sorted by risk, with their reasons in plain words."""
    page = queries.list_alerts(
        conn, estate=estate or None, kind=kind or None, status=None if status == "all" else status or None,
        limit=PAGE_SIZE, offset=offset,
    )
    context = {
        "page": page,
        "filters": {"estate": estate, "kind": kind, "status": status},
        "estates": queries.list_estates(conn),
        "counts": queries.summary_counts(conn),
    }
    return render(request, "alerts.html", context)


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, conn: DbConn, alert_id: int) -> HTMLResponse:
    """One alert: its reasons, its case and filing status, and its evidence as daily charts."""
    alert = queries.get_alert(conn, alert_id=alert_id)
    if alert is None:
        return render(request, "not_found.html", {"what": f"alert {alert_id}"}, status_code=404)
    evidence = alert.evidence.model_dump()
    charts = evidence_charts(evidence, days=alert.evidence.days)
    return render(request, "alert.html", {"alert": alert, "charts": charts})
