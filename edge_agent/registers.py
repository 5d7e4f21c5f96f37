"""Register maps as data, and the pure decoding of a meter's cumulative total from raw register words."""

from __future__ import annotations

import math
import re
import struct
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from anju.edge_agent.errors import DecodeError, RegisterMapError
from anju_wire.payloads import METER_UNITS, MeterKind

MAX_READ_REGISTERS = 125  # the Modbus limit for one FC03/FC04 request
_MAP_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")


class RegisterType(StrEnum):
    """How the bits of one value are laid out across one or two 16-bit registers."""

    FLOAT32 = "float32"
    UINT32 = "uint32"
    INT32 = "int32"
    UINT16 = "uint16"
    INT16 = "int16"


_STRUCT = {
    RegisterType.FLOAT32: ">f",
    RegisterType.UINT32: ">I",
    RegisterType.INT32: ">i",
    RegisterType.UINT16: ">H",
    RegisterType.INT16: ">h",
}
_INTEGER = {RegisterType.UINT32, RegisterType.INT32, RegisterType.UINT16, RegisterType.INT16}
Order = Literal["big", "little"]


class RegisterPart(BaseModel):
    """One value whose ``raw * scale`` is added into the cumulative total."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: Annotated[int, Field(ge=0, le=65535)]
    type: RegisterType
    word_order: Order = "big"
    byte_order: Order = "big"
    scale: Annotated[float, Field(allow_inf_nan=False)] = 1.0

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.scale == 0:
            raise ValueError("scale must not be zero")
        if self.address + self.width - 1 > 65535:
            raise ValueError("part runs past register 65535")
        return self

    @property
    def width(self) -> int:
        """How many 16-bit registers the value occupies."""
        return 1 if self.type in (RegisterType.UINT16, RegisterType.INT16) else 2


class RegisterMap(BaseModel):
    """A meter model's register map: where its cumulative total lives and how to decode it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    model: Annotated[str, Field(min_length=1)]
    meter: MeterKind
    unit: Literal["kWh", "m3"]
    source: Annotated[str, Field(min_length=1)]
    function: Literal["input", "holding"]
    total: Annotated[list[RegisterPart], Field(min_length=1)]
    # The total at which the meter itself wraps to zero (a display limit), when its registers do not show it.
    rollover_at: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if METER_UNITS[self.meter] != self.unit:
            raise ValueError(f"a {self.meter} meter reports {METER_UNITS[self.meter]}, not {self.unit}")
        used: set[int] = set()
        for part in self.total:
            regs = set(range(part.address, part.address + part.width))
            if used & regs:
                raise ValueError(f"part at address {part.address} overlaps another part")
            used |= regs
        if self.count > MAX_READ_REGISTERS:
            raise ValueError(
                f"parts span {self.count} registers; one read covers at most {MAX_READ_REGISTERS}"
            )
        return self

    @property
    def function_code(self) -> int:
        """The Modbus function code that reads the total (4 for input, 3 for holding registers)."""
        return 4 if self.function == "input" else 3

    @property
    def start(self) -> int:
        """First register address of the one read that covers every part."""
        return min(p.address for p in self.total)

    @property
    def count(self) -> int:
        """Number of registers in the one read that covers every part."""
        return max(p.address + p.width for p in self.total) - self.start


def parse_map(text: str, *, name: str) -> RegisterMap:
    """Parse the YAML text of a register map; raise RegisterMapError naming the bad field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RegisterMapError(f"register map {name!r} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise RegisterMapError(f"register map {name!r} must be a mapping")
    try:
        return RegisterMap.model_validate({**data, "name": name})
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()[:5]
        )
        raise RegisterMapError(f"register map {name!r}: {problems}") from err


def available_maps() -> list[str]:
    """Names of the register maps shipped in ``edge_agent/maps``."""
    folder = resources.files("anju.edge_agent").joinpath("maps")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_map(name: str, maps_dir: Path | None = None) -> RegisterMap:
    """Load a register map by file stem, e.g. ``eastron_sdm120``: from ``maps_dir`` (the operator's own
    maps, named in the site file) when it has one of that name, else the one shipped in the package."""
    if not _MAP_NAME.match(name):
        raise RegisterMapError(f"invalid register map name {name!r}: use lower-case letters, digits, '_'")
    own = maps_dir / f"{name}.yaml" if maps_dir is not None else None
    shipped = resources.files("anju.edge_agent").joinpath("maps", f"{name}.yaml")
    path = own if own is not None and own.is_file() else shipped
    if not path.is_file():
        raise RegisterMapError(f"unknown register map {name!r}; known: {', '.join(available_maps())}")
    return parse_map(path.read_text(encoding="utf-8"), name=name)


def _words_to_bytes(words: list[int], part: RegisterPart) -> bytes:
    ordered = words if part.word_order == "big" else list(reversed(words))
    out = b"".join(w.to_bytes(2, "big") for w in ordered)
    if part.byte_order == "little":
        out = b"".join(out[i : i + 2][::-1] for i in range(0, len(out), 2))
    return out


def decode_part(part: RegisterPart, words: list[int]) -> float:
    """Decode one part's raw value (before scaling) from exactly ``part.width`` words."""
    if len(words) != part.width:
        raise DecodeError(f"{part.type} at {part.address} needs {part.width} registers, got {len(words)}")
    for w in words:
        if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= 0xFFFF:
            raise DecodeError(f"register value {w!r} is not a 16-bit unsigned integer")
    (raw,) = struct.unpack(_STRUCT[part.type], _words_to_bytes(words, part))
    return float(raw)


def decode_total(register_map: RegisterMap, words: list[int]) -> float:
    """The cumulative total from the words of the map's read span; raise DecodeError when it is invalid."""
    if len(words) != register_map.count:
        raise DecodeError(
            f"{register_map.name or register_map.model}: "
            f"expected {register_map.count} registers, got {len(words)}"
        )
    total = 0.0
    for part in register_map.total:
        offset = part.address - register_map.start
        raw = decode_part(part, words[offset : offset + part.width])
        if not math.isfinite(raw):
            raise DecodeError(f"{register_map.name}: register {part.address} holds {raw}, not a number")
        total += raw * part.scale
    if not math.isfinite(total):
        raise DecodeError(f"{register_map.name}: total {total} is not finite")
    if total < 0:
        raise DecodeError(f"{register_map.name}: cumulative total {total} is negative")
    return total


def encode_part(part: RegisterPart, raw: float) -> list[int]:
    """The words that hold ``raw`` (before scaling) for one part; the inverse of ``decode_part``."""
    value: float | int = round(raw) if part.type in _INTEGER else raw
    try:
        packed = struct.pack(_STRUCT[part.type], value)
    except struct.error as err:
        raise DecodeError(f"{raw} does not fit a {part.type}") from err
    if part.byte_order == "little":
        packed = b"".join(packed[i : i + 2][::-1] for i in range(0, len(packed), 2))
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
    return words if part.word_order == "big" else list(reversed(words))


def encode_total(register_map: RegisterMap, total: float) -> list[int]:
    """Words of the read span that decode to ``total``: integer parts take whole units, the last the rest."""
    if not math.isfinite(total) or total < 0:
        raise DecodeError(f"cannot encode total {total}")
    words = [0] * register_map.count
    remaining = total
    parts = register_map.total
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        raw = remaining / part.scale
        if not last and part.type in _INTEGER:
            raw = math.floor(raw)
        offset = part.address - register_map.start
        words[offset : offset + part.width] = encode_part(part, raw)
        remaining -= decode_part(part, words[offset : offset + part.width]) * part.scale
    return words
