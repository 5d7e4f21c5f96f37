"""Read-only SQL of the case side: cases with their deliveries, a unit with its alerts and cases, a unit's
whole trail, and the counts the demo prints. The inspector API, its pages and the CLI read through here.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from anju.hub.cases.alert_queue import list_alerts
from anju.hub.cases.schemas import (
    AuditEntry,
    CaseDetail,
    CasePage,
    CaseSummary,
    Filing,
    InspectorVerdict,
    UnitDay,
    UnitDetail,
    UnitTrail,
)
from anju.hub.cases.workflow import OVERDUE_SQL, STAGE_SQL

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
            "SELECT unit_id, estate_id, building, floor, area_m2, household_size, lease_start,"
            " faces_enrolled, first_seen FROM units WHERE unit_id = %s",
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
