"""Payload schemas of wire contract v1 (pydantic), with strict validation and JSON encoding.

Every agent-to-hub message carries the agent id; every record in it carries the agent's own
monotonically increasing sequence number (its outbox id), so the hub can deduplicate at-least-once
delivery and acknowledge exactly what it has stored.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, NotRequired, Self, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    model_serializer,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from anju_wire.errors import ContractError

# The rules below are stated once here; the hub's bulk importer builds its SQL checks from them.
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
IDENT_MAX_LENGTH = 64
PSEUDONYM_PATTERN = r"^p-[0-9a-f]{16,64}$"  # a keyed hash made on the edge, never a real identity
BUILDING_MAX_LENGTH = 32
FLOOR_MIN, FLOOR_MAX = -200, 1000
Ident = Annotated[str, Field(min_length=1, max_length=IDENT_MAX_LENGTH, pattern=IDENT_PATTERN)]
MAX_SEQ = 2**63 - 1  # what the hub's bigint columns hold
Seq = Annotated[int, Field(ge=1, le=MAX_SEQ)]
MAX_BATCH = 5000


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class MeterKind(StrEnum):
    """The utility a meter measures."""

    ELECTRICITY = "electricity"
    WATER = "water"
    GAS = "gas"


METER_UNITS: dict[MeterKind, str] = {
    MeterKind.ELECTRICITY: "kWh",
    MeterKind.WATER: "m3",
    MeterKind.GAS: "m3",
}


CounterEvent = Literal["rollover", "replaced"]
DeviceAddress = Annotated[str, Field(min_length=1, max_length=200)]
RegisterValue = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Quality = Literal["ok", "unavailable"]


class MeterReading(_Model):
    """One poll of one meter: the cumulative register value, or the fact that the meter did not answer.

    ``event`` (optional, added within v1) flags a reading whose total fell below the meter's previous
    total: ``rollover`` when the register wrapped past its maximum to near zero, ``replaced`` for any
    other drop (a new meter, or a reset). The hub must not turn such a drop into a consumption delta.
    Absent means no such event; it is left out of the JSON then, so older readers see the same bytes.
    """

    seq: Seq
    unit_id: Ident
    meter: MeterKind
    device: DeviceAddress
    ts: AwareDatetime
    value: RegisterValue | None
    quality: Quality = "ok"
    event: CounterEvent | None = None

    @model_validator(mode="after")
    def _value_matches_quality(self) -> Self:
        problem = _reading_problem(self.value, self.quality, self.event)
        if problem:
            raise ValueError(problem)
        return self

    @model_serializer(mode="wrap")
    def _omit_absent_event(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        if data.get("event", "") is None:
            del data["event"]
        return data


def _reading_problem(value: float | None, quality: str, event: str | None) -> str | None:
    """What breaks the rules between a reading's fields, or None (for the model and the data path)."""
    if (value is None) != (quality == "unavailable"):
        return "value must be null exactly when quality is 'unavailable'"
    if event is not None and value is None:
        return "an event needs the value that shows it"
    return None


class ReadingsBatch(_Model):
    """Many readings from one agent in one message (topic ``anju/v1/{estate}/readings``)."""

    schema_id: Literal["anju.readings.v1"] = Field("anju.readings.v1", alias="schema")
    agent_id: Ident
    estate_id: Ident
    sent_at: AwareDatetime
    readings: Annotated[list[MeterReading], Field(min_length=1, max_length=MAX_BATCH)]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# The same rules as MeterReading and ReadingsBatch, validated to plain dicts: no model object and no Python
# validator call per reading, five times faster on the hub's ingest path. ``decode_readings`` accepts
# exactly what ``decode(ReadingsBatch, ...)`` accepts (tests/wire/test_readings_data.py proves it on
# generated payloads); whatever this path refuses goes to the model, whose error is the reason.


@with_config(ConfigDict(extra="forbid"))
class MeterReadingData(TypedDict):
    """A validated MeterReading as plain data; ``quality`` and ``event`` may be absent ("ok", None)."""

    seq: Seq
    unit_id: Ident
    meter: MeterKind
    device: DeviceAddress
    ts: AwareDatetime
    value: RegisterValue | None
    quality: NotRequired[Quality]
    event: NotRequired[CounterEvent | None]


@with_config(ConfigDict(extra="forbid", populate_by_name=True))
class ReadingsBatchData(TypedDict):
    """A validated ReadingsBatch as plain data."""

    schema_id: NotRequired[Annotated[Literal["anju.readings.v1"], Field(alias="schema")]]
    agent_id: Ident
    estate_id: Ident
    sent_at: AwareDatetime
    readings: Annotated[list[MeterReadingData], Field(min_length=1, max_length=MAX_BATCH)]


_READINGS_DATA: TypeAdapter[ReadingsBatchData] = TypeAdapter(ReadingsBatchData)


def _readings_data(raw: bytes) -> ReadingsBatchData | None:
    """The batch as plain data when it keeps every rule, else None (and the model says why)."""
    try:
        data = _READINGS_DATA.validate_json(raw)
    except ValidationError:
        return None
    readings = data["readings"]
    if any(_reading_problem(r["value"], r.get("quality", "ok"), r.get("event")) for r in readings):
        return None
    return data


def decode_readings(raw: bytes) -> ReadingsBatchData:
    """``decode(ReadingsBatch, raw)`` as plain data, faster: the same rules, the same ContractError."""
    data = _readings_data(raw)
    if data is not None:
        return data
    # Refused here: the model raises ContractError with the reasons. Were it ever to accept what this
    # path refused, its verdict wins, so the two can differ in speed only.
    batch = decode(ReadingsBatch, raw)
    return _READINGS_DATA.validate_python(batch.model_dump())


class AccessMethod(StrEnum):
    """How a person opened a door; every method counts as presence."""

    FACE = "face"
    CARD = "card"
    PASSWORD = "password"
    QR = "qr"


# A card, a code or a QR ticket belongs to someone; only a face can pass unrecognised.
STRANGER_METHODS = frozenset({AccessMethod.FACE})


class AccessEvent(_Model):
    """One passage through a gate or sighting by a corridor camera.

    A registered household member appears as ``person`` (a keyed pseudonym made on the edge) with the
    ``unit_id`` they are registered to; an unrecognised face appears only as a ``stranger_track``, an id
    the edge keeps stable for the same face. No image and no real identity ever appears here.
    """

    seq: Seq
    event_id: Annotated[str, Field(min_length=1, max_length=100)]
    ts: AwareDatetime
    device_id: Ident
    building: Annotated[str, Field(min_length=1, max_length=BUILDING_MAX_LENGTH)]
    floor: Annotated[int, Field(ge=FLOOR_MIN, le=FLOOR_MAX)] | None = None
    method: AccessMethod
    person: Annotated[str, Field(pattern=PSEUDONYM_PATTERN)] | None = None
    unit_id: Ident | None = None
    stranger_track: Ident | None = None

    @model_validator(mode="after")
    def _who(self) -> Self:
        if (self.person is None) == (self.stranger_track is None):
            raise ValueError("exactly one of person and stranger_track must be set")
        if self.person is not None and self.unit_id is None:
            raise ValueError("a registered person needs the unit_id they are registered to")
        if self.stranger_track is not None:
            if self.unit_id is not None:
                raise ValueError("a stranger has no unit_id")
            if self.method not in STRANGER_METHODS:
                raise ValueError("only a face can be an unrecognised stranger")
        return self


class AccessBatch(_Model):
    """Many access events from one agent in one message (topic ``anju/v1/{estate}/access``)."""

    schema_id: Literal["anju.access.v1"] = Field("anju.access.v1", alias="schema")
    agent_id: Ident
    estate_id: Ident
    sent_at: AwareDatetime
    events: Annotated[list[AccessEvent], Field(min_length=1, max_length=MAX_BATCH)]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DeviceAvailability(_Model):
    """Whether the agent can currently read a device."""

    device: Annotated[str, Field(min_length=1, max_length=200)]
    available: bool
    since: AwareDatetime | None = None


MAX_CENSUS_UNITS = 100_000  # units one status may list; far above any estate
MAX_ENROLLED = 10_000  # people of one unit; far above any household, well inside the hub's int column
EnrolledCount = Annotated[int, Field(ge=0, le=MAX_ENROLLED)]


class AgentStatus(_Model):
    """Retained status of an agent; the ``offline`` form is registered as its last will.

    ``faces_enrolled`` (optional, added within v1) is the census of the gateway's face gallery: per unit of
    the estate, how many people are enrolled (0: nobody). Unit ids and counts only, never a person. Absent
    means the agent does not report it; it is left out of the JSON then, so older readers see the same bytes.
    """

    schema_id: Literal["anju.status.v1"] = Field("anju.status.v1", alias="schema")
    agent_id: Ident
    estate_id: Ident
    ts: AwareDatetime | None = None
    state: Literal["online", "offline"]
    software: str | None = None
    outbox_depth: Annotated[int, Field(ge=0)] | None = None
    outbox_capacity: Annotated[int, Field(ge=1)] | None = None
    outbox_full: bool = False
    devices: list[DeviceAvailability] = Field(default_factory=list)
    faces_enrolled: Annotated[dict[Ident, EnrolledCount], Field(max_length=MAX_CENSUS_UNITS)] | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_serializer(mode="wrap")
    def _omit_absent_census(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        if data.get("faces_enrolled", "") is None:
            del data["faces_enrolled"]
        return data


class SeqRange(_Model):
    """An inclusive range of an agent's sequence numbers."""

    first: Seq
    last: Seq

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.last < self.first:
            raise ValueError("last must not be below first")
        return self


class Ack(_Model):
    """The hub's confirmation that these records of an agent are durably stored (or dead-lettered)."""

    schema_id: Literal["anju.ack.v1"] = Field("anju.ack.v1", alias="schema")
    agent_id: Ident
    estate_id: Ident
    ts: AwareDatetime
    ranges: Annotated[list[SeqRange], Field(min_length=1)]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def seqs(self) -> list[int]:
        """Every acknowledged sequence number, ascending."""
        out: set[int] = set()
        for r in self.ranges:
            out.update(range(r.first, r.last + 1))
        return sorted(out)


def ranges_of(seqs: list[int] | set[int]) -> list[SeqRange]:
    """Compress sequence numbers into sorted inclusive ranges."""
    out: list[SeqRange] = []
    start = prev = None
    for s in sorted(set(seqs)):
        if start is None:
            start = prev = s
        elif prev is not None and s == prev + 1:
            prev = s
        else:
            assert prev is not None
            out.append(SeqRange(first=start, last=prev))
            start = prev = s
    if start is not None and prev is not None:
        out.append(SeqRange(first=start, last=prev))
    return out


Payload = ReadingsBatch | AccessBatch | AgentStatus | Ack
P = TypeVar("P", ReadingsBatch, AccessBatch, AgentStatus, Ack)


def encode(payload: Payload) -> bytes:
    """Serialise a payload to the JSON bytes that go on the wire."""
    return payload.model_dump_json(by_alias=True).encode()


def decode(model: type[P], raw: bytes) -> P:
    """Parse and validate JSON bytes as ``model``; raise ContractError with a readable reason."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()[:5]
        )
        raise ContractError(f"invalid {model.__name__}: {problems}") from err
