"""Records as the agent keeps them before the outbox numbers them, and the pure building of wire batches."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import ValidationError

from anju_wire.payloads import AccessBatch, AccessEvent, CounterEvent, MeterKind, MeterReading, ReadingsBatch


class RecordKind(StrEnum):
    """The outbox ``kind`` of a record; each kind drains to its own topic."""

    READING = "reading"
    ACCESS = "access"


class ReadingRecord(MeterReading):
    """A meter reading before the outbox gives it its sequence number."""

    seq: None = None  # type: ignore[assignment]

    def to_json(self) -> str:
        """The JSON kept in the outbox: the wire record without ``seq``."""
        return self.model_dump_json(exclude={"seq"})


class AccessRecord(AccessEvent):
    """An access event before the outbox gives it its sequence number."""

    seq: None = None  # type: ignore[assignment]

    def to_json(self) -> str:
        """The JSON kept in the outbox: the wire record without ``seq``."""
        return self.model_dump_json(exclude={"seq"})


def reading_record(
    *,
    unit_id: str,
    meter: MeterKind,
    device: str,
    ts: datetime,
    value: float | None,
    event: CounterEvent | None = None,
) -> ReadingRecord:
    """A reading: ``value`` None means the meter could not be read (quality ``unavailable``)."""
    return ReadingRecord(
        unit_id=unit_id,
        meter=meter,
        device=device,
        ts=ts,
        value=value,
        quality="ok" if value is not None else "unavailable",
        event=event,
    )


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One outbox row: the sequence number and the JSON of the record without ``seq``."""

    seq: int
    kind: RecordKind
    payload: str


@dataclass(frozen=True, slots=True)
class BadRecord:
    """An outbox row that no longer validates against the contract (kept apart, never sent)."""

    seq: int
    reason: str


def _with_seq(record: StoredRecord) -> MeterReading | AccessEvent:
    data = json.loads(record.payload)
    if not isinstance(data, dict):
        raise ValueError("stored record is not a JSON object")
    data["seq"] = record.seq
    if record.kind is RecordKind.READING:
        return MeterReading.model_validate(data)
    return AccessEvent.model_validate(data)


def build_batch(
    kind: RecordKind, *, agent_id: str, estate_id: str, sent_at: datetime, records: list[StoredRecord]
) -> tuple[ReadingsBatch | AccessBatch | None, list[BadRecord]]:
    """The wire batch of ``records`` (None when none is valid) and the rows that failed validation."""
    good: list[MeterReading | AccessEvent] = []
    bad: list[BadRecord] = []
    for rec in records:
        try:
            good.append(_with_seq(rec))
        except (ValidationError, ValueError) as err:
            bad.append(BadRecord(rec.seq, f"invalid stored {kind}: {err}"[:500]))
    if not good:
        return None, bad
    if kind is RecordKind.READING:
        readings = [r for r in good if isinstance(r, MeterReading)]
        return ReadingsBatch(agent_id=agent_id, estate_id=estate_id, sent_at=sent_at, readings=readings), bad
    events = [e for e in good if isinstance(e, AccessEvent)]
    return AccessBatch(agent_id=agent_id, estate_id=estate_id, sent_at=sent_at, events=events), bad
