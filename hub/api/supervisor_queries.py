"""Read-only SQL of the supervisor's page: workload per inspector, open and overdue per estate, verdict
rates with their reasons, new alerts per week, and days from assignment to verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from anju.hub.cases.alert_queue import OVERDUE_SQL

Conn = psycopg.Connection[Any]

# A case in hand: not yet decided (the workflow's steps before 核实).
ACTIVE_SQL = "c.status IN ('open', 'assigned', 'accepted', 'visit_scheduled', 'visited')"


@dataclass(frozen=True, slots=True)
class Workload:
    """One inspector's cases: active, overdue, visits in the coming week, verdicts and their median time."""

    inspector: str
    active: int
    overdue: int
    visits_this_week: int
    confirmed: int
    dismissed: int
    median_days: float | None  # from assignment to verdict


@dataclass(frozen=True, slots=True)
class EstateLoad:
    """One estate's open alerts and cases: unassigned, in hand, overdue."""

    estate_id: str
    open_alerts: int
    unassigned: int
    active: int
    overdue: int


@dataclass(slots=True)
class Overview:
    """Everything on the supervisor's page, for the estates they see."""

    workload: list[Workload] = field(default_factory=list)
    estates: list[EstateLoad] = field(default_factory=list)
    confirmed: int = 0
    dismissed: int = 0
    reasons: list[tuple[str, int]] = field(default_factory=list)  # dismissal reason, cases
    weeks: list[tuple[date, int]] = field(default_factory=list)  # week start (Monday), new alerts

    @property
    def decided(self) -> int:
        """Cases with a verdict."""
        return self.confirmed + self.dismissed

    def rate(self, n: int) -> float | None:
        """``n`` as a share of the verdicts (None before the first)."""
        return n / self.decided if self.decided else None


_SCOPE = "(%(estates)s::text[] IS NULL OR {alias}.estate_id = ANY(%(estates)s))"


def overview(conn: Conn, *, estates: list[str] | None, weeks: int = 12) -> Overview:
    """The supervisor's figures over ``estates`` (None: all): verdicts of all time, alerts of the last
    ``weeks`` weeks (this one included, empty weeks as zero)."""
    params: dict[str, Any] = {"estates": estates, "weeks": weeks}
    out = Overview()
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""
            WITH assigned AS (
                SELECT object_id::bigint AS case_id, min(ts) AS at FROM audit_log
                WHERE object_type = 'case' AND action = 'case.assign' GROUP BY object_id
            ), verdicts AS (
                SELECT DISTINCT ON (v.case_id) v.case_id, v.verdict, v.decided_at FROM case_verdicts v
                WHERE {_SCOPE.format(alias="v")} ORDER BY v.case_id, v.id DESC
            )
            SELECT c.assignee AS inspector,
                   count(*) FILTER (WHERE {ACTIVE_SQL}) AS active,
                   count(*) FILTER (WHERE {OVERDUE_SQL}) AS overdue,
                   count(*) FILTER (WHERE {ACTIVE_SQL}
                                    AND c.visit_on BETWEEN current_date AND current_date + 6)
                       AS visits_this_week,
                   count(*) FILTER (WHERE v.verdict = 'confirmed') AS confirmed,
                   count(*) FILTER (WHERE v.verdict = 'dismissed') AS dismissed,
                   percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY extract(epoch FROM v.decided_at - a.at) / 86400.0
                   ) FILTER (WHERE v.decided_at IS NOT NULL AND a.at IS NOT NULL
                             AND v.decided_at >= a.at) AS median_days
            FROM cases c
            LEFT JOIN verdicts v ON v.case_id = c.id
            LEFT JOIN assigned a ON a.case_id = c.id
            WHERE c.assignee IS NOT NULL AND {_SCOPE.format(alias="c")}
            GROUP BY c.assignee ORDER BY active DESC, c.assignee
            """,
            params,
        )
        out.workload = [Workload(**r) for r in cur.fetchall()]
        cur.execute(
            f"""
            WITH e AS (
                SELECT estate_id FROM alerts a WHERE a.status = 'open' AND {_SCOPE.format(alias="a")}
                UNION SELECT estate_id FROM cases c WHERE {_SCOPE.format(alias="c")}
            )
            SELECT e.estate_id,
                   (SELECT count(*) FROM alerts a WHERE a.estate_id = e.estate_id AND a.status = 'open')
                       AS open_alerts,
                   (SELECT count(*) FROM cases c WHERE c.estate_id = e.estate_id AND c.status = 'open')
                       AS unassigned,
                   (SELECT count(*) FROM cases c WHERE c.estate_id = e.estate_id AND {ACTIVE_SQL}) AS active,
                   (SELECT count(*) FROM cases c WHERE c.estate_id = e.estate_id AND {OVERDUE_SQL}) AS overdue
            FROM e ORDER BY e.estate_id
            """,
            params,
        )
        out.estates = [EstateLoad(**r) for r in cur.fetchall()]
        cur.execute(
            f"""
            SELECT DISTINCT ON (v.case_id) v.verdict, v.reason_code FROM case_verdicts v
            WHERE {_SCOPE.format(alias="v")} ORDER BY v.case_id, v.id DESC
            """,
            params,
        )
        reasons: dict[str, int] = {}
        for r in cur.fetchall():
            if r["verdict"] == "confirmed":
                out.confirmed += 1
            else:
                out.dismissed += 1
                key = r["reason_code"] or "other"
                reasons[key] = reasons.get(key, 0) + 1
        out.reasons = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        cur.execute(
            f"""
            SELECT date_trunc('week', a.first_flagged)::date AS week, count(*) AS n FROM alerts a
            WHERE a.first_flagged >= date_trunc('week', current_date)::date - 7 * (%(weeks)s - 1)
              AND {_SCOPE.format(alias="a")}
            GROUP BY 1
            """,
            params,
        )
        counts = {r["week"]: int(r["n"]) for r in cur.fetchall()}
    monday = date.today() - timedelta(days=date.today().weekday())
    starts = [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    out.weeks = [(w, counts.get(w, 0)) for w in starts]
    return out
