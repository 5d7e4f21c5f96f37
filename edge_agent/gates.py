"""Face-gate adapter: the vendor's JSON events become pseudonymised access records.

``parse_gate_event`` and ``unwrap_pushed_event`` are pure. ``GateIntake`` stores what any transport
brings (MQTT here, HTTP push in ``anju.edge_agent.gate_http``). ``GateSubscriber`` stores every accepted
event in the outbox from inside paho's message callback, so the estate broker gets its PUBACK only
after the event is durable; malformed payloads are kept, raw, in the outbox's ``rejected`` table with
the reason, and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from anju.edge_agent.errors import GateEventError, OutboxError
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.records import AccessRecord, RecordKind
from anju.edge_agent.site import GateConfig
from anju_mqtt import MqttLink
from anju_wire.payloads import AccessMethod, Ident

log = logging.getLogger(__name__)


class VendorGateEvent(BaseModel):
    """The simulated gate vendor's event JSON (see docs/dev/skeleton-interfaces.md)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: Literal["AccessControllerEvent"] = Field(alias="eventType")
    serial_no: Annotated[int, Field(ge=0, strict=True)] = Field(alias="serialNo")
    date_time: AwareDatetime = Field(alias="dateTime")
    device_id: Ident = Field(alias="deviceID")
    building: Annotated[str, Field(min_length=1, max_length=32)]
    floor: Annotated[int, Field(strict=True)] | None = None
    verify_mode: AccessMethod = Field(alias="verifyMode")
    employee_no: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(None, alias="employeeNo")
    room_no: Ident | None = Field(None, alias="roomNo")
    stranger_track: Ident | None = Field(None, alias="strangerTrack")


def pseudonym(*, secret: bytes, estate_id: str, employee_no: str) -> str:
    """The keyed pseudonym of a tenant id: ``p-`` + first 32 hex digits of HMAC-SHA256(secret, estate:id)."""
    digest = hmac.new(secret, f"{estate_id}:{employee_no}".encode(), hashlib.sha256).hexdigest()
    return "p-" + digest[:32]


def _problems(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()[:5]
    )


def parse_gate_event(raw: bytes, *, estate_id: str, secret: bytes) -> AccessRecord:
    """Turn one vendor event into an access record (without seq); raise GateEventError when malformed."""
    if not secret:
        raise GateEventError("empty pseudonym secret")
    try:
        event = VendorGateEvent.model_validate_json(raw)
    except ValidationError as err:
        raise GateEventError(f"malformed gate event: {_problems(err)}") from err
    person = None
    if event.employee_no is not None:
        person = pseudonym(secret=secret, estate_id=estate_id, employee_no=event.employee_no)
    try:
        return AccessRecord(
            event_id=f"{event.device_id}:{event.serial_no}",
            ts=event.date_time,
            device_id=event.device_id,
            building=event.building,
            floor=event.floor,
            method=event.verify_mode,
            person=person,
            unit_id=event.room_no,
            stranger_track=event.stranger_track,
        )
    except ValidationError as err:
        raise GateEventError(f"gate event does not make an access event: {_problems(err)}") from err


def unwrap_pushed_event(raw: bytes, *, device_id: str, building: str) -> bytes:
    """The vendor event inside an HTTP push, with the gate's configured id and building where it omits them.

    Accepts the plain vendor event, or a Hikvision ISAPI-style notification whose
    ``AccessControllerEvent`` object holds the event fields (``employeeNoString`` read as ``employeeNo``)
    while ``eventType`` and ``dateTime`` sit on the outer object. Anything that is not a JSON object is
    returned unchanged for ``parse_gate_event`` to reject with its reason.
    """
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw
    if not isinstance(doc, dict):
        return raw
    inner = doc.get("AccessControllerEvent")
    if isinstance(inner, dict):
        event = {k: v for k, v in doc.items() if k != "AccessControllerEvent"}
        event.update(inner)
        if "employeeNo" not in event and "employeeNoString" in event:
            event["employeeNo"] = event["employeeNoString"]
        doc = event
    doc.setdefault("deviceID", device_id)
    doc.setdefault("building", building)
    return json.dumps(doc).encode()


class GateIntake:
    """Where every gate message goes, whatever brought it: the outbox, or the ``rejected`` table.

    Thread-safe (the outbox is); the counters are read by metrics.
    """

    def __init__(self, *, estate_id: str, secret: bytes, outbox: Outbox) -> None:
        self._estate_id = estate_id
        self._secret = secret
        self._outbox = outbox
        self.accepted = 0
        self.rejected = 0
        self.refused_full = 0

    def take(self, source: str, raw: bytes) -> AccessRecord:
        """Store one vendor message durably and return its record.

        Raise GateEventError when it is malformed (it is then kept raw in ``rejected`` with the reason),
        OutboxError when the outbox refuses it.
        """
        try:
            record = parse_gate_event(raw, estate_id=self._estate_id, secret=self._secret)
        except GateEventError as err:
            self.rejected += 1
            log.warning("rejected gate message from %s: %s", source, err)
            try:
                self._outbox.reject(source=source, payload=raw, reason=str(err))
            except OutboxError as store_err:
                log.error("rejected gate message from %s not kept: %s", source, store_err)
            raise
        try:
            self._outbox.put(RecordKind.ACCESS, record.to_json())
        except OutboxError as err:
            self.refused_full += 1
            log.error("access event %s not stored: %s", record.event_id, err)
            raise
        self.accepted += 1
        return record


class GateSubscriber:
    """Subscribes to the gates' vendor topics on the estate broker and feeds the outbox."""

    def __init__(
        self,
        *,
        url: str,
        agent_id: str,
        gates: list[GateConfig],
        intake: GateIntake,
    ) -> None:
        self._topics = [g.topic for g in gates if g.topic is not None]
        self.intake = intake
        self.link = MqttLink(
            url=url,
            client_id=f"{agent_id}-gates",
            name=f"{agent_id} gates",
            on_connect=self._subscribe,
            on_message=self.handle,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Receive gate events until ``stop`` is set."""
        await self.link.run(stop)

    def _subscribe(self) -> None:
        for topic in self._topics:
            self.link.client.subscribe(topic, qos=1)

    def handle(self, topic: str, raw: bytes) -> None:
        """Store one vendor message: as an access record, or raw in ``rejected`` with the reason."""
        # the broker gets its PUBACK when this returns: the message is stored (or refused loudly) by then
        with contextlib.suppress(GateEventError, OutboxError):  # logged and counted by the intake
            self.intake.take(f"gate:{topic}", raw)
