"""The inspector API's own request and response models (the case side's read models, which the API
returns too, are ``anju.hub.cases.schemas``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from anju.hub.cases.schemas import AlertSummary, AuditEntry, CaseDetail, CaseSummary, Evidence
from anju.hub.monitor import PartHealth

# An estate id as a person's scope names it, e.g. E01.
Estate_ = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class AlertDetail(AlertSummary):
    """An alert with its evidence series and the case it belongs to, if any."""

    evidence: Evidence = Field(default_factory=Evidence)
    case: CaseSummary | None = None


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
