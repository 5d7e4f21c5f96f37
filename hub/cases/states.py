"""The case state machine as data: which action moves a case from which status to which, and who may."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from anju.hub.auth.models import Role

# The bureau's steps: 派单 assigned, 签收 accepted, 走访 visit scheduled or visited, 核实 confirmed or
# dismissed (filed: confirmed and held by the tenancy system), 办结 closed (hub/cases/workflow.py).
STATUSES = ("open", "assigned", "accepted", "visit_scheduled", "visited", "confirmed", "dismissed", "filed",
            "closed")

# Why an inspector dismissed a lead: the hard negatives the detectors must learn to survive.
DISMISS_REASONS: dict[str, tuple[str, str]] = {
    "travel": ("外出旅行", "travelling"),
    "hospital": ("住院", "hospital stay"),
    "night_shift": ("夜班作息", "night-shift worker"),
    "elderly_low_use": ("独居老人用量低", "elderly person with tiny consumption"),
    "side_entrance": ("走侧门", "uses a side entrance"),
    "meter_fault": ("表计或网关故障", "meter or gateway fault"),
    "new_lease": ("新签租约", "new lease"),
    "tenant_present": ("核实在住", "tenant found living there"),
    "other": ("其他", "other"),
}


class Action(StrEnum):
    """What a person (or the filing system) does to a case."""

    ASSIGN = "assign"
    ACCEPT = "accept"
    SCHEDULE_VISIT = "schedule_visit"
    RECORD_VISIT = "record_visit"
    CONFIRM = "confirm"
    DISMISS = "dismiss"
    CLOSE = "close"
    ESCALATE = "escalate"


@dataclass(frozen=True, slots=True)
class Transition:
    """From which statuses an action is allowed, the status it leads to (None: it stays, as for an
    escalation), and the roles that may take it."""

    sources: frozenset[str]
    target: str | None
    roles: frozenset[Role]

    def after(self, status: str) -> str:
        """The status a case in ``status`` has after this action."""
        return self.target or status


MANAGERS = frozenset({Role.SUPERVISOR, Role.ADMIN})
WORKERS = frozenset({Role.INSPECTOR, Role.SUPERVISOR, Role.ADMIN})
# A visit or verdict on an assigned case not yet accepted accepts it (the inspector took it up).
ACCEPTS_IMPLICITLY = frozenset({"assigned"})
BEFORE_VISIT = frozenset({"assigned", "accepted", "visit_scheduled"})
UNDECIDED_WORK = BEFORE_VISIT | {"visited"}
NOT_CLOSED = frozenset(STATUSES) - {"closed"}

TRANSITIONS: dict[Action, Transition] = {
    Action.ASSIGN: Transition(frozenset({"open", "assigned", "accepted"}), "assigned", MANAGERS),
    Action.ACCEPT: Transition(frozenset({"assigned"}), "accepted", WORKERS),
    Action.SCHEDULE_VISIT: Transition(BEFORE_VISIT, "visit_scheduled", WORKERS),
    Action.RECORD_VISIT: Transition(BEFORE_VISIT, "visited", WORKERS),
    Action.CONFIRM: Transition(UNDECIDED_WORK, "confirmed", WORKERS),
    Action.DISMISS: Transition(UNDECIDED_WORK | {"open"}, "dismissed", WORKERS),
    # Filing never holds a case: a confirmed case is closed whether or not the tenancy system has it yet
    # (the close then follows the filing as an update).
    Action.CLOSE: Transition(frozenset({"confirmed", "dismissed", "filed"}), "closed", MANAGERS),
    # 督办: a supervisor's escalation of an overdue case; the case keeps its status.
    Action.ESCALATE: Transition(NOT_CLOSED, None, MANAGERS),
}


def allowed_actions(status: str, role: Role) -> list[Action]:
    """The actions this role may take on a case in this status (what the page offers as buttons)."""
    return [a for a, t in TRANSITIONS.items() if status in t.sources and role in t.roles]


# Why an action a person might look for is not offered, by code (the pages word each in their language).
WHY_CLOSED = "closed"  # the case is closed: nothing more happens to it here
WHY_ROLE = "role"  # this role never takes this action
WHY_ASSIGNED_OTHER = "assigned_other"  # the case is someone else's
WHY_NEEDS_ASSIGNEE = "needs_assignee"  # a visit and a verdict come after the case is assigned
WHY_DECIDED = "decided"  # the case already has its verdict
WHY_NEEDS_VERDICT = "needs_verdict"  # a case is closed only after a verdict
WHY_ALREADY_ACCEPTED = "already_accepted"  # the case was accepted (签收) already
WHY_ALREADY_VISITED = "already_visited"  # the visit is recorded already
WHY_NOT_OVERDUE = "not_overdue"  # escalation (督办) is for a case past its deadline

DECIDED = frozenset({"confirmed", "dismissed", "filed"})


@dataclass(frozen=True, slots=True)
class CaseGuide:
    """What a person can do next on a case: the actions offered, the reason each other one is not, and
    the next step in the workflow (codes; ``hub/api`` words them)."""

    actions: tuple[Action, ...]
    missing: tuple[tuple[Action, str], ...]
    next_step: str


def _why_not(action: Action, *, status: str) -> str:
    """Why ``action`` does not apply to a case in ``status`` (its role may take it)."""
    if action is Action.CLOSE:
        return WHY_NEEDS_VERDICT
    if status in DECIDED:
        return WHY_DECIDED
    if status == "open":
        return WHY_NEEDS_ASSIGNEE
    return WHY_ALREADY_ACCEPTED if action is Action.ACCEPT else WHY_ALREADY_VISITED


def next_step(status: str, *, filing: str | None) -> str:
    """The workflow's next step for a case in ``status`` (``filing``: None, pending, sent or dead)."""
    if status == "confirmed":
        return "filing_dead" if filing == "dead" else "close_confirmed"
    return {"open": "assign", "assigned": "accept", "accepted": "visit", "visit_scheduled": "record_visit",
            "visited": "verdict", "dismissed": "close_dismissed", "filed": "close_filed",
            "closed": "none"}.get(status, "none")


def case_guide(
    status: str, role: Role, *, assignee: str | None, viewer: str, filing: str | None, overdue: bool = False,
) -> CaseGuide:
    """The buttons a person gets on a case, and why each other one is missing. ``filing``: the state of
    the case's tenancy deliveries (None: nothing queued; ``dead`` when any failed for good, ``pending``
    while any waits, else ``sent``); it never takes a button away. ``overdue``: past its deadline (超期),
    when a supervisor may escalate (督办)."""
    offered: list[Action] = []
    missing: list[tuple[Action, str]] = []
    for action, rule in TRANSITIONS.items():
        if status == "closed":
            missing.append((action, WHY_CLOSED))
        elif role not in rule.roles:
            missing.append((action, WHY_ROLE))
        elif status not in rule.sources:
            missing.append((action, _why_not(action, status=status)))
        elif action is Action.ESCALATE and not overdue:
            missing.append((action, WHY_NOT_OVERDUE))
        elif role is Role.INSPECTOR and assignee is not None and assignee != viewer:
            missing.append((action, WHY_ASSIGNED_OTHER))
        else:
            offered.append(action)
    return CaseGuide(actions=tuple(offered), missing=tuple(missing),
                     next_step=next_step(status, filing=filing))


def delivery_state(states: list[str]) -> str | None:
    """One state for all of a case's tenancy deliveries: None when none is queued, ``dead`` when any
    failed for good, ``pending`` while any waits, else ``sent``."""
    if not states:
        return None
    if "dead" in states:
        return "dead"
    return "pending" if "pending" in states else "sent"
