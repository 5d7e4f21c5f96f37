"""JSON endpoints of the inspector API under ``/api``; thin: parse, query, answer."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from hub.api import queries
from hub.api.deps import DbConn, DbPool
from hub.api.models import (
    AgentStatus,
    AlertDetail,
    AlertPage,
    CaseDetail,
    CasePage,
    Health,
    Stats,
    UnitDetail,
)

router = APIRouter(prefix="/api", tags=["inspector API"])

Estate = Annotated[str | None, Query(max_length=64, description="estate id, e.g. E01")]
Kind = Annotated[str | None, Query(max_length=32, description="vacancy | sublet")]
Status = Annotated[
    str | None, Query(max_length=16, description="alert: open | closed; case: open | filed | closed")
]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(request: Request, pool: DbPool) -> Health | JSONResponse:
    """Whether the database answers, and which storage path is in use."""
    try:
        with pool.connection(timeout=request.app.state.pool_timeout_s) as conn:
            return queries.database_health(conn)
    except (PoolTimeout, psycopg.Error) as err:
        reason = f"database unavailable: {err.__class__.__name__}"
        down = Health(status=reason, database=False, storage="unknown")
        return JSONResponse(down.model_dump(), status_code=503)


@router.get("/alerts", response_model=AlertPage)
def list_alerts(
    conn: DbConn, estate: Estate = None, kind: Kind = None, status: Status = None, limit: Limit = 50,
    offset: Offset = 0,
) -> AlertPage:
    """Alerts, highest score first, filtered by estate, kind and status."""
    return queries.list_alerts(conn, estate=estate, kind=kind, status=status, limit=limit, offset=offset)


@router.get(
    "/alerts/{alert_id}", response_model=AlertDetail, responses={404: {"description": "no such alert"}}
)
def get_alert(conn: DbConn, alert_id: int) -> AlertDetail:
    """One alert with its reasons, evidence series and case."""
    alert = queries.get_alert(conn, alert_id=alert_id)
    if alert is None:
        raise HTTPException(status_code=404, detail=f"alert {alert_id} not found")
    return alert


@router.get("/cases", response_model=CasePage)
def list_cases(
    conn: DbConn, estate: Estate = None, kind: Kind = None, status: Status = None, limit: Limit = 50,
    offset: Offset = 0,
) -> CasePage:
    """Cases, newest first, each with its latest filing state in the tenancy system."""
    return queries.list_cases(conn, estate=estate, kind=kind, status=status, limit=limit, offset=offset)


@router.get("/cases/{case_id}", response_model=CaseDetail, responses={404: {"description": "no such case"}})
def get_case(conn: DbConn, case_id: int) -> CaseDetail:
    """One case with its evidence and every filing attempt."""
    case = queries.get_case(conn, case_id=case_id)
    if case is None:
        raise HTTPException(status_code=404, detail=f"case {case_id} not found")
    return case


@router.get("/units/{unit_id}", response_model=UnitDetail, responses={404: {"description": "no such unit"}})
def get_unit(conn: DbConn, unit_id: str) -> UnitDetail:
    """One unit with its alerts, cases and recent daily features."""
    unit = queries.get_unit(conn, unit_id=unit_id)
    if unit is None:
        raise HTTPException(status_code=404, detail=f"unit {unit_id} not found")
    return unit


@router.get("/stats", response_model=Stats)
def stats(conn: DbConn) -> Stats:
    """Counts of units, readings, events, dead letters, alerts per kind and cases (the demo summary's)."""
    counts = queries.summary_counts(conn)
    return Stats(
        units=counts["units"], readings=counts["readings"], events=counts["events"],
        dead_letters=counts["dead_letters"], alerts_by_kind=queries.alert_kinds(counts),
        alerts_open=counts["alerts_open"], cases_open=counts["cases_open"], cases_filed=counts["cases_filed"],
        agents=counts["agents"],
    )


@router.get("/agents", response_model=list[AgentStatus])
def list_agents(conn: DbConn) -> list[AgentStatus]:
    """Every edge agent's last reported status."""
    return queries.list_agents(conn)
