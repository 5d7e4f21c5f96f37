"""The register encoder against the map files, checked with an independent struct decoding."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from anju.device_sims.registers import (
    EncodeError,
    RegisterMapError,
    RegisterPart,
    encode_raw,
    encode_value,
    load_maps,
    map_for_meter,
)
from anju_wire import MeterKind


def test_sdm120_total_energy_is_big_endian_float32_at_342() -> None:
    sdm = map_for_meter(MeterKind.ELECTRICITY)
    assert sdm.name == "eastron_sdm120" and sdm.function_code == 4
    words = encode_value(sdm, 1234.5)
    expected = struct.unpack(">HH", struct.pack(">f", 1234.5))
    assert words == {342: expected[0], 343: expected[1]}


def test_every_utility_has_a_map_with_a_source() -> None:
    maps = load_maps()
    assert {m.meter for m in maps.values()} >= set(MeterKind)
    for m in maps.values():
        assert m.source and m.total


@pytest.mark.parametrize("value", [0.0, 0.01, 57.3, 1234.56, 98765.43])
def test_multi_part_maps_round_trip(value: float) -> None:
    for meter in (MeterKind.WATER, MeterKind.GAS):
        reg_map = map_for_meter(meter)
        words = encode_value(reg_map, value)
        total = 0.0
        for part in reg_map.total:
            regs = [words[part.address + i] for i in range(part.words)]
            if part.word_order == "little":
                regs.reverse()
            raw_bytes = b"".join(
                r.to_bytes(2, "big")[::-1] if part.byte_order == "little" else r.to_bytes(2, "big")
                for r in regs
            )
            fmt = {"float32": ">f", "uint32": ">I", "int32": ">i", "uint16": ">H", "int16": ">h"}[part.type]
            total += struct.unpack(fmt, raw_bytes)[0] * part.scale
        tolerance = 0.011 if any(p.scale == 0.01 for p in reg_map.total) else 1e-3
        assert total == pytest.approx(value, abs=tolerance)
        assert total <= value + 1e-6, "a counter shows whole pulses, never more than used"


def test_word_and_byte_order() -> None:
    assert encode_raw(RegisterPart(0, "uint32"), 0x11223344) == [0x1122, 0x3344]
    assert encode_raw(RegisterPart(0, "uint32", word_order="little"), 0x11223344) == [0x3344, 0x1122]
    assert encode_raw(RegisterPart(0, "uint32", byte_order="little"), 0x11223344) == [0x2211, 0x4433]
    assert encode_raw(RegisterPart(0, "int16"), -2) == [0xFFFE]
    with pytest.raises(EncodeError):
        encode_raw(RegisterPart(0, "uint16"), 70000)


def test_bad_map_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "meter: electricity\nfunction: input\ntotal:\n  - {address: 1, type: x}\n"
    )
    with pytest.raises(RegisterMapError, match="unknown register type"):
        load_maps(tmp_path)
