"""May a unit be flagged (an alert opened or refreshed) for a kind now? One rule, after people's decisions.

Without it a dismissed unit comes back with the next detection run: dismissing closes its alert, the
detector finds no open alert, opens one on the same evidence and attaches it to the case. So after a
decision on a case (dismissed, confirmed, or closed by the tenancy system) the same unit and kind stay
quiet until the evidence is new:

- the data window no longer overlaps the one the decision saw (every day of it came after), and
- a policy period, set by the outcome and the dismissal reason, has passed since the last data day the
  decision saw (``SUPPRESS_DAYS``; documented in ``docs/inspector.md``).

Both count data days (the detector's ``as_of``), not the wall clock. ``clearance`` is the pure rule;
``latest_decision`` and ``may_flag`` are its lookup for the detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg

# Data days after the decided evidence's last day during which the unit and kind stay quiet, by the
# dismissal reason (a hospital stay or a trip ends; a night-shift worker's pattern does not), then by
# outcome: a confirmed case is the tenancy system's to act on; one it closed (e.g. moved out) likewise.
SUPPRESS_DAYS: dict[str, int] = {
    "travel": 30,
    "hospital": 30,
    "night_shift": 180,
    "elderly_low_use": 180,
    "side_entrance": 180,
    "meter_fault": 14,
    "new_lease": 90,
    "tenant_present": 90,
    "other": 30,
    "confirmed": 180,
    "closed": 90,
}
DEFAULT_SUPPRESS_DAYS = 30

# Case statuses before any decision: a new alert attaches to such a case, which is never suppressed.
UNDECIDED = frozenset({"open", "assigned", "accepted", "visit_scheduled", "visited"})


@dataclass(frozen=True, slots=True)
class Decision:
    """The latest decided case of a unit and kind: its outcome (``dismissed``, ``confirmed`` or
    ``closed`` without a verdict), the dismissal reason, and the last data day its evidence covered."""

    case_id: int
    outcome: str
    reason: str | None
    window_end: date

    @property
    def quiet_days(self) -> int:
        """The policy period of this decision, in data days."""
        key = self.reason if self.outcome == "dismissed" and self.reason else self.outcome
        return SUPPRESS_DAYS.get(key, DEFAULT_SUPPRESS_DAYS)


@dataclass(frozen=True, slots=True)
class Clearance:
    """Whether the unit may be flagged now, and why (``code``): ``no_decision``, ``same_evidence``
    (the window overlaps the decided one), ``quiet_period``, or ``new_evidence`` (flagged after a
    decision on data that all came after it). ``resumes_on``: the first as-of day it may be flagged."""

    allowed: bool
    code: str
    decision: Decision | None = None
    resumes_on: date | None = None

    def to_dict(self) -> dict[str, Any]:
        """For an audit row's detail."""
        d = self.decision
        return {"clearance": self.code, "after_case": d.case_id if d else None,
                "after_outcome": d.outcome if d else None, "after_reason": d.reason if d else None,
                "decided_window_end": d.window_end.isoformat() if d else None}


def clearance(decision: Decision | None, *, window_start: date, as_of: date) -> Clearance:
    """May a unit with this ``decision`` behind it be flagged on the window ``window_start``..``as_of``?"""
    if decision is None:
        return Clearance(True, "no_decision")
    window_days = (as_of - window_start).days + 1
    resumes = max(decision.window_end + timedelta(days=window_days),
                  decision.window_end + timedelta(days=decision.quiet_days + 1))
    if window_start <= decision.window_end:
        return Clearance(False, "same_evidence", decision, resumes)
    if as_of < resumes:
        return Clearance(False, "quiet_period", decision, resumes)
    return Clearance(True, "new_evidence", decision, resumes)


_LATEST = """
SELECT c.id, c.status, v.verdict, v.reason_code,
       coalesce((SELECT max(a.window_end) FROM alerts a
                 WHERE a.id = ANY(c.alert_ids || c.alert_id)), c.opened_at::date)
FROM cases c
LEFT JOIN LATERAL (
    SELECT verdict, reason_code FROM case_verdicts WHERE case_id = c.id ORDER BY id DESC LIMIT 1
) v ON true
WHERE c.unit_id = %s AND c.kind = %s
ORDER BY c.id DESC LIMIT 1
"""


def latest_decision(conn: psycopg.Connection[Any], *, unit_id: str, kind: str) -> Decision | None:
    """The decision behind the unit's latest case of ``kind``; None when it has none or it is undecided."""
    row = conn.execute(_LATEST, (unit_id, kind)).fetchone()
    if row is None:
        return None
    case_id, status, verdict, reason, window_end = row
    if status in UNDECIDED or (status == "filed" and verdict is None):
        # A 'filed' case without a verdict is a lead filed as it opened before filing stopped moving
        # cases on: still undecided, so its alerts keep attaching to it.
        return None
    outcome = str(verdict) if verdict else "closed"
    return Decision(case_id=int(case_id), outcome=outcome, reason=reason, window_end=window_end)


def may_flag(
    conn: psycopg.Connection[Any], *, unit_id: str, kind: str, window_start: date, as_of: date,
) -> bool:
    """Whether the detector may open or refresh the unit's alert of ``kind`` for this window (the
    detector's one call; suppressed verdicts are not audited, as they recur on every run)."""
    decision = latest_decision(conn, unit_id=unit_id, kind=kind)
    return clearance(decision, window_start=window_start, as_of=as_of).allowed
