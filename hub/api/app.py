"""The hub's web application: inspector API under /api, inspector pages at /, OpenAPI docs at /docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio.to_thread
import jinja2
import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from anju.hub.api import field_pages, health, i18n, labels, pages, supervisor_page, timefmt, views
from anju.hub.api.household import install as install_household
from anju.hub.api.status_page import install as install_status
from anju.hub.api.timefmt import AUDIT_OBJECTS
from anju.hub.cases.schemas import Reason
from anju.hub.cases.workflow import WorkflowPolicy, default_policy
from anju.hub.monitor import HubMonitor
from anju_wire.clock import ESTATE_TZ

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MAX_REQUEST_BODY = 1024 * 1024


def make_templates(*, estate_tz: str = ESTATE_TZ) -> Jinja2Templates:
    """The Jinja2 environment of the pages, with the label helpers as globals; times in ``estate_tz``."""

    @jinja2.pass_context
    def zone_label(ctx: jinja2.runtime.Context, estate_id: str | None) -> str:
        return timefmt.zone_label(estate_id, ctx["lang"], tz=estate_tz)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        # Every template is HTML: escape always (select_autoescape would be asked again for every macro
        # call's context, a third of a 100-row queue page's render time).
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        t=_t,
        label=_label,
        reason_text=_reason_text,
        reason_comparison=_reason_comparison,
        ALERT_KINDS=labels.ALERT_KINDS,
        ALERT_STATUSES=labels.ALERT_STATUSES,
        CASE_STATUSES=labels.CASE_STATUSES,
        CASE_STAGES=labels.CASE_STAGES,
        CASE_ACTIONS=labels.CASE_ACTIONS,
        FILING_STATES=labels.FILING_STATES,
        AUDIT_ACTIONS=labels.AUDIT_ACTIONS,
        TENANCY_STATUSES=labels.TENANCY_STATUSES,
        DISMISSAL_REASONS=labels.DISMISSAL_REASONS,
        AUDIT_OBJECTS=AUDIT_OBJECTS,
        local_time=partial(timefmt.local_time, tz=estate_tz),
        zone_label=zone_label,
        detail_text=timefmt.detail_text,
    )
    return Jinja2Templates(env=env)


# The templates' helpers read the page's language from the render context (``lang``, set by
# pages.render), so that no template passes it along by hand; macros are imported "with context".
@jinja2.pass_context
def _t(ctx: jinja2.runtime.Context, key: str, **fields: object) -> str:
    return i18n.message(ctx["lang"], key, **fields)


@jinja2.pass_context
def _label(ctx: jinja2.runtime.Context, table: labels.Table, key: str | None) -> str:
    return labels.label(table, key, ctx["lang"])


@jinja2.pass_context
def _reason_text(ctx: jinja2.runtime.Context, reason: Reason) -> str:
    return labels.reason_text(reason, ctx["lang"])


@jinja2.pass_context
def _reason_comparison(ctx: jinja2.runtime.Context, reason: Reason) -> str:
    return labels.reason_comparison(reason, ctx["lang"])


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """Answer 503 when no pooled connection could be had in time, or the database went away."""
    log.warning("database unavailable: %s", exc)
    return JSONResponse({"detail": "database unavailable"}, status_code=503)


async def _bad_value(_request: Request, exc: Exception) -> JSONResponse:
    """Answer 422 when a value from the request cannot go into SQL at all (a NUL byte in a text
    parameter, say): PostgreSQL's data exceptions (SQLSTATE class 22) are about the value, not the server."""
    log.warning("request value refused by the database: %s", exc)
    return JSONResponse({"detail": f"invalid value: {exc}"}, status_code=422)


def create_app(
    *,
    database_url: str,
    title: str = "anju hub",
    pool_min_size: int = 1,
    pool_max_size: int = 8,
    pool_timeout_s: float = 5.0,
    monitor: HubMonitor | None = None,
    sms_url: str = "http://127.0.0.1:8091",
    workflow: WorkflowPolicy | None = None,
    estate_tz: str = ESTATE_TZ,
) -> FastAPI:
    """Build the application; its connection pool opens on startup and closes on shutdown.

    ``pool_timeout_s``: how long a request waits for a database connection before the answer is 503.
    ``monitor``: the hub's background parts, for /api/health and /metrics (none: the database alone).
    ``sms_url``: the SMS gateway that texts households their sign-in codes.
    ``workflow``: the case workflow's deadlines (default: the packaged ``hub/cases/workflow.yaml``).
    ``estate_tz``: the estates' time zone, the pages' times (the hub's ``estate_tz`` setting).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = ConnectionPool(
            database_url, min_size=pool_min_size, max_size=pool_max_size, open=False,
            kwargs={"autocommit": True, "application_name": "anju-hub-api"}, name="anju-api",
        )
        # Opening waits for the first connection: fail at startup, not on the first request.
        await anyio.to_thread.run_sync(lambda: pool.open(wait=True, timeout=30))
        app.state.pool = pool
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(pool.close)

    app = FastAPI(
        title=title,
        description="Inspector API of anju: alerts of vacant or sublet public rental units, with evidence.",
        version="1",
        lifespan=lifespan,
    )
    app.state.templates = make_templates(estate_tz=estate_tz)
    app.state.pool_timeout_s = pool_timeout_s
    app.state.workflow = workflow if workflow is not None else default_policy()
    app.state.monitor = monitor if monitor is not None else HubMonitor()
    # Counted while reading, before anything is buffered: a chunked gigabyte to /login is refused
    # after the first megabyte (no endpoint of the hub takes more than a form or a small JSON body).
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=MAX_REQUEST_BODY)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(psycopg.OperationalError, _database_unavailable)
    app.add_exception_handler(psycopg.DataError, _bad_value)
    install_household(app, sms_url=sms_url)
    app.include_router(views.router)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(field_pages.router)
    app.include_router(supervisor_page.router)
    install_status(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app
