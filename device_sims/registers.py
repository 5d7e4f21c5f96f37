"""Register-map encoder: turn a meter's cumulative value into the 16-bit words its register map promises.

Written apart from the edge agent's decoder on purpose: the two meet only at the map files in
``edge_agent/maps/*.yaml``, so a misreading of a map on either side shows up as a failed round trip.
"""

from __future__ import annotations

import importlib.util
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from anju_wire import MeterKind

RegisterKind = Literal["float32", "uint32", "int32", "uint16", "int16"]
Order = Literal["big", "little"]

_FORMATS: dict[str, str] = {"float32": ">f", "uint32": ">I", "int32": ">i", "uint16": ">H", "int16": ">h"}
_INT_RANGE: dict[str, tuple[int, int]] = {
    "uint32": (0, 2**32 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint16": (0, 2**16 - 1),
    "int16": (-(2**15), 2**15 - 1),
}
_EPS = 1e-6  # raw counts this close below an integer are that integer (binary fractions of 0.01 etc.)


class RegisterMapError(ValueError):
    """A register map file is missing or malformed."""


class EncodeError(ValueError):
    """A value cannot be represented in the registers of a map."""


@dataclass(frozen=True, slots=True)
class RegisterPart:
    """One value in the registers; the meter's total is the sum over parts of ``raw * scale``."""

    address: int
    type: RegisterKind
    word_order: Order = "big"
    byte_order: Order = "big"
    scale: float = 1.0

    @property
    def words(self) -> int:
        """How many 16-bit registers this part occupies."""
        return 1 if self.type in ("uint16", "int16") else 2

    @property
    def is_integer(self) -> bool:
        """Whether the raw value is an integer type."""
        return self.type != "float32"


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """A meter model's cumulative-total registers, as read from its map file."""

    name: str
    model: str
    meter: MeterKind
    unit: str
    source: str
    function: Literal["input", "holding"]
    total: tuple[RegisterPart, ...]

    @property
    def function_code(self) -> int:
        """The Modbus read function: 4 for input registers, 3 for holding registers."""
        return 4 if self.function == "input" else 3


def maps_dir() -> Path:
    """The folder of register map files (``edge_agent/maps``), found without importing the agent."""
    candidates = [Path(__file__).resolve().parents[1] / "edge_agent" / "maps"]
    spec = importlib.util.find_spec("anju.edge_agent")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(loc) / "maps" for loc in spec.submodule_search_locations]
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise RegisterMapError(f"no register map folder; looked in {', '.join(map(str, candidates))}")


def _parse_part(raw: Any, where: str) -> RegisterPart:
    if not isinstance(raw, dict):
        raise RegisterMapError(f"{where}: a total part must be a mapping")
    kind = raw.get("type")
    if kind not in _FORMATS:
        raise RegisterMapError(f"{where}: unknown register type {kind!r}")
    orders = (raw.get("word_order", "big"), raw.get("byte_order", "big"))
    if any(o not in ("big", "little") for o in orders):
        raise RegisterMapError(f"{where}: word_order and byte_order must be 'big' or 'little'")
    address, scale = raw.get("address"), float(raw.get("scale", 1.0))
    if not isinstance(address, int) or not 0 <= address <= 65535:
        raise RegisterMapError(f"{where}: address must be an integer 0..65535")
    if scale == 0 or not math.isfinite(scale):
        raise RegisterMapError(f"{where}: scale must be finite and non-zero")
    return RegisterPart(address=address, type=kind, word_order=orders[0], byte_order=orders[1], scale=scale)


def parse_map(name: str, data: Any) -> RegisterMap:
    """Validate the YAML content of one map file."""
    if not isinstance(data, dict):
        raise RegisterMapError(f"{name}: a map file must be a mapping")
    try:
        meter = MeterKind(str(data.get("meter")))
    except ValueError as err:
        raise RegisterMapError(f"{name}: unknown meter {data.get('meter')!r}") from err
    function = data.get("function")
    if function not in ("input", "holding"):
        raise RegisterMapError(f"{name}: function must be 'input' or 'holding'")
    parts = data.get("total")
    if not isinstance(parts, list) or not parts:
        raise RegisterMapError(f"{name}: total must list at least one register part")
    total = tuple(_parse_part(p, f"{name}.total[{i}]") for i, p in enumerate(parts))
    return RegisterMap(
        name=name, model=str(data.get("model", name)), meter=meter, unit=str(data.get("unit", "")),
        source=" ".join(str(data.get("source", "")).split()), function=function, total=total,
    )


def load_map(name: str, folder: Path | None = None) -> RegisterMap:
    """Read ``<folder>/<name>.yaml`` (default folder: ``edge_agent/maps``)."""
    path = (folder or maps_dir()) / f"{name}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RegisterMapError(f"cannot read register map {path}: {err}") from err
    return parse_map(name, yaml.safe_load(text))


def load_maps(folder: Path | None = None) -> dict[str, RegisterMap]:
    """Every map in the folder, by name."""
    base = folder or maps_dir()
    return {p.stem: load_map(p.stem, base) for p in sorted(base.glob("*.yaml"))}


# The model each utility is simulated with unless a map is chosen; fixed by name so that adding a
# second map for a utility (e.g. chint_ddsu666) does not change what the simulators serve.
DEFAULT_MAPS: dict[MeterKind, str] = {
    MeterKind.ELECTRICITY: "eastron_sdm120",
    MeterKind.WATER: "tuf_2000m",
    MeterKind.GAS: "advantech_adam6051_counter",
}


def map_for_meter(meter: MeterKind | str, folder: Path | None = None) -> RegisterMap:
    """The map used for a utility: its DEFAULT_MAPS entry, else the first by name whose ``meter:`` matches."""
    kind = MeterKind(meter)
    maps = load_maps(folder)
    default = maps.get(DEFAULT_MAPS[kind])
    if default is not None and default.meter is kind:
        return default
    for reg_map in maps.values():
        if reg_map.meter is kind:
            return reg_map
    raise RegisterMapError(f"no register map for meter {kind.value}")


def encode_raw(part: RegisterPart, raw: float | int) -> list[int]:
    """The 16-bit register words holding ``raw`` in this part's type and word/byte order."""
    if part.is_integer:
        lo, hi = _INT_RANGE[part.type]
        if not isinstance(raw, int) or not lo <= raw <= hi:
            raise EncodeError(f"{raw!r} does not fit {part.type}")
    data = struct.pack(_FORMATS[part.type], raw)
    words = [data[i:i + 2] for i in range(0, len(data), 2)]  # high word first
    if part.word_order == "little":
        words.reverse()
    if part.byte_order == "little":
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def split_value(reg_map: RegisterMap, value: float) -> list[float | int]:
    """Raw values of each part so that the sum of ``raw * scale`` is ``value``.

    Integer parts take the whole multiples of their scale (a pulse counter counts whole pulses; a
    counter's integer part is the whole units); a float part takes what remains.
    """
    if not math.isfinite(value):
        raise EncodeError(f"cannot encode {value!r}")
    remaining = value
    raws: list[float | int] = []
    for part in reg_map.total:
        if part.is_integer:
            count = math.floor(remaining / part.scale + _EPS)
            remaining -= count * part.scale
            if part.type in ("uint32", "uint16"):
                count %= 2 ** (16 * part.words)  # a real counter rolls over; the hub handles the reset
            raws.append(count)
        else:
            raws.append(remaining / part.scale)
            remaining = 0.0
    return raws


def encode_value(reg_map: RegisterMap, value: float) -> dict[int, int]:
    """Register address -> 16-bit word for the meter's cumulative ``value``."""
    words: dict[int, int] = {}
    for part, raw in zip(reg_map.total, split_value(reg_map, value), strict=True):
        for offset, word in enumerate(encode_raw(part, raw)):
            words[part.address + offset] = word
    return words
