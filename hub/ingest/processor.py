"""Pure message processing: one MQTT message in, typed rows (or a dead letter) and what to acknowledge out.

No database, broker or clock here; the same message always gives the same result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anju_wire import AccessBatch, AgentStatus, ContractError, ReadingsBatch, Topic, TopicKind, decode
from anju_wire.topics import check_id

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """One row of ``meter_readings``, with the estate of the batch for registering unseen units."""

    ts: datetime
    unit_id: str
    meter: str
    value: float | None
    quality: str
    device: str
    agent_id: str
    seq: int
    estate_id: str
    received_at: datetime
    event: str | None = None  # 'rollover' or 'replaced' when the edge saw the total fall


@dataclass(frozen=True, slots=True)
class AccessRow:
    """One row of ``access_events``."""

    ts: datetime
    estate_id: str
    device_id: str
    event_id: str
    building: str
    floor: int | None
    method: str
    person: str | None
    unit_id: str | None
    stranger_track: str | None
    agent_id: str
    seq: int
    received_at: datetime


@dataclass(frozen=True, slots=True)
class StatusRow:
    """The latest status of one agent (a row of ``agent_status``)."""

    agent_id: str
    estate_id: str
    state: str
    payload: str  # the validated status as canonical JSON
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the hub cannot accept: its raw bytes and why."""

    topic: str
    payload: bytes
    reason: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class AckDue:
    """Sequence numbers of one agent to acknowledge once the rows are committed."""

    agent_id: str
    estate_id: str
    seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """Everything one message turns into."""

    readings: tuple[ReadingRow, ...] = ()
    access: tuple[AccessRow, ...] = ()
    status: StatusRow | None = None
    dead_letter: DeadLetter | None = None
    ack: AckDue | None = None

    @property
    def rows(self) -> int:
        """How many rows this message adds to a batch (a dead letter or a status counts as one)."""
        return (
            len(self.readings) + len(self.access) + (self.status is not None) + (self.dead_letter is not None)
        )


def _text(text: str) -> str:
    """Text PostgreSQL can store (no NUL), cut to a readable length."""
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _salvage_ack(topic: Topic, payload: bytes) -> AckDue | None:
    """Who to acknowledge a rejected batch to, when its agent and seqs can still be read.

    Acknowledging a dead-lettered record lets the agent's outbox move on instead of resending a
    message that can never be accepted; its bytes are kept in ``dead_letters``.
    """
    if topic.kind not in (TopicKind.READINGS, TopicKind.ACCESS):
        return None
    try:
        data: Any = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    agent = data.get("agent_id")
    items = data.get("readings" if topic.kind is TopicKind.READINGS else "events")
    if not isinstance(agent, str) or not isinstance(items, list):
        return None
    try:
        check_id(agent, "agent")
    except ContractError:
        return None
    seqs = sorted(
        {
            s
            for item in items
            if isinstance(item, dict)
            and isinstance(s := item.get("seq"), int)
            and not isinstance(s, bool)
            and s >= 1
        }
    )
    return AckDue(agent_id=agent, estate_id=topic.estate, seqs=tuple(seqs)) if seqs else None


def _dead(
    topic_str: str, payload: bytes, reason: str, received_at: datetime, ack: AckDue | None = None
) -> ProcessResult:
    return ProcessResult(
        dead_letter=DeadLetter(
            topic=_text(topic_str), payload=payload, reason=_text(reason), received_at=received_at
        ),
        ack=ack,
    )


def _readings(batch: ReadingsBatch, received_at: datetime) -> ProcessResult:
    rows = tuple(
        ReadingRow(
            ts=r.ts,
            unit_id=r.unit_id,
            meter=r.meter.value,
            value=r.value,
            quality=r.quality,
            device=r.device,
            agent_id=batch.agent_id,
            seq=r.seq,
            estate_id=batch.estate_id,
            received_at=received_at,
            event=r.event,
        )
        for r in batch.readings
    )
    seqs = tuple(sorted({r.seq for r in rows}))
    return ProcessResult(
        readings=rows, ack=AckDue(agent_id=batch.agent_id, estate_id=batch.estate_id, seqs=seqs)
    )


def _access(batch: AccessBatch, received_at: datetime) -> ProcessResult:
    rows = tuple(
        AccessRow(
            ts=e.ts,
            estate_id=batch.estate_id,
            device_id=e.device_id,
            event_id=e.event_id,
            building=e.building,
            floor=e.floor,
            method=e.method.value,
            person=e.person,
            unit_id=e.unit_id,
            stranger_track=e.stranger_track,
            agent_id=batch.agent_id,
            seq=e.seq,
            received_at=received_at,
        )
        for e in batch.events
    )
    seqs = tuple(sorted({r.seq for r in rows}))
    return ProcessResult(
        access=rows, ack=AckDue(agent_id=batch.agent_id, estate_id=batch.estate_id, seqs=seqs)
    )


def process(topic: str, payload: bytes, received_at: datetime) -> ProcessResult:
    """Turn one message into rows and an ack, or into a dead letter saying why it was rejected."""
    try:
        parsed = Topic.parse(topic)
    except ContractError as err:
        return _dead(topic, payload, f"bad topic: {err}", received_at)
    try:
        if parsed.kind is TopicKind.READINGS:
            readings = decode(ReadingsBatch, payload)
            if readings.estate_id != parsed.estate:
                raise ContractError(f"estate {readings.estate_id!r} in payload, {parsed.estate!r} in topic")
            return _readings(readings, received_at)
        if parsed.kind is TopicKind.ACCESS:
            access = decode(AccessBatch, payload)
            if access.estate_id != parsed.estate:
                raise ContractError(f"estate {access.estate_id!r} in payload, {parsed.estate!r} in topic")
            return _access(access, received_at)
        if parsed.kind is TopicKind.STATUS:
            status = decode(AgentStatus, payload)
            if status.estate_id != parsed.estate or status.agent_id != parsed.agent:
                raise ContractError(
                    f"agent {status.estate_id}/{status.agent_id} in payload, "
                    f"{parsed.estate}/{parsed.agent} in topic"
                )
            row = StatusRow(
                agent_id=status.agent_id,
                estate_id=status.estate_id,
                state=status.state,
                payload=status.model_dump_json(by_alias=True),
                updated_at=received_at,  # hub time: agent clocks may be simulated
            )
            return ProcessResult(status=row)
        return _dead(topic, payload, f"the hub does not consume {parsed.kind.value} topics", received_at)
    except ContractError as err:
        return _dead(topic, payload, str(err), received_at, _salvage_ack(parsed, payload))
