"""Read-only SQL of the inspector API and pages beyond the case side's (``anju.hub.cases.queries``): an
alert with its case, agents, the database's health, estates and the audit log."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from anju.hub.api.models import AgentStatus, AlertDetail, AuditPage, Health
from anju.hub.cases.alert_queue import ALERT_CASE_JOIN, ALERT_COLUMNS
from anju.hub.cases.queries import get_case
from anju.hub.cases.schemas import AuditEntry

Conn = psycopg.Connection[Any]


def get_alert(conn: Conn, *, alert_id: int) -> AlertDetail | None:
    """One alert with its evidence and case, or None when there is no such alert."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {ALERT_COLUMNS}, a.evidence FROM alerts a {ALERT_CASE_JOIN} WHERE a.id = %s",
            (alert_id,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    if row["evidence"] is None:
        row.pop("evidence")
    case = get_case(conn, case_id=row["case_id"]) if row["case_id"] is not None else None
    return AlertDetail.model_validate({**row, "case": case.model_dump() if case else None})


def list_agents(conn: Conn) -> list[AgentStatus]:
    """Every edge agent's last reported status, by estate then agent."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT agent_id, estate_id, state, payload, updated_at FROM agent_status"
            " ORDER BY estate_id NULLS LAST, agent_id"
        )
        return [AgentStatus.model_validate(r) for r in cur.fetchall()]


def database_health(conn: Conn) -> Health:
    """Whether the database answers, and whether the TimescaleDB or the plain-PostgreSQL path is in use."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT current_setting('server_version'),"
            " (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),"
            " (SELECT relkind::text FROM pg_class WHERE oid = to_regclass('meter_readings'))"
        )
        row = cur.fetchone()
    version, timescale, relkind = row if row else (None, None, None)
    if relkind is None:
        storage = "no schema yet"
    elif relkind == "p":
        storage = "postgresql monthly partitions"
    elif timescale:
        storage = f"timescaledb {timescale} hypertables"
    else:
        storage = "postgresql plain tables"
    return Health(status="ok", database=True, storage=storage, server_version=version)


def list_estates(conn: Conn, *, estates: list[str] | None = None) -> list[str]:
    """Every estate with units or alerts (of ``estates`` when given), for the page's filter."""
    with conn.cursor() as cur:
        # A loose index scan per table (one probe per estate on units_estate and alerts_count) instead
        # of reading every unit and alert: the page asks for this on every load.
        cur.execute(
            """
            WITH RECURSIVE u(e) AS (
                SELECT min(estate_id) FROM units
                UNION ALL SELECT (SELECT min(estate_id) FROM units WHERE estate_id > u.e) FROM u
                WHERE u.e IS NOT NULL
            ), a(e) AS (
                SELECT min(estate_id) FROM alerts
                UNION ALL SELECT (SELECT min(estate_id) FROM alerts WHERE estate_id > a.e) FROM a
                WHERE a.e IS NOT NULL
            )
            SELECT e FROM u WHERE e IS NOT NULL UNION SELECT e FROM a WHERE e IS NOT NULL ORDER BY 1
            """
        )
        found = [str(r[0]) for r in cur.fetchall() if r[0] is not None]
    return [e for e in found if estates is None or e in estates]


def audit_rows(
    conn: Conn, *, object_type: str | None = None, object_id: str | None = None, actor: str | None = None,
    limit: int = 100, offset: int = 0,
) -> AuditPage:
    """Audit rows, newest first, filtered by object and actor."""
    params: dict[str, Any] = {"ot": object_type, "oid": object_id, "actor": actor, "limit": limit,
                              "offset": offset}
    where = """WHERE (%(ot)s::text IS NULL OR object_type = %(ot)s)
                 AND (%(oid)s::text IS NULL OR object_id = %(oid)s)
                 AND (%(actor)s::text IS NULL OR actor = %(actor)s)"""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT count(*) AS n FROM audit_log {where}", params)
        total_row = cur.fetchone()
        cur.execute(
            f"SELECT seq, ts, actor, action, object_type, object_id, detail, mac FROM audit_log {where}"
            " ORDER BY seq DESC LIMIT %(limit)s OFFSET %(offset)s", params,
        )
        items = [AuditEntry.model_validate(r) for r in cur.fetchall()]
    return AuditPage(total=int(total_row["n"]) if total_row else 0, limit=limit, offset=offset, items=items)


def case_audit(conn: Conn, *, case_id: int, alert_ids: list[int]) -> list[AuditEntry]:
    """The audit trail of one case and its alerts, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT seq, ts, actor, action, object_type, object_id, detail, mac FROM audit_log"
            " WHERE (object_type = 'case' AND object_id = %s)"
            "    OR (object_type = 'alert' AND object_id = ANY(%s)) ORDER BY seq",
            (str(case_id), [str(a) for a in alert_ids]),
        )
        return [AuditEntry.model_validate(r) for r in cur.fetchall()]


