"""Read-only SQL behind the inspector API and pages; ``summary_counts`` is shared with the demo summary."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from anju.hub.api.models import (
    AgentStatus,
    AlertDetail,
    AuditEntry,
    AuditPage,
    CaseDetail,
    CasePage,
    CaseSummary,
    Filing,
    Health,
    InspectorVerdict,
    UnitDay,
    UnitDetail,
    UnitTrail,
)
from anju.hub.api.queue_queries import ALERT_CASE_JOIN, ALERT_COLUMNS, list_alerts
from anju.hub.cases.workflow import OVERDUE_SQL, STAGE_SQL

__all__ = ["list_alerts"]  # the queue's query, kept importable from here

Conn = psycopg.Connection[Any]

# Kinds that always appear in the counts, even at zero, because the demo summary names them.
SUMMARY_KINDS = ("vacancy", "sublet")

_FILING_COLUMNS = """
    o.id, o.kind, o.idempotency_key, o.state, o.attempts, o.next_attempt_at, o.last_error, o.sent_at,
    o.response_status
"""



def _case_select(*, with_evidence: bool) -> str:
    """SELECT of cases with their filing (an update only for a legacy case without one) and whether any
    delivery is dead-lettered; the (large) evidence column only when asked for."""
    evidence = "c.evidence" if with_evidence else "NULL::jsonb"
    return f"""
        SELECT c.id, c.unit_id, c.estate_id, c.kind, c.alert_id, c.status, c.opened_at, c.filed_at,
               c.evidence_sha256, c.assignee, c.visit_on, c.closed_at, c.alert_ids, c.due_at,
               {OVERDUE_SQL} AS overdue, c.escalations, c.escalated_at, c.accepted_at, c.visited_at,
               c.city_case_no, {STAGE_SQL} AS stage,
               EXISTS (SELECT 1 FROM tenancy_outbox d WHERE d.case_id = c.id AND d.state = 'dead')
                   AS filing_dead,
               ARRAY(SELECT d.state FROM tenancy_outbox d WHERE d.case_id = c.id ORDER BY d.id) AS deliveries,
               ARRAY(SELECT d.state FROM tenancy_outbox d WHERE d.case_id = c.id AND d.kind = 'update'
                     ORDER BY d.id) AS updates,
               {evidence} AS evidence, to_jsonb(f) AS filing
        FROM cases c
        LEFT JOIN LATERAL (
            SELECT {_FILING_COLUMNS} FROM tenancy_outbox o WHERE o.case_id = c.id
            ORDER BY (o.kind = 'filing') DESC, o.id DESC LIMIT 1
        ) f ON true
    """


_CASE_FILTER = """
    WHERE (%(estate)s::text IS NULL OR c.estate_id = %(estate)s)
      AND (%(kind)s::text IS NULL OR c.kind = %(kind)s)
      AND (%(status)s::text IS NULL OR c.status = %(status)s)
      AND (%(unit)s::text IS NULL OR c.unit_id = %(unit)s)
      AND (%(estates)s::text[] IS NULL OR c.estate_id = ANY(%(estates)s))
"""


def summary_counts(conn: Conn) -> dict[str, int]:
    """Units, readings, events, dead letters, alerts per kind (``alerts_<kind>``), open and filed cases."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT (SELECT count(*) FROM units) AS units,
                   (SELECT count(*) FROM meter_readings) AS readings,
                   (SELECT count(*) FROM access_events) AS events,
                   (SELECT count(*) FROM dead_letters) AS dead_letters,
                   (SELECT count(*) FROM alerts WHERE status = 'open') AS alerts_open,
                   (SELECT count(*) FROM cases WHERE status <> 'closed') AS cases_open,
                   (SELECT count(*) FROM cases WHERE filed_at IS NOT NULL) AS cases_filed,
                   (SELECT count(*) FROM agent_status) AS agents
            """
        )
        row = cur.fetchone()
        assert row is not None  # a SELECT without FROM always gives one row
        counts = {key: int(value) for key, value in row.items()}
        counts.update({f"alerts_{kind}": 0 for kind in SUMMARY_KINDS})
        cur.execute("SELECT kind, count(*) AS n FROM alerts GROUP BY kind ORDER BY kind")
        counts.update({f"alerts_{r['kind']}": int(r["n"]) for r in cur.fetchall()})
    return counts


def alert_kinds(counts: dict[str, int]) -> dict[str, int]:
    """The ``alerts_<kind>`` entries of ``summary_counts``, keyed by kind."""
    kinds = (k for k in counts if k.startswith("alerts_") and k != "alerts_open")
    return {k.removeprefix("alerts_"): counts[k] for k in kinds}


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


def list_cases(
    conn: Conn,
    *,
    estate: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    unit: str | None = None,
    estates: list[str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> CasePage:
    """Cases matching the filters, newest first, each with its latest filing state."""
    params: dict[str, Any] = {
        "estate": estate, "kind": kind, "status": status, "unit": unit, "estates": estates, "limit": limit,
        "offset": offset,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT count(*) AS n FROM cases c {_CASE_FILTER}", params)
        total_row = cur.fetchone()
        cur.execute(
            f"{_case_select(with_evidence=False)} {_CASE_FILTER}"
            " ORDER BY c.opened_at DESC NULLS LAST, c.id DESC"
            " LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )
        items = [CaseSummary.model_validate(r) for r in cur.fetchall()]
    total = int(total_row["n"]) if total_row else 0
    return CasePage(total=total, limit=limit, offset=offset, items=items)


def get_case(conn: Conn, *, case_id: int) -> CaseDetail | None:
    """One case with its evidence and every filing attempt, or None when there is no such case."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"{_case_select(with_evidence=True)} WHERE c.id = %s", (case_id,))
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute(
            f"SELECT {_FILING_COLUMNS} FROM tenancy_outbox o WHERE o.case_id = %s ORDER BY o.id", (case_id,)
        )
        filings = [Filing.model_validate(r) for r in cur.fetchall()]
    return CaseDetail.model_validate({**row, "filings": filings})


def get_unit(conn: Conn, *, unit_id: str, days: int = 60) -> UnitDetail | None:
    """One unit with its alerts, cases and last ``days`` days of features, or None when unknown."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT unit_id, estate_id, building, floor, area_m2, household_size, lease_start, first_seen"
            " FROM units WHERE unit_id = %s",
            (unit_id,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute(
            "SELECT day, elec_kwh, water_m3, gas_m3, elec_hours, water_hours, gas_hours, tenant_entries,"
            " strangers_building, gate_events_building FROM unit_daily WHERE unit_id = %s"
            " ORDER BY day DESC LIMIT %s",
            (unit_id, days),
        )
        recent = [UnitDay.model_validate(r) for r in reversed(cur.fetchall())]
    alerts = list_alerts(conn, unit=unit_id, limit=500).items
    cases = list_cases(conn, unit=unit_id, limit=500).items  # same unit, so the same estate as checked
    return UnitDetail.model_validate({**row, "alerts": alerts, "cases": cases, "recent_days": recent})


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


def unit_trail(conn: Conn, *, unit_id: str) -> UnitTrail | None:
    """A household's case trail: its unit, alerts, cases with verdicts, and every audit row about them."""
    unit = get_unit(conn, unit_id=unit_id, days=0)
    if unit is None:
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT case_id, alert_id, verdict, reason_code, note, score, rule_version, decided_by,"
            " decided_at"
            " FROM case_verdicts WHERE unit_id = %s ORDER BY id", (unit_id,),
        )
        verdicts = [InspectorVerdict.model_validate(r) for r in cur.fetchall()]
        cur.execute(
            "SELECT seq, ts, actor, action, object_type, object_id, detail, mac FROM audit_log"
            " WHERE (object_type = 'unit' AND object_id = %s)"
            "    OR (object_type = 'case' AND object_id = ANY(%s))"
            "    OR (object_type = 'alert' AND object_id = ANY(%s)) ORDER BY seq",
            (unit_id, [str(c.id) for c in unit.cases], [str(a.id) for a in unit.alerts]),
        )
        audit = [AuditEntry.model_validate(r) for r in cur.fetchall()]
    return UnitTrail(unit_id=unit.unit_id, estate_id=unit.estate_id, alerts=unit.alerts, cases=unit.cases,
                     verdicts=verdicts, audit=audit)
