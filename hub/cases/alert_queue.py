"""Read-only SQL of the alert queue: filters, the three orders, keyset paging with counts, the visit list.

The queue pages by keyset (``after``/``before``: the id of the last or first row shown) so that a page
deep in 100,000 alerts costs what the first one does; the counts (the total and how many rows come before
the page) are index-only counts with the same filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from anju.hub.cases.schemas import AlertPage, AlertSort, AlertSummary, Evidence
from anju.hub.cases.workflow import OVERDUE_SQL as WORKFLOW_OVERDUE_SQL

Conn = psycopg.Connection[Any]

ALERT_COLUMNS = f"""
    a.id, a.unit_id, a.estate_id, a.kind, a.status, a.score, a.first_flagged, a.last_flagged,
    current_date - a.first_flagged AS age_days, a.window_end - a.first_flagged AS data_age_days,
    a.reasons, a.rule_version, a.window_start, a.window_end,
    a.created_at, a.updated_at,
    c.id AS case_id, c.status AS case_status, c.assignee AS case_assignee, c.visit_on AS case_visit_on,
    c.due_at AS case_due_at, {WORKFLOW_OVERDUE_SQL} AS case_overdue,
    c.escalations AS case_escalations,
    EXISTS (SELECT 1 FROM tenancy_outbox o WHERE o.case_id = c.id AND o.state = 'dead') AS case_filing_dead,
    u.address AS unit_address, u.building AS unit_building, u.floor AS unit_floor,
    u.household_size AS unit_household_size, u.lease_start AS unit_lease_start, u.area_m2 AS unit_area_m2,
    u.faces_enrolled AS unit_faces_enrolled
"""

# The case an alert belongs to: the one opened from it or it was attached to, else (while the alert is
# open) the unit's non-closed case of the same kind, to which re-alerts attach. Then the unit's facts.
ALERT_CASE_JOIN = """
    LEFT JOIN LATERAL (
        SELECT c.id, c.status, c.assignee, c.visit_on, c.due_at, c.escalations FROM cases c
        WHERE c.unit_id = a.unit_id AND c.kind = a.kind
          AND (c.alert_id = a.id OR a.id = ANY(c.alert_ids) OR (a.status = 'open' AND c.status <> 'closed'))
        ORDER BY (c.alert_id = a.id) DESC, c.id DESC
        LIMIT 1
    ) c ON true
    LEFT JOIN units u ON u.unit_id = a.unit_id
"""

_ALERT_FILTER = """
    WHERE (%(estate)s::text IS NULL OR a.estate_id = %(estate)s)
      AND (%(kind)s::text IS NULL OR a.kind = %(kind)s)
      AND (%(status)s::text IS NULL OR a.status = %(status)s)
      AND (%(unit)s::text IS NULL OR a.unit_id = %(unit)s)
      AND (%(estates)s::text[] IS NULL OR a.estate_id = ANY(%(estates)s))
"""

# The queue's orders as (column, descending); each is walked in an index (35_alert_queue.sql for risk,
# 36_alert_queue_age.sql for age, forwards for the oldest, backwards for the newest), the id breaking
# ties so that pages are stable. score, last_flagged and first_flagged are NOT NULL.
ORDER_KEYS: dict[AlertSort, tuple[tuple[str, bool], ...]] = {
    AlertSort.RISK: (("score", True), ("last_flagged", True), ("id", False)),
    AlertSort.OLDEST: (("first_flagged", False), ("id", False)),
    AlertSort.NEWEST: (("first_flagged", True), ("id", True)),
}


def order_sql(sort: AlertSort, *, reverse: bool = False) -> str:
    """ORDER BY of ``sort`` over alias ``a`` (``reverse``: walked the other way, for a previous page)."""
    return ", ".join(f"a.{col} {'DESC' if desc != reverse else 'ASC'}" for col, desc in ORDER_KEYS[sort])


ALERT_ORDERS: dict[AlertSort, str] = {s: order_sql(s) for s in AlertSort}


def keyset_sql(sort: AlertSort, *, reverse: bool = False) -> str:
    """The condition "comes after the cursor row" in ``sort`` (``reverse``: before it), the cursor's key
    columns as ``%(k_<column>)s``; a leading bound on the first column lets the index range start there."""
    keys = ORDER_KEYS[sort]
    alternatives = []
    for i, (col, desc) in enumerate(keys):
        op = "<" if desc != reverse else ">"
        equal = [f"a.{c} = %(k_{c})s" for c, _ in keys[:i]]
        alternatives.append("(" + " AND ".join([*equal, f"a.{col} {op} %(k_{col})s"]) + ")")
    first, desc = keys[0]
    bound = f"a.{first} {'<=' if desc != reverse else '>='} %(k_{first})s"
    return f" AND {bound} AND ({' OR '.join(alternatives)})"


def _age_filter(min_age_days: int | None, max_age_days: int | None) -> str:
    """The age conditions (days since first flagged) that are asked for, and no others: a range on
    ``first_flagged`` the planner can put on an index, where ``%s IS NULL OR`` would hide it."""
    clauses = []
    if min_age_days is not None:
        clauses.append(" AND a.first_flagged <= current_date - %(min_age)s::int")
    if max_age_days is not None:
        clauses.append(" AND a.first_flagged >= current_date - %(max_age)s::int")
    return "".join(clauses)


# Alerts that belong to a case matching a condition on ``c``: the alert it was opened from and every
# alert attached to it since (the case service records each in ``alert_ids`` as it attaches it). The
# ids are gathered once from the matching cases (a few thousand at most) and the alerts read by id, so
# neither the count nor the page probes a case for each of 100,000 alerts.
_CASE_MEMBERS = """
    AND a.id = ANY(ARRAY(SELECT unnest(c.alert_ids || c.alert_id) FROM cases c WHERE {cond}))
"""


@dataclass(frozen=True, slots=True)
class CaseConditions:
    """Conditions on an alert's case: its assignee, its state, whether it is past its deadline."""

    assignee: str | None = None
    state: str | None = None
    overdue: bool = False

    def sql(self) -> str:
        """The alert-side condition, or nothing when no case condition is asked for."""
        conds = []
        if self.assignee is not None:
            conds.append("c.assignee = %(assignee)s")
        if self.state is not None:
            conds.append("c.status = %(case_state)s")
        if self.overdue:
            conds.append(OVERDUE_SQL)
        return _CASE_MEMBERS.format(cond=" AND ".join(conds)) if conds else ""


# A case past its deadline (超期): the workflow's own rule, hub/cases/workflow.py.
OVERDUE_SQL = WORKFLOW_OVERDUE_SQL


def search_pattern(text: str) -> str:
    """An ILIKE pattern matching text that contains ``text`` (its wildcards taken literally)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


unit_pattern = search_pattern

# Search by unit id or by the unit's address (a hashed set of the matching units, not a probe per alert).
_SEARCH = """
    AND (a.unit_id ILIKE %(like)s ESCAPE '\\'
         OR a.unit_id IN (SELECT un.unit_id FROM units un WHERE un.address ILIKE %(like)s ESCAPE '\\'))
"""


def list_alerts(
    conn: Conn,
    *,
    estate: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    unit: str | None = None,
    estates: list[str] | None = None,
    min_age_days: int | None = None,
    max_age_days: int | None = None,
    sort: AlertSort = AlertSort.RISK,
    assignee: str | None = None,
    unit_search: str | None = None,
    case_state: str | None = None,
    overdue: bool = False,
    limit: int = 50,
    offset: int = 0,
    after: int | None = None,
    before: int | None = None,
) -> AlertPage:
    """Alerts matching the filters, in ``sort`` order: by default highest score first, most recently
    flagged next. ``min_age_days``/``max_age_days``: first flagged at least / at most that many days ago;
    ``assignee``, ``case_state``, ``overdue``: conditions on the alert's case; ``unit_search``: unit ids
    or addresses containing this text. Pages by ``offset``, or by keyset: ``after`` (the rows following
    the alert of that id, in this order) or ``before`` (the rows preceding it); a cursor that is not
    an alert gives the first page."""
    sort = AlertSort(sort)
    params: dict[str, Any] = {
        "estate": estate, "kind": kind, "status": status, "unit": unit, "estates": estates, "limit": limit,
        "offset": offset, "min_age": min_age_days, "max_age": max_age_days, "assignee": assignee,
        "case_state": case_state, "like": search_pattern(unit_search) if unit_search is not None else None,
    }
    where = (_ALERT_FILTER + _age_filter(min_age_days, max_age_days)
             + CaseConditions(assignee, case_state, overdue).sql()
             + (_SEARCH if unit_search is not None else ""))
    cursor_id = after if after is not None else before
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT count(*) AS n FROM alerts a {where}", params)
        total_row = cur.fetchone()
        total = int(total_row["n"]) if total_row else 0
        keyset, reverse = "", False
        if cursor_id is not None:
            cur.execute("SELECT id, score, last_flagged, first_flagged FROM alerts WHERE id = %s",
                        (cursor_id,))
            key = cur.fetchone()
            if key is not None:
                params.update({f"k_{k}": v for k, v in key.items()})
                reverse = before is not None
                keyset = keyset_sql(sort, reverse=reverse)
                params["offset"] = 0
        # The page's ids first (an index-only walk, see 35_alert_queue.sql), then only those rows with
        # their case: joining cases before LIMIT/OFFSET would look up a case for every skipped row.
        cur.execute(
            f"""
            WITH page AS (
                SELECT a.id FROM alerts a {where} {keyset}
                ORDER BY {order_sql(sort, reverse=reverse)}
                LIMIT %(limit)s OFFSET %(offset)s
            )
            SELECT {ALERT_COLUMNS} FROM page JOIN alerts a ON a.id = page.id {ALERT_CASE_JOIN}
            ORDER BY {ALERT_ORDERS[sort]}
            """,
            params,
        )
        items = [AlertSummary.model_validate(r) for r in cur.fetchall()]
        start = offset if not keyset else 0
        if keyset and items:
            # How many rows come before this page: the page's position among the total.
            params.update({f"k_{k}": getattr(items[0], k) for k in ("id", "score", "last_flagged",
                                                                      "first_flagged")})
            preceding = keyset_sql(sort, reverse=True)
            cur.execute(f"SELECT count(*) AS n FROM alerts a {where} {preceding}", params)
            before_row = cur.fetchone()
            start = int(before_row["n"]) if before_row else 0
    has_next = start + len(items) < total
    return AlertPage(
        total=total, limit=limit, offset=start, items=items,
        next_after=items[-1].id if items and has_next else None,
        prev_before=items[0].id if items and start > 0 else None,
    )


def page_evidence(conn: Conn, alert_ids: list[int]) -> dict[int, Evidence]:
    """The evidence series of these alerts (a page's worth), by id: the pages take their reasons'
    figures from the same series the charts draw."""
    if not alert_ids:
        return {}
    with conn.cursor() as cur:
        # Only the series a reason speaks of (reason_figures.CHARTED), not every chart's.
        cur.execute(
            "SELECT id, jsonb_strip_nulls(jsonb_build_object('days', evidence->'days',"
            " 'electricity', evidence->'electricity', 'water', evidence->'water',"
            " 'tenant_entries', evidence->'tenant_entries', 'strangers', evidence->'strangers'))"
            " FROM alerts WHERE id = ANY(%s)", (alert_ids,))
        return {int(i): Evidence.model_validate(e or {}) for i, e in cur.fetchall()}


def risk_rank(conn: Conn, *, estate_id: str, score: float) -> tuple[int, int]:
    """Where an open alert of this score ranks among the estate's open alerts: (rank, how many)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FILTER (WHERE score > %(s)s) + 1, count(*) FROM alerts"
            " WHERE estate_id = %(e)s AND status = 'open'", {"s": score, "e": estate_id},
        )
        row = cur.fetchone()
    return (int(row[0]), int(row[1])) if row else (1, 1)
