"""The case state machine as data: which action moves a case from which status to which, and who may."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.auth.models import Role

STATUSES = ("open", "assigned", "visit_scheduled", "confirmed", "dismissed", "filed", "closed")

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
    SCHEDULE_VISIT = "schedule_visit"
    CONFIRM = "confirm"
    DISMISS = "dismiss"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class Transition:
    """From which statuses an action is allowed, the status it leads to, and the roles that may take it."""

    sources: frozenset[str]
    target: str
    roles: frozenset[Role]


TRANSITIONS: dict[Action, Transition] = {
    Action.ASSIGN: Transition(frozenset({"open", "assigned"}), "assigned",
                              frozenset({Role.SUPERVISOR, Role.ADMIN})),
    Action.SCHEDULE_VISIT: Transition(frozenset({"assigned", "visit_scheduled"}), "visit_scheduled",
                                      frozenset({Role.INSPECTOR, Role.SUPERVISOR, Role.ADMIN})),
    Action.CONFIRM: Transition(frozenset({"assigned", "visit_scheduled"}), "confirmed",
                               frozenset({Role.INSPECTOR, Role.SUPERVISOR, Role.ADMIN})),
    Action.DISMISS: Transition(frozenset({"open", "assigned", "visit_scheduled"}), "dismissed",
                               frozenset({Role.INSPECTOR, Role.SUPERVISOR, Role.ADMIN})),
    Action.CLOSE: Transition(frozenset({"dismissed", "filed"}), "closed",
                             frozenset({Role.SUPERVISOR, Role.ADMIN})),
}


def allowed_actions(status: str, role: Role) -> list[Action]:
    """The actions this role may take on a case in this status (what the page offers as buttons)."""
    return [a for a, t in TRANSITIONS.items() if status in t.sources and role in t.roles]
