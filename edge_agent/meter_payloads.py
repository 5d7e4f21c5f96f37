"""Payload maps as data, and the pure decoding of a self-reporting meter's MQTT message into a total.

A payload map (``edge_agent/payload_maps/<name>.yaml``) says where in a meter's JSON message the
cumulative total, the reading's time and (on platforms that put many devices on one topic) the device id
sit, as dotted paths. Decoding is pure: bytes in, ``PayloadReading`` out, or ``PayloadError``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from anju.edge_agent.errors import PayloadError, RegisterMapError
from anju_wire.payloads import METER_UNITS, MeterKind

_MAP_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
_PATH = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$"
# Unix times outside this window are a device with an unset clock, not a reading time.
_EPOCH_MIN = datetime(2000, 1, 1, tzinfo=UTC)
_EPOCH_MAX = datetime(2100, 1, 1, tzinfo=UTC)


class ValueField(BaseModel):
    """Where the cumulative total is: ``raw * scale`` of the number at ``path``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Annotated[str, Field(pattern=_PATH)]
    scale: Annotated[float, Field(allow_inf_nan=False)] = 1.0


class TimeField(BaseModel):
    """Where the reading's time is and how it is written.

    ``iso``: ISO 8601; one without an offset is local time at the meter config's ``utc_offset``
    (Tasmota writes ``Time`` that way). ``epoch_s`` / ``epoch_ms``: Unix seconds or milliseconds.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Annotated[str, Field(pattern=_PATH)]
    format: Literal["iso", "epoch_s", "epoch_ms"] = "iso"
    utc_offset: Annotated[str, Field(pattern=r"^[+-]\d{2}:\d{2}$")] = "+08:00"


class PayloadMap(BaseModel):
    """A self-reporting meter's message layout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    model: Annotated[str, Field(min_length=1)]
    meter: MeterKind
    unit: Literal["kWh", "m3"]
    source: Annotated[str, Field(min_length=1)]
    format: Literal["json"] = "json"
    total: ValueField
    time: TimeField | None = None  # absent: the agent's clock at receipt
    device: Annotated[str, Field(pattern=_PATH)] | None = None
    rollover_at: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _unit_fits(self) -> PayloadMap:
        if METER_UNITS[self.meter] != self.unit:
            raise ValueError(f"a {self.meter} meter reports {METER_UNITS[self.meter]}, not {self.unit}")
        return self


@dataclass(frozen=True, slots=True)
class PayloadReading:
    """What one message says: the total, when (None: not stated), and which device (None: not stated)."""

    total: float
    ts: datetime | None
    device: str | None


def _offset(text: str) -> timezone:
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _at(doc: Any, path: str) -> Any:
    here = doc
    for key in path.split("."):
        if not isinstance(here, dict) or key not in here:
            raise PayloadError(f"missing field {path}")
        here = here[key]
    return here


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PayloadError(f"{path} is not a number: {value!r}"[:200])
    try:
        number = float(value)
    except ValueError as err:
        raise PayloadError(f"{path} is not a number: {value!r}"[:200]) from err
    if not math.isfinite(number):
        raise PayloadError(f"{path} is not finite: {value!r}")
    return number


def _time(value: Any, field: TimeField) -> datetime:
    if field.format == "iso":
        if not isinstance(value, str):
            raise PayloadError(f"{field.path} is not an ISO 8601 time: {value!r}"[:200])
        try:
            ts = datetime.fromisoformat(value)
        except ValueError as err:
            raise PayloadError(f"{field.path} is not an ISO 8601 time: {value!r}"[:200]) from err
        return ts if ts.tzinfo is not None else ts.replace(tzinfo=_offset(field.utc_offset))
    seconds = _number(value, field.path) / (1000.0 if field.format == "epoch_ms" else 1.0)
    if abs(seconds) < 1e11:
        ts = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
        if _EPOCH_MIN <= ts < _EPOCH_MAX:
            return ts
    raise PayloadError(f"{field.path} is not a plausible {field.format} time: {value!r}"[:200])


def decode_payload(payload_map: PayloadMap, raw: bytes) -> PayloadReading:
    """The total, time and device id in one message; raise PayloadError saying what is wrong."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise PayloadError(f"not JSON: {err}"[:200]) from err
    if not isinstance(doc, dict):
        raise PayloadError("not a JSON object")
    total = _number(_at(doc, payload_map.total.path), payload_map.total.path) * payload_map.total.scale
    if not math.isfinite(total) or total < 0:
        raise PayloadError(f"{payload_map.total.path} is not a cumulative total: {total}")
    ts = None if payload_map.time is None else _time(_at(doc, payload_map.time.path), payload_map.time)
    device = None
    if payload_map.device is not None:
        value = _at(doc, payload_map.device)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
            raise PayloadError(f"{payload_map.device} is not a device id: {value!r}"[:200])
        device = str(value)
    return PayloadReading(total=total, ts=ts, device=device)


def parse_payload_map(text: str, *, name: str) -> PayloadMap:
    """Parse the YAML text of a payload map; raise RegisterMapError naming the bad field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RegisterMapError(f"payload map {name!r} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise RegisterMapError(f"payload map {name!r} must be a mapping")
    try:
        return PayloadMap.model_validate({**data, "name": name})
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()[:5]
        )
        raise RegisterMapError(f"payload map {name!r}: {problems}") from err


def available_payload_maps() -> list[str]:
    """Names of the payload maps shipped in ``edge_agent/payload_maps``."""
    folder = resources.files("anju.edge_agent").joinpath("payload_maps")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_payload_map(name: str, maps_dir: Path | None = None) -> PayloadMap:
    """Load a payload map by file stem, e.g. ``tasmota_energy``: from ``maps_dir`` (the operator's own
    maps, named in the site file) when it has one of that name, else the one shipped in the package."""
    if not _MAP_NAME.match(name):
        raise RegisterMapError(f"invalid payload map name {name!r}: use lower-case letters, digits, '_'")
    own = maps_dir / f"{name}.yaml" if maps_dir is not None else None
    shipped = resources.files("anju.edge_agent").joinpath("payload_maps", f"{name}.yaml")
    path = own if own is not None and own.is_file() else shipped
    if not path.is_file():
        known = ", ".join(available_payload_maps())
        raise RegisterMapError(f"unknown payload map {name!r}; known: {known}")
    return parse_payload_map(path.read_text(encoding="utf-8"), name=name)
