"""Stand-in for the city's SMS gateway: an outbox of text messages, idempotent sends, injectable faults.

``POST /api/v1/messages`` ``{"to": "+86...", "text": "..."}`` needs an ``Idempotency-Key``: the first send
answers 201 and puts the message in the outbox (what the phones receive), the same key with the same body
answers 200 and sends nothing more, the same key with another body answers 409. Faults
(``POST /_sim/faults``): the next N sends answer 503 (nothing sent), a share answer 500 (nothing sent),
and a share have their connection cut after the message was sent (the caller cannot tell: it must send
again with the same key). ``GET /api/v1/messages?to=`` lists the outbox in sending order, each message
once, with how many times it was asked for; ``GET /_sim/stats`` tallies faults and sends.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Header, Query
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from anju.device_sims.tenancy import _cut_off, _error

MAX_KEY_LENGTH = 200
MAX_TEXT = 500  # several SMS segments; the hub's texts are short


class Message(BaseModel):
    """The body of ``POST /api/v1/messages``."""

    model_config = ConfigDict(extra="forbid")

    to: Annotated[str, Field(pattern=r"^\+?[0-9]{6,20}$")]
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


class GatewayFaults(BaseModel):
    """Body of ``POST /_sim/faults``."""

    model_config = ConfigDict(extra="forbid")

    fail_next: Annotated[int, Field(ge=0)] = 0
    error_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    reset_rate: Annotated[float, Field(ge=0, le=1)] = 0.0


@dataclass
class _Sent:
    key: str
    to: str
    text: str
    canonical: str
    message_id: str
    sent_at: str
    requests: int = 1

    def listing(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "idempotency_key": self.key, "to": self.to, "text": self.text,
                "sent_at": self.sent_at, "requests": self.requests}


@dataclass
class GatewayStore:
    """The outbox in memory, by idempotency key, in sending order; every access holds the lock."""

    rng: random.Random = field(default_factory=lambda: random.Random(0))
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: dict[str, _Sent] = field(default_factory=dict)
    faults: GatewayFaults = field(default_factory=GatewayFaults)
    fail_next: int = 0
    tally: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("outage_503", "error_500", "reset_after_send", "sent", "repeated", "conflict"), 0))

    def draw(self) -> str | None:
        """The fault of this send, if any (call with the lock held)."""
        if self.fail_next > 0:
            self.fail_next -= 1
            return "outage_503"
        rates = (("error_500", self.faults.error_rate), ("reset_after_send", self.faults.reset_rate))
        for name, rate in rates:
            if rate > 0 and self.rng.random() < rate:
                return name
        return None


def create_app(*, seed: int = 0) -> FastAPI:
    """The SMS gateway stand-in as an ASGI app, with its own empty outbox."""
    store = GatewayStore(rng=random.Random(seed))
    app = FastAPI(title="SMS gateway (anju stand-in)", version="1")
    app.state.store = store

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    @app.post("/api/v1/messages", status_code=201, response_model=None)
    def send(
        message: Message, idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse | StreamingResponse:
        """Send one text message once per idempotency key."""
        if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
            return _error(400, f"an Idempotency-Key header of 1..{MAX_KEY_LENGTH} characters is required")
        canonical = json.dumps(message.model_dump(), sort_keys=True, separators=(",", ":"))
        with store.lock:
            fault = store.draw()
            if fault is not None:
                store.tally[fault] += 1
            if fault == "outage_503":
                return _error(503, "simulated outage of the SMS gateway")
            if fault == "error_500":
                return _error(500, "simulated internal error of the SMS gateway")
            known = store.sent.get(idempotency_key)
            if known is not None:
                if known.canonical != canonical:
                    store.tally["conflict"] += 1
                    return _error(409, "this Idempotency-Key was used with a different message")
                known.requests += 1
                store.tally["repeated"] += 1
                status, answer = 200, {"message_id": known.message_id}
            else:
                created = _Sent(key=idempotency_key, to=message.to, text=message.text, canonical=canonical,
                                message_id=f"SMS-{len(store.sent) + 1:06d}",
                                sent_at=datetime.now(UTC).isoformat(timespec="milliseconds"))
                store.sent[idempotency_key] = created
                store.tally["sent"] += 1
                status, answer = 201, {"message_id": created.message_id}
        if fault == "reset_after_send":
            return _cut_off(status)
        return JSONResponse(status_code=status, content=answer)

    @app.get("/api/v1/messages")
    def outbox(to: Annotated[str | None, Query(max_length=24)] = None) -> dict[str, list[dict[str, Any]]]:
        """The messages sent, in order, each once (to one number when ``to`` is given)."""
        with store.lock:
            return {"messages": [s.listing() for s in store.sent.values() if to is None or s.to == to]}

    @app.post("/_sim/faults")
    def set_faults(settings: GatewayFaults) -> dict[str, Any]:
        """Simulator control: 503 the next N sends, and shares of 500s and of resets after sending."""
        with store.lock:
            store.faults = settings
            store.fail_next = settings.fail_next
        return settings.model_dump()

    @app.get("/_sim/stats")
    def stats() -> dict[str, int]:
        """Simulator control: faults injected, messages sent and repeated."""
        with store.lock:
            return {**store.tally, "messages": len(store.sent)}

    return app


def run_sms_gateway(host: str = "127.0.0.1", port: int = 8091) -> None:
    """Serve the stand-in with uvicorn until interrupted."""
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
