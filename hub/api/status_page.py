"""The operator's status page (``/status``) and its JSON (``/api/status``): agents online and lagging,
dead letters per estate, the filing queue, the last detection and retention runs, disk use per table.

Both read ``anju.hub.status``, the query module ``anju status`` prints, so the page, the JSON and the
command show the same figures. Admins only: the hub's operators are its admins (inspectors, supervisors
and auditors get 403); the JSON is for a monitoring system signed in as one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from anju.hub.api.deps import DbConn, MaybeUser, require_roles
from anju.hub.api.i18n import Language, message
from anju.hub.api.pages import not_found, page_language, render, to_login
from anju.hub.auth.models import Principal, Role
from anju.hub.status import AgentLine, OperatorStatus, operator_status

page_router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["operations"])

# Who sees the status: the hub's operators, who are its admins (as for /api/users).
OPERATOR_ROLES = frozenset({Role.ADMIN})
Operator = Annotated[Principal, Depends(require_roles(*OPERATOR_ROLES))]
TABLES = 15  # the largest tables listed, as ``anju status`` lists by default


def ago(seconds: int, lang: Language) -> str:
    """A duration in its largest whole unit: 40 s, 12 min, 3 h, 2 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return message(lang, f"status.ago.{unit}", n=seconds // size)
    return message(lang, "status.ago.s", n=seconds)


def agent_issues_text(agent: AgentLine, lang: Language) -> str:
    """Why an agent needs a look, in the page's language (from its issue codes, not its English)."""
    if not agent.issues:
        return message(lang, "status.ok")
    sep = "；" if lang == "zh" else "; "
    return sep.join(message(lang, f"status.issue.{code}", n=n) for code, n in agent.issues)


def megabytes(n: int) -> str:
    """Bytes as MB with one decimal, as ``anju status`` prints them."""
    return f"{n / 2**20:,.1f} MB"


@page_router.get("/status", response_class=HTMLResponse, response_model=None)
def status_page(request: Request, conn: DbConn, user: MaybeUser) -> Response:
    """Gateways, dead letters per estate, filing queue, detection, retention and disk use, for operators."""
    if user is None:
        return to_login(request)
    if user.role not in OPERATOR_ROLES:
        return not_found(request, user, "status", status_code=403)
    lang = page_language(request)
    status = operator_status(conn, tables=TABLES)
    largest = max((t.bytes for t in status.tables), default=0)
    context: dict[str, Any] = {
        "s": status,
        "ago": lambda seconds: ago(seconds, lang),
        "issues_text": lambda agent: agent_issues_text(agent, lang),
        "megabytes": megabytes,
        "share": lambda n: round(100 * n / largest) if largest else 0,
    }
    return render(request, "status.html", context, user=user)


@api_router.get("/status", response_model=OperatorStatus,
                responses={401: {"description": "not signed in"}, 403: {"description": "not an admin"}})
def status_json(conn: DbConn, principal: Operator) -> OperatorStatus:
    """What ``anju status --json`` prints, for monitoring (admin)."""
    return operator_status(conn, tables=TABLES)


def install(app: FastAPI) -> None:
    """Serve the status page and its JSON on ``app``."""
    app.include_router(page_router)
    app.include_router(api_router)
