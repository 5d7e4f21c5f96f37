"""Response models of the inspector API: alerts, cases, units and counts as they go on the wire."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from anju.hub.cases.schemas import Evidence, Reason
from anju.hub.monitor import PartHealth

# An estate id as a person's scope names it, e.g. E01.
Estate_ = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class AlertSort(StrEnum):
    """Orders of the alert queue: highest risk first (the default), oldest or newest lead first."""

    RISK = "risk"
    OLDEST = "oldest"
    NEWEST = "newest"


class Filing(BaseModel):
    """A delivery of a case to the tenancy system, as the outbox records it."""

    id: int
    kind: str = Field("filing", description="filing: the case itself; update: a later decision on it")
    idempotency_key: str
    state: str
    attempts: int | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    response_status: int | None = None


class CaseSummary(BaseModel):
    """A case as listed: its unit, kind, status and latest filing state."""

    id: int
    unit_id: str
    estate_id: str
    kind: str
    alert_id: int | None = None
    status: str
    opened_at: datetime | None = None
    filed_at: datetime | None = None
    evidence_sha256: str | None = None
    assignee: str | None = None
    visit_on: date | None = None
    closed_at: datetime | None = None
    alert_ids: list[int] = Field(default_factory=list)
    due_at: datetime | None = Field(None, description="deadline of the step the case waits for (policy)")
    overdue: bool = Field(False, description="超期: past its deadline and not closed")
    stage: str = Field("", description="the bureau's step done last: opened, assigned (派单), accepted"
                       " (签收), visit (走访), verified (核实), closed (办结)")
    escalations: int = Field(0, description="督办: how often a supervisor escalated it while overdue")
    escalated_at: datetime | None = None
    accepted_at: datetime | None = None
    visited_at: datetime | None = None
    city_case_no: str | None = Field(None, description="the tenancy system's number of the case")
    filing: Filing | None = None
    filing_dead: bool = Field(False, description="the filing was dead-lettered: a person must look at it")
    deliveries: list[str] = Field(default_factory=list,
                                  description="state of each delivery to the tenancy system, filing first")
    updates: list[str] = Field(default_factory=list,
                               description="state of each decision sent as an update after the filing")


class CaseDetail(CaseSummary):
    """A case with its frozen evidence and every filing attempt."""

    evidence: dict[str, Any] | None = None
    filings: list[Filing] = Field(default_factory=list)


class AlertSummary(BaseModel):
    """An alert as listed: kind, unit, score, when flagged, status and its reasons."""

    id: int
    unit_id: str
    estate_id: str
    kind: str
    status: str
    score: float | None = None
    first_flagged: date | None = None
    last_flagged: date | None = None
    age_days: int | None = Field(None, description="days since the alert was first flagged")
    reasons: list[Reason] = Field(default_factory=list)
    rule_version: str | None = None
    window_start: date | None = None
    window_end: date | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    case_id: int | None = None
    case_status: str | None = None
    case_filing_dead: bool = False
    case_assignee: str | None = Field(None, description="the inspector the alert's case is assigned to")
    case_visit_on: date | None = Field(None, description="the day of the case's visit, once scheduled")
    case_due_at: datetime | None = Field(None, description="the deadline of the step the case waits for")
    case_overdue: bool | None = Field(None, description="the case is past its deadline (超期)")
    case_escalations: int | None = Field(None, description="how many times a supervisor escalated it (督办)")
    data_age_days: int | None = Field(None, description="data days from first flagged to the as-of day")
    unit_address: str | None = None
    unit_building: str | None = None
    unit_floor: int | None = None
    unit_household_size: int | None = None
    unit_lease_start: date | None = None
    unit_area_m2: float | None = None


class AlertDetail(AlertSummary):
    """An alert with its evidence series and the case it belongs to, if any."""

    evidence: Evidence = Field(default_factory=Evidence)
    case: CaseSummary | None = None


class AlertPage(BaseModel):
    """One page of alerts, highest score first; ``offset``: how many matching alerts come before it."""

    total: int
    limit: int
    offset: int
    items: list[AlertSummary]
    next_after: int | None = Field(None, description="pass as ``after`` for the next page; none at the end")
    prev_before: int | None = Field(None, description="pass as ``before`` for the previous page")


class CasePage(BaseModel):
    """One page of cases, newest first."""

    total: int
    limit: int
    offset: int
    items: list[CaseSummary]


class UnitDay(BaseModel):
    """One day of a unit's features (``None``: not known that day)."""

    day: date
    elec_kwh: float | None = None
    water_m3: float | None = None
    gas_m3: float | None = None
    elec_hours: int | None = None
    water_hours: int | None = None
    gas_hours: int | None = None
    tenant_entries: int | None = None
    strangers_building: int | None = None
    gate_events_building: int | None = None


class UnitDetail(BaseModel):
    """A unit: its registry data, its alerts and cases, and its most recent daily features."""

    unit_id: str
    estate_id: str
    building: str | None = None
    floor: int | None = None
    area_m2: float | None = None
    household_size: int | None = None
    lease_start: date | None = None
    first_seen: datetime | None = None
    alerts: list[AlertSummary] = Field(default_factory=list)
    cases: list[CaseSummary] = Field(default_factory=list)
    recent_days: list[UnitDay] = Field(default_factory=list)


class Stats(BaseModel):
    """The counts the demo summary prints, plus a few for operators."""

    units: int
    readings: int
    events: int
    dead_letters: int
    alerts_by_kind: dict[str, int]
    alerts_open: int
    cases_open: int
    cases_filed: int
    agents: int


class AgentStatus(BaseModel):
    """The last status an edge agent reported (retained ``status`` topic, or its last will)."""

    agent_id: str
    estate_id: str | None = None
    state: str | None = None
    payload: dict[str, Any] | None = None
    updated_at: datetime | None = None


class Health(BaseModel):
    """Whether the database answers, which storage path (TimescaleDB or plain PostgreSQL) is in use, and
    the state of the hub's background parts, with dead letters since start by estate and reason code."""

    status: str
    database: bool
    storage: str
    server_version: str | None = None
    parts: list[PartHealth] = []
    dead_letters_by_estate: dict[str, dict[str, int]] = {}


class AuditEntry(BaseModel):
    """One row of the audit log with its chain MAC."""

    seq: int
    ts: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any] = Field(default_factory=dict)
    mac: str | None = None


class AuditPage(BaseModel):
    """One page of the audit log, newest first."""

    total: int
    limit: int
    offset: int
    items: list[AuditEntry]


class AuditCheck(BaseModel):
    """The result of verifying the whole chain."""

    ok: bool
    rows: int
    head_seq: int
    head_mac: str
    bad_seq: int | None = None
    problem: str | None = None


class InspectorVerdict(BaseModel):
    """An inspector's verdict on a case, as kept for learning."""

    case_id: int
    alert_id: int | None = None
    verdict: str
    reason_code: str | None = None
    note: str = ""
    score: float | None = None
    rule_version: str | None = None
    decided_by: str
    decided_at: datetime


class UnitTrail(BaseModel):
    """A household's case trail: alerts, cases, verdicts and every audit row about them."""

    unit_id: str
    estate_id: str
    alerts: list[AlertSummary]
    cases: list[CaseSummary]
    verdicts: list[InspectorVerdict]
    audit: list[AuditEntry]


class CaseWithTrail(CaseDetail):
    """A case with its audit trail, and what the signed-in person can do next."""

    trail: list[AuditEntry] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list, description="the actions open to you now")
    missing: dict[str, str] = Field(
        default_factory=dict, description="each other action, with the code of why it is not open to you")
    next_step: str = Field("", description="the workflow's next step, as a code")


class LoginRequest(BaseModel):
    """Name and password."""

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Me(BaseModel):
    """The signed-in person."""

    name: str
    role: str
    estates: list[str]


class LoginAnswer(Me):
    """A new session: use ``token`` as a bearer token, or the cookie set with the answer."""

    token: str


class AssignRequest(BaseModel):
    """Assign a case to an inspector of its estate."""

    assignee: str = Field(min_length=1, max_length=64)
    note: str = Field("", max_length=2000)


class BatchAssignRequest(BaseModel):
    """Assign several cases to one inspector."""

    case_ids: list[int] = Field(min_length=1, max_length=200)
    assignee: str = Field(min_length=1, max_length=64)
    note: str = Field("", max_length=2000)


class BatchOutcome(BaseModel):
    """What happened to one case of a batch: ``assigned``, or ``not_found``, ``forbidden``, ``refused``."""

    case_id: int
    outcome: str
    detail: str = ""
    code: str = Field("", description="why, as a refusal code (hub/cases/errors.py); empty if assigned")


class BatchAnswer(BaseModel):
    """Per case, in the order asked."""

    results: list[BatchOutcome]


class VisitRequest(BaseModel):
    """Schedule the home visit."""

    visit_on: date
    note: str = Field("", max_length=2000)


class NoteRequest(BaseModel):
    """An action with an optional note (confirm, close)."""

    note: str = Field("", max_length=2000)


class DismissRequest(BaseModel):
    """Dismiss a case: a reason from the list, plus free text."""

    reason: str = Field(min_length=1, max_length=32)
    note: str = Field("", max_length=2000)


class UserInfo(BaseModel):
    """A person who may sign in: role, estates, whether the account is active (never the password)."""

    name: str
    role: str
    estates: list[str]
    active: bool
    created_at: datetime


class NewUser(BaseModel):
    """Add a person (admin): inspectors and supervisors need at least one estate."""

    name: str = Field(min_length=1, max_length=64)
    role: str = Field(min_length=1, max_length=16, description="inspector | supervisor | auditor | admin")
    password: str = Field(min_length=8, max_length=256)
    estates: list[Estate_] = Field(default_factory=list, max_length=200)


class EstatesRequest(BaseModel):
    """The estates a person may see from now on, replacing the previous list (admin)."""

    estates: list[Estate_] = Field(max_length=200)
