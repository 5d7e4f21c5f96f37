"""The supervisor's page: who has how many cases and how many are overdue, each estate's open and overdue,
how often visits confirm a lead and why leads are dismissed, new alerts per week, days to a verdict."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from anju.hub.api.charts import SeriesSpec, bar_chart
from anju.hub.api.deps import DbConn, MaybeUser
from anju.hub.api.i18n import message
from anju.hub.api.labels import DISMISSAL_REASONS, label
from anju.hub.api.pages import not_found, page_language, render, to_login
from anju.hub.api.row_charts import row_chart
from anju.hub.api.supervisor_queries import overview
from anju.hub.auth.models import Role

router = APIRouter(include_in_schema=False)

# Who sees the page: supervisors (their district) and admins (everything); not inspectors or auditors.
SUPERVISOR_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})
WEEKLY = SeriesSpec("alerts_per_week", "每周新线索", "New alerts per week", "per week", "#7c3aed", True,
                    "条/周")


@router.get("/supervisor", response_class=HTMLResponse, response_model=None)
def supervisor_page(request: Request, conn: DbConn, user: MaybeUser) -> Response:
    """Workload per inspector, open and overdue per estate, verdict rates with reasons, alerts per week
    (charts drawn on the server, figures written out beside them) and median days to a verdict."""
    if user is None:
        return to_login(request)
    if user.role not in SUPERVISOR_ROLES:
        return not_found(request, user, "supervisor", status_code=403)
    lang = page_language(request)
    data = overview(conn, estates=user.estate_filter())
    weeks = [w for w, _ in data.weeks]
    charts = {
        "weekly": bar_chart(WEEKLY, days=weeks, values=[float(n) for _, n in data.weeks], lang=lang,
                            width=720, height=170),
        "workload": row_chart("workload", message(lang, "sup.chart.workload"),
                              [(w.inspector, float(w.active)) for w in data.workload]),
        "overdue": row_chart("overdue", message(lang, "sup.chart.overdue"),
                             [(e.estate_id, float(e.overdue)) for e in data.estates], color="#b91c1c"),
        "reasons": row_chart("reasons", message(lang, "sup.chart.reasons"),
                             [(label(DISMISSAL_REASONS, k, lang), float(n)) for k, n in data.reasons],
                             color="#15803d"),
    }
    return render(request, "supervisor.html", {"data": data, "charts": charts}, user=user)
