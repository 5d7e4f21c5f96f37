"""Pure message processing: one MQTT message in, typed rows (or a dead letter) and what to acknowledge out.

No database, broker or clock here; the same message always gives the same result. ``process`` never
raises: whatever one message does to the parser (nesting deep enough to exhaust the stack, a date past
year 9999 ...) becomes that message's dead letter with a reason code, so no message can stop ingest.

Trust boundary: a message is judged by the estate of the topic it came on, because the broker's
per-estate identity is what lets a gateway publish there. Its agent must be one of that estate's agents
(``{estate}-{name}``, see ``anju_wire.agent_of_estate``), its records must lie within the time bounds,
and (checked by ``bind_units`` against the unit registry, which the writer reads) every unit it names
must be registered to that estate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from anju_wire import (
    AccessBatch,
    AgentStatus,
    ContractError,
    MeterKind,
    TimeBounds,
    Topic,
    TopicKind,
    agent_of_estate,
    decode,
)
from anju_wire.payloads import MAX_SEQ, ReadingsBatchData, decode_readings
from anju_wire.topics import check_id

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Message:
    """One message as it came off the broker, stamped with the hub's time of receipt."""

    topic: str
    payload: bytes
    received_at: datetime


class ReadingRow(NamedTuple):
    """One row of ``meter_readings``, with the estate of its topic (checked against the unit registry).

    A named tuple in the writer's column order: made once per reading, it goes to COPY as it is.
    """

    ts: datetime
    unit_id: str
    meter: str
    value: float | None
    quality: str
    device: str
    agent_id: str
    seq: int
    received_at: datetime
    event: str | None  # 'rollover' or 'replaced' when the edge saw the total fall
    estate_id: str


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
    payload: str  # the validated status as canonical JSON, less its census (that goes to the registry)
    updated_at: datetime
    # The gateway's face census, (unit, count) by unit id; None when the agent does not report it. Only
    # this estate's registered units take it (the writer checks, as bind_units does for rows).
    faces_enrolled: tuple[tuple[str, int], ...] | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the hub cannot accept: its raw bytes, why (``reason``), a stable ``code`` and the estate
    of its topic (None when the topic named none)."""

    topic: str
    payload: bytes
    reason: str
    received_at: datetime
    code: str = "contract"
    estate_id: str | None = None


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
    message: Message | None = None  # where the rows came from, to dead-letter them later (bind_units)

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
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the stack
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
    if not agent_of_estate(agent, topic.estate):
        return None  # only an agent of this estate hears this estate's acks; never ack for another
    seqs = sorted(
        {
            s
            for item in items
            if isinstance(item, dict)
            and isinstance(s := item.get("seq"), int)
            and not isinstance(s, bool)
            and 1 <= s <= MAX_SEQ
        }
    )
    return AckDue(agent_id=agent, estate_id=topic.estate, seqs=tuple(seqs)) if seqs else None


def _dead(
    topic_str: str,
    payload: bytes,
    reason: str,
    received_at: datetime,
    ack: AckDue | None = None,
    *,
    code: str,
    estate: str | None,
) -> ProcessResult:
    return ProcessResult(
        dead_letter=DeadLetter(
            topic=_text(topic_str),
            payload=payload,
            reason=_text(reason),
            received_at=received_at,
            code=code,
            estate_id=estate,
        ),
        ack=ack,
    )


def _check_agent(agent: str, estate: str) -> None:
    if not agent_of_estate(agent, estate):
        raise ContractError(
            f"agent {agent!r} is not an agent of estate {estate!r} (agent ids are '{estate}-<name>')",
            code="agent_other_estate",
        )


def _check_times(stamps: list[datetime], what: str, *, now: datetime, bounds: TimeBounds) -> None:
    if stamps:
        earliest, latest = bounds.window(now)
        if earliest <= min(stamps) and max(stamps) <= latest:
            return  # all inside the window; only a batch with a stamp outside is checked one by one
    for i, ts in enumerate(stamps):
        bounds.check(ts, now=now, what=f"{what}.{i}.ts")


_METER = {kind: kind.value for kind in MeterKind}  # a dict lookup is cheaper than Enum.value, per reading


def _readings(batch: ReadingsBatchData, received_at: datetime) -> ProcessResult:
    agent, estate = batch["agent_id"], batch["estate_id"]
    new = tuple.__new__  # ReadingRow(...) without its Python-level __new__: this runs once per reading
    rows = tuple(
        new(ReadingRow, (
            r["ts"], r["unit_id"], _METER[r["meter"]], r["value"], r.get("quality", "ok"), r["device"],
            agent, r["seq"], received_at, r.get("event"), estate,
        ))
        for r in batch["readings"]
    )  # fmt: skip
    seqs = tuple(sorted({r["seq"] for r in batch["readings"]}))
    return ProcessResult(readings=rows, ack=AckDue(agent_id=agent, estate_id=estate, seqs=seqs))


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


def process(
    topic: str, payload: bytes, received_at: datetime, *, bounds: TimeBounds | None = None
) -> ProcessResult:
    """Turn one message into rows and an ack, or into a dead letter saying why it was rejected.

    ``received_at`` is the hub's clock, the ``now`` of the time bounds (default ``TimeBounds()``).
    Never raises.
    """
    try:
        result = _process(topic, payload, received_at, bounds or TimeBounds())
    except Exception as err:  # noqa: BLE001
        # The point of this catch: any failure on one message, expected or not (RecursionError from deep
        # nesting, OverflowError from an extreme date ...), becomes that message's dead letter with its
        # reason instead of stopping ingest. The writer logs and counts it.
        try:
            estate: str | None = Topic.parse(topic).estate
        except ContractError:
            estate = None
        return _dead(
            topic, payload, f"{type(err).__name__}: {err}", received_at, code="unexpected", estate=estate
        )
    return replace(result, message=Message(topic, payload, received_at))


def _process(topic: str, payload: bytes, received_at: datetime, bounds: TimeBounds) -> ProcessResult:
    try:
        parsed = Topic.parse(topic)
    except ContractError as err:
        return _dead(topic, payload, f"bad topic: {err}", received_at, code="bad_topic", estate=None)
    estate = parsed.estate
    try:
        if parsed.kind is TopicKind.READINGS:
            readings = decode_readings(payload)
            if (claimed := readings["estate_id"]) != estate:
                raise ContractError(
                    f"estate {claimed!r} in payload, {estate!r} in topic", code="estate_mismatch"
                )
            _check_agent(readings["agent_id"], estate)
            _check_times([r["ts"] for r in readings["readings"]], "readings", now=received_at, bounds=bounds)
            return _readings(readings, received_at)
        if parsed.kind is TopicKind.ACCESS:
            access = decode(AccessBatch, payload)
            if access.estate_id != estate:
                raise ContractError(
                    f"estate {access.estate_id!r} in payload, {estate!r} in topic", code="estate_mismatch"
                )
            _check_agent(access.agent_id, estate)
            _check_times([e.ts for e in access.events], "events", now=received_at, bounds=bounds)
            return _access(access, received_at)
        if parsed.kind is TopicKind.STATUS:
            assert parsed.agent is not None  # status topics name their agent
            _check_agent(parsed.agent, estate)
            status = decode(AgentStatus, payload)
            if status.estate_id != estate or status.agent_id != parsed.agent:
                raise ContractError(
                    f"agent {status.estate_id}/{status.agent_id} in payload, "
                    f"{estate}/{parsed.agent} in topic",
                    code="estate_mismatch",
                )
            census = status.faces_enrolled
            row = StatusRow(
                agent_id=status.agent_id,
                estate_id=status.estate_id,
                state=status.state,
                payload=status.model_dump_json(by_alias=True, exclude={"faces_enrolled"}),
                updated_at=received_at,  # hub time: agent clocks may be simulated
                faces_enrolled=None if census is None else tuple(sorted(census.items())),
            )
            return ProcessResult(status=row)
        return _dead(
            topic, payload, f"the hub does not consume {parsed.kind.value} topics", received_at,
            code="not_consumed", estate=estate,
        )  # fmt: skip
    except ContractError as err:
        return _dead(
            topic, payload, str(err), received_at, _salvage_ack(parsed, payload), code=err.code, estate=estate
        )


def units_named(result: ProcessResult) -> set[str]:
    """Every unit id the rows of ``result`` name (to look up in the registry)."""
    return {r.unit_id for r in result.readings} | {a.unit_id for a in result.access if a.unit_id is not None}


def bind_units(result: ProcessResult, registry: Mapping[str, str]) -> ProcessResult:
    """``result`` when every unit it names is registered to its topic's estate, else its dead letter.

    ``registry`` maps unit id to estate id (the ``units`` table, at least for ``units_named(result)``).
    The registry is the only way a unit comes to exist: a message naming an unknown unit, or another
    estate's, is refused whole. Its seqs are still acknowledged to its agent (an agent of this estate, on
    this estate's topic) so its outbox moves on; the raw bytes stay in ``dead_letters``.
    """
    # Each pair once, in order of appearance (the first bad one names the reason, the same every time).
    pairs = dict.fromkeys([(r.unit_id, r.estate_id) for r in result.readings])
    pairs.update(dict.fromkeys([(a.unit_id, a.estate_id) for a in result.access if a.unit_id is not None]))
    for unit, estate in pairs:
        registered = registry.get(unit)
        if registered == estate:
            continue
        if registered is None:
            reason, code = f"unit {unit!r} is not in the unit registry", "unit_unregistered"
        else:
            reason = f"unit {unit!r} belongs to estate {registered!r}, not {estate!r}"
            code = "unit_other_estate"
        msg = result.message
        if msg is None:  # rows made without process(): nothing to keep but the reason
            msg = Message(topic=f"anju/v1/{estate}/?", payload=b"", received_at=_received(result))
        return _dead(msg.topic, msg.payload, reason, msg.received_at, result.ack, code=code, estate=estate)
    return result


def _received(result: ProcessResult) -> datetime:
    rows: list[ReadingRow | AccessRow] = [*result.readings, *result.access]
    return rows[0].received_at
