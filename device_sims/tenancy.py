"""Stand-in for the city tenancy system's case API, with idempotent filing and injectable faults.

``POST /api/v1/cases`` needs an ``Idempotency-Key``: the first filing answers 201, the same key with
the same body answers 200 with the same body, the same key with another body answers 409. Faults
(``POST /_sim/faults``, or ``fail_rate``), each drawn per filing from a seeded generator:
503 outage and HTTP 500 (nothing stored), a slow answer (``delay_s`` before storing: a client with a
shorter timeout gives up although the filing is then stored), and a connection reset after the
filing was stored (headers sent, body cut off); updates draw the same faults. ``GET /_sim/stats``
tallies what was injected.

A city system may not honour the key at all: ``create_app(honour_keys=False)`` (``anju sim tenancy
--ignore-idempotency-key``) stores every filing and update it receives, so a repeat is a duplicate.
``GET /api/v1/cases?case_ref=ANJU-7`` finds a filing by anju's case reference, which is how the hub
learns whether a send whose answer never came got through.

Later decisions on a filed case arrive as ``POST /api/v1/case-updates`` (the case named by its
``case_ref``, an Idempotency-Key per update, deduplicated like filings; 404 for a case never filed);
each case's listing carries them in arrival order as ``updates`` and the latest as ``workflow_status``.

Status changes flow back: each filed case has a status in the tenancy system (``filed`` at first; then
e.g. ``closed`` or ``moved_out``, set with ``POST /_sim/cases/{tenancy_case_id}/status``), readable per
case at ``GET /api/v1/cases/{tenancy_case_id}`` and as a feed ``GET /api/v1/changes?since=N`` of every
change numbered in order, so a poller resumes after the last number it applied.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import FastAPI, Header, Query
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MAX_KEY_LENGTH = 200
TENANCY_STATUSES = ("filed", "under_review", "closed", "moved_out")


class AuditCheckpoint(BaseModel):
    """The head of the hub's audit chain when the filing was queued: a copy kept outside the hub, so a
    deleted tail of its log shows (``anju audit verify --checkpoint SEQ:MAC``)."""

    model_config = ConfigDict(extra="forbid")

    seq: Annotated[int, Field(ge=0)]
    mac: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class CaseFiling(BaseModel):
    """The body of ``POST /api/v1/cases``."""

    model_config = ConfigDict(extra="forbid")

    case_ref: Annotated[str, Field(min_length=1, max_length=100)]
    unit_id: Annotated[str, Field(min_length=1, max_length=64)]
    estate_id: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Annotated[str, Field(min_length=1, max_length=32)]
    opened_at: AwareDatetime
    summary: str
    reasons: list[dict[str, Any]]
    evidence_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    audit_checkpoint: AuditCheckpoint | None = None


class CaseUpdate(BaseModel):
    """The body of ``POST /api/v1/case-updates``: a decision on a filed case, after its filing."""

    model_config = ConfigDict(extra="forbid")

    case_ref: Annotated[str, Field(min_length=1, max_length=100)]
    update_seq: Annotated[int, Field(ge=1)]
    action: Annotated[str, Field(min_length=1, max_length=32)]
    status: Annotated[str, Field(min_length=1, max_length=32)]
    decided_at: AwareDatetime
    reason: Annotated[str, Field(max_length=64)] | None = None
    visit_on: str | None = None
    audit_checkpoint: AuditCheckpoint | None = None


class FaultSettings(BaseModel):
    """Body of ``POST /_sim/faults``: make the next filings fail, or fail a share of them."""

    model_config = ConfigDict(extra="forbid")

    fail_next: Annotated[int, Field(ge=0)] = 0
    fail_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    error_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    timeout_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    delay_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    reset_rate: Annotated[float, Field(ge=0, le=1)] = 0.0


class StatusChange(BaseModel):
    """Body of ``POST /_sim/cases/{tenancy_case_id}/status``: what the housing office decided."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["filed", "under_review", "closed", "moved_out"]
    note: Annotated[str, Field(max_length=500)] = ""


@dataclass
class _Filing:
    body: dict[str, Any]
    canonical: str
    idempotency_key: str
    tenancy_case_id: str
    received_at: str
    deliveries: int = 1
    status: str = "filed"
    updates: list[dict[str, Any]] = field(default_factory=list)

    def answer(self) -> dict[str, str]:
        return {"tenancy_case_id": self.tenancy_case_id, "received_at": self.received_at}

    def listing(self) -> dict[str, Any]:
        return {
            **self.body,
            "idempotency_key": self.idempotency_key,
            "tenancy_case_id": self.tenancy_case_id,
            "received_at": self.received_at,
            "deliveries": self.deliveries,
            "status": self.status,
            "updates": list(self.updates),
            "workflow_status": self.updates[-1]["status"] if self.updates else None,
        }


@dataclass
class TenancyStore:
    """All filings in memory, by idempotency key; every access holds the lock."""

    fail_next: int = 0
    fail_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    lock: threading.Lock = field(default_factory=threading.Lock)
    filings: dict[str, _Filing] = field(default_factory=dict)
    update_keys: dict[str, str] = field(default_factory=dict)  # update key -> its canonical body
    changes: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    honour_keys: bool = True
    faults: FaultSettings = field(default_factory=FaultSettings)
    tally: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("outage_503", "error_500", "slow", "reset_after_commit", "created", "repeated", "conflict",
         "updates"), 0))

    def draw(self) -> str | None:
        """Which fault (if any) this filing gets: outage, error, slow, reset (call with the lock held)."""
        f = self.faults
        for name, rate in (("error_500", f.error_rate), ("slow", f.timeout_rate),
                           ("reset_after_commit", f.reset_rate)):
            if rate > 0 and self.rng.random() < rate:
                return name
        return None

    def should_fail(self) -> bool:
        """Whether the current filing is to answer 503 (call with the lock held)."""
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        return self.fail_rate > 0 and self.rng.random() < self.fail_rate


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


class _SimulatedReset(ConnectionResetError):
    """Raised inside a response body to make the server drop the connection mid-answer."""


def _cut_off(status: int) -> StreamingResponse:
    """An answer whose headers go out and whose body never completes: the server closes the socket."""

    def body() -> Iterator[bytes]:
        yield b'{"tenancy_case_id": '
        raise _SimulatedReset("simulated connection reset after the filing was stored")

    return StreamingResponse(body(), status_code=status, media_type="application/json",
                             headers={"content-length": "200"})


def _fault_gate(store: TenancyStore) -> tuple[JSONResponse | None, str | None]:
    """The fault this request draws: an answer to give at once (503 outage, 500 error: nothing stored),
    or the fault to play after storing (``slow``: waited out here; ``reset_after_commit``: the caller
    cuts its answer off), or none."""
    with store.lock:
        if store.should_fail():
            store.tally["outage_503"] += 1
            return _error(503, "simulated outage of the tenancy system"), None
        fault = store.draw()
        if fault is not None:
            store.tally[fault] += 1
        if fault == "error_500":
            return _error(500, "simulated internal error of the tenancy system"), fault
        delay = store.faults.delay_s
    if fault == "slow":
        time.sleep(delay)  # the client may have given up by now; the request is stored all the same
    return None, fault


def create_app(*, fail_rate: float = 0.0, seed: int = 0, honour_keys: bool = True) -> FastAPI:
    """The tenancy-system stand-in as an ASGI app, with its own empty store; ``honour_keys=False``: a city
    system that ignores Idempotency-Key (every request it receives is stored anew)."""
    store = TenancyStore(fail_rate=fail_rate, rng=random.Random(seed), honour_keys=honour_keys)
    app = FastAPI(title="Tenancy system (anju stand-in)", version="1")
    app.state.store = store

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    @app.post("/api/v1/cases", status_code=201, response_model=None)
    def file_case(
        filing: CaseFiling,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse | StreamingResponse:
        """File a case once per idempotency key."""
        if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
            return _error(400, f"an Idempotency-Key header of 1..{MAX_KEY_LENGTH} characters is required")
        body = filing.model_dump(mode="json")
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        refused, fault = _fault_gate(store)
        if refused is not None:
            return refused
        with store.lock:
            known = store.filings.get(idempotency_key) if store.honour_keys else None
            if known is not None:
                if known.canonical != canonical:
                    store.rejected += 1
                    store.tally["conflict"] += 1
                    return _error(409, "this Idempotency-Key was used with a different body")
                known.deliveries += 1
                store.tally["repeated"] += 1
                status, answer = 200, known.answer()
            else:
                created = _Filing(
                    body=body, canonical=canonical, idempotency_key=idempotency_key,
                    tenancy_case_id=f"TC-{len(store.filings) + 1:06d}",
                    received_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                )
                # Ignoring keys, a repeat is a second case: each filing is kept under its own number.
                store.filings[idempotency_key if store.honour_keys else created.tenancy_case_id] = created
                store.tally["created"] += 1
                status, answer = 201, created.answer()
        if fault == "reset_after_commit":
            return _cut_off(status)
        return JSONResponse(status_code=status, content=answer)

    @app.post("/api/v1/case-updates", status_code=201, response_model=None)
    def update_case(
        update: CaseUpdate,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse | StreamingResponse:
        """Record a decision on a filed case once per idempotency key (404 for a case never filed), with
        the same injected faults as filings."""
        if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
            return _error(400, f"an Idempotency-Key header of 1..{MAX_KEY_LENGTH} characters is required")
        body = update.model_dump(mode="json")
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        refused, fault = _fault_gate(store)
        if refused is not None:
            return refused
        with store.lock:
            known = store.update_keys.get(idempotency_key) if store.honour_keys else None
            if known is not None:
                if known != canonical:
                    store.tally["conflict"] += 1
                    return _error(409, "this Idempotency-Key was used with a different body")
                store.tally["repeated"] += 1
                status, answer = 200, {"idempotency_key": idempotency_key}
            else:
                filing = next((f for f in store.filings.values() if f.body["case_ref"] == update.case_ref),
                              None)
                if filing is None:
                    return _error(404, f"no case {update.case_ref} filed")
                store.update_keys[idempotency_key] = canonical
                filing.updates.append({**body, "idempotency_key": idempotency_key})
                store.tally["updates"] += 1
                status, answer = 201, {"idempotency_key": idempotency_key,
                                       "tenancy_case_id": filing.tenancy_case_id}
        if fault == "reset_after_commit":
            return _cut_off(status)
        return JSONResponse(status_code=status, content=answer)

    @app.get("/api/v1/cases")
    def list_cases(
        case_ref: Annotated[str | None, Query(max_length=100)] = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Every filed case (or those filed under ``case_ref``), in filing order, with how often it was
        delivered and its updates."""
        with store.lock:
            return {"cases": [f.listing() for f in store.filings.values()
                              if case_ref is None or f.body["case_ref"] == case_ref]}

    def by_tenancy_id(tenancy_case_id: str) -> _Filing | None:
        return next((f for f in store.filings.values() if f.tenancy_case_id == tenancy_case_id), None)

    @app.get("/api/v1/cases/{tenancy_case_id}", response_model=None)
    def get_case(tenancy_case_id: str) -> dict[str, Any] | JSONResponse:
        """One filed case with its current status."""
        with store.lock:
            found = by_tenancy_id(tenancy_case_id)
            return found.listing() if found else _error(404, f"no case {tenancy_case_id}")

    @app.get("/api/v1/changes")
    def changes(
        since: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Status changes numbered from 1, those after ``since`` in order; ``last`` is the newest number."""
        with store.lock:
            return {"changes": store.changes[since:since + limit], "last": len(store.changes)}

    @app.post("/_sim/cases/{tenancy_case_id}/status", response_model=None)
    def set_status(tenancy_case_id: str, change: StatusChange) -> dict[str, Any] | JSONResponse:
        """Simulator control: the housing office changes a filed case's status (closed, moved_out...)."""
        with store.lock:
            found = by_tenancy_id(tenancy_case_id)
            if found is None:
                return _error(404, f"no case {tenancy_case_id}")
            found.status = change.status
            entry = {
                "seq": len(store.changes) + 1, "tenancy_case_id": tenancy_case_id,
                "case_ref": found.body["case_ref"], "status": change.status, "note": change.note,
                "changed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
            if store.honour_keys:  # a system that ignores keys does not echo them either
                entry["idempotency_key"] = found.idempotency_key
            store.changes.append(entry)
            return entry

    @app.post("/_sim/faults")
    def set_faults(settings: FaultSettings) -> dict[str, float]:
        """Simulator control: 503 the next N filings, and shares of 503s, 500s, slow answers and resets."""
        with store.lock:
            store.fail_next = settings.fail_next
            store.fail_rate = settings.fail_rate
            store.faults = settings
        return settings.model_dump()

    @app.get("/_sim/stats")
    def stats() -> dict[str, int]:
        """Simulator control: how many of each fault were injected, filings created and repeated."""
        with store.lock:
            return {**store.tally, "cases": len(store.filings)}

    return app


def run_tenancy(
    host: str = "127.0.0.1", port: int = 8090, *, fail_rate: float = 0.0, honour_keys: bool = True,
) -> None:
    """Serve the stand-in with uvicorn until interrupted."""
    uvicorn.run(create_app(fail_rate=fail_rate, honour_keys=honour_keys), host=host, port=port,
                log_level="warning")
