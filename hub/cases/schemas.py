"""The case side's read models, as the pages, the API, the household and the CLI read them.

An alert's reasons and the daily series behind it (frozen into the case's evidence when it opens), the
alert queue's rows and pages, cases with their deliveries to the tenancy system, a unit with its alerts,
cases and recent days, and a unit's whole trail (verdicts and audit rows) as ``anju audit export`` writes
it. The queries that fill them are ``anju.hub.cases.queries`` and ``anju.hub.cases.alert_queue``.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Reason(BaseModel):
    """One reason an alert was raised: a signal in plain words, with its value against the baseline."""

    model_config = ConfigDict(extra="allow")

    code: str = ""
    text: str = ""
    value: float | None = None
    baseline: float | None = None
    unit: str | None = None


class Evidence(BaseModel):
    """The daily series behind an alert; ``None`` marks a day without data (unknown, not zero)."""

    model_config = ConfigDict(extra="allow")

    days: list[date] = Field(default_factory=list)
    electricity: list[float | None] = Field(default_factory=list)
    water: list[float | None] = Field(default_factory=list)
    gas: list[float | None] = Field(default_factory=list)
    tenant_entries: list[float | None] = Field(default_factory=list)
    strangers: list[float | None] = Field(default_factory=list)


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
    unit_faces_enrolled: int | None = Field(None, description="the unit's faces_enrolled (see UnitDetail)")
    unit_lease_start: date | None = None
    unit_area_m2: float | None = None


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
    faces_enrolled: int | None = Field(
        None, description="people of the household with a face enrolled at the gates; 0: card, code or QR "
        "only; None: not known")
    first_seen: datetime | None = None
    alerts: list[AlertSummary] = Field(default_factory=list)
    cases: list[CaseSummary] = Field(default_factory=list)
    recent_days: list[UnitDay] = Field(default_factory=list)


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
