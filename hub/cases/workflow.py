"""Deadlines of the case workflow by the bureau's steps (派单, 签收, 走访, 核实, 办结), from policy.

The policy is ``hub/cases/workflow.yaml`` (each number documented there). A case's deadline is set as it
enters a status (``due_after``) and stored on the case (``cases.due_at``), so "overdue" is one indexed
comparison with the clock (``OVERDUE_SQL``) at any queue size. Pure: no database here.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

POLICY_FILE = Path(__file__).with_name("workflow.yaml")

# The bureau's step each status stands at: the last step done (open: none yet).
STAGE_OF: dict[str, str] = {
    "open": "opened",
    "assigned": "assigned",  # 派单
    "accepted": "accepted",  # 签收
    "visit_scheduled": "visit",  # 走访 (scheduled)
    "visited": "visit",  # 走访 (done)
    "confirmed": "verified",  # 核实
    "dismissed": "verified",
    "filed": "verified",
    "closed": "closed",  # 办结
}

# Which deadline a case in each status runs against: the step it waits for.
NEXT_STEP_DEADLINE: dict[str, str] = {
    "open": "assign",
    "assigned": "accept",
    "accepted": "visit",
    "visit_scheduled": "visit",
    "visited": "verify",
    "confirmed": "close",
    "dismissed": "close",
    "filed": "close",
}

# A case past its deadline, or whose scheduled visit day went by without the visit recorded (SQL over
# ``cases c``; ``is_overdue`` says the same in Python): the queue's overdue filter and the case use this.
OVERDUE_SQL = ("(c.status <> 'closed' AND ((c.due_at IS NOT NULL AND c.due_at < now())"
               " OR (c.status = 'visit_scheduled' AND c.visit_on IS NOT NULL"
               " AND c.visit_on < current_date)))")
# The step a case stands at (SQL over ``cases c``), as ``STAGE_OF`` says.
STAGE_SQL = "(CASE c.status " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in STAGE_OF.items()) + " END)"


class DeadlineDays(BaseModel):
    """Days each step may take (see workflow.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assign: float = Field(gt=0)
    accept: float = Field(gt=0)
    visit: float = Field(gt=0)
    verify: float = Field(gt=0)
    close: float = Field(gt=0)


class WorkflowPolicy(BaseModel):
    """The workflow's policy: the deadline of each step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deadline_days: DeadlineDays

    def allowance(self, step: str) -> timedelta:
        """How long ``step`` (assign, accept, visit, verify, close) may take."""
        return timedelta(days=float(getattr(self.deadline_days, step)))


def load_policy(path: Path = POLICY_FILE) -> WorkflowPolicy:
    """Read a workflow policy file; raise ``pydantic.ValidationError`` on a wrong or missing number."""
    return WorkflowPolicy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def default_policy() -> WorkflowPolicy:
    """The packaged policy, read once (the hub builds its own with ``load_policy`` and passes it down)."""
    return load_policy()


def due_after(policy: WorkflowPolicy, status: str, since: datetime) -> datetime | None:
    """The deadline of a case that entered ``status`` at ``since``; None for a closed case."""
    step = NEXT_STEP_DEADLINE.get(status)
    return since + policy.allowance(step) if step else None


def is_overdue(status: str, due_at: datetime | None, now: datetime, visit_on: date | None = None) -> bool:
    """超期: the case is not closed and its deadline has passed, or its scheduled visit day went by
    without the visit recorded (``visit_on`` before ``now``'s day)."""
    if status == "closed":
        return False
    missed_visit = status == "visit_scheduled" and visit_on is not None and visit_on < now.date()
    return missed_visit or (due_at is not None and now > due_at)
