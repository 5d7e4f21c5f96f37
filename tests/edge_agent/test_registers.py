"""Register maps: the shipped files load, decoding is exact, and bad input gives a clear error."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anju.edge_agent.errors import DecodeError, RegisterMapError
from anju.edge_agent.registers import (
    RegisterMap,
    RegisterPart,
    RegisterType,
    available_maps,
    decode_part,
    decode_total,
    encode_total,
    load_map,
    parse_map,
)
from anju_wire.payloads import MeterKind

ORDERS = st.sampled_from(["big", "little"])


def test_shipped_maps_load_with_sources() -> None:
    names = available_maps()
    assert {"eastron_sdm120", "chint_ddsu666", "tuf_2000m", "advantech_adam6051_counter"} <= set(names)
    meters = {load_map(n).meter for n in names}
    assert meters == {MeterKind.ELECTRICITY, MeterKind.WATER, MeterKind.GAS}
    for n in names:
        assert len(load_map(n).source) > 40


def test_eastron_total_kwh_is_input_register_30343() -> None:
    m = load_map("eastron_sdm120")
    assert (m.function_code, m.start, m.count) == (4, 342, 2)
    hi, lo = struct.unpack(">HH", struct.pack(">f", 1532.47))
    assert decode_total(m, [hi, lo]) == pytest.approx(1532.47, rel=1e-7)


def test_chint_ddsu666_import_energy_is_float_at_0x4000() -> None:
    m = load_map("chint_ddsu666")
    assert (m.meter, m.function_code, m.start, m.count) == (MeterKind.ELECTRICITY, 4, 0x4000, 2)
    # the bytes of Tasmota's example reading, 478.492 kWh, as they come off the wire
    hi, lo = struct.unpack(">HH", struct.pack(">f", 478.492))
    assert decode_total(m, [hi, lo]) == pytest.approx(478.492, rel=1e-7)


def test_tuf_2000m_adds_integer_and_fraction_low_word_first() -> None:
    m = load_map("tuf_2000m")
    assert (m.function_code, m.start, m.count) == (3, 8, 4)
    i_hi, i_lo = struct.unpack(">HH", struct.pack(">i", 87))
    f_hi, f_lo = struct.unpack(">HH", struct.pack(">f", 0.315))
    assert decode_total(m, [i_lo, i_hi, f_lo, f_hi]) == pytest.approx(87.315, abs=1e-6)


def test_adam6051_counter_times_pulse_weight() -> None:
    m = load_map("advantech_adam6051_counter")
    count = 3 * 65536 + 17
    assert decode_total(m, [17, 3]) == pytest.approx(count * 0.01)


@given(
    typ=st.sampled_from(list(RegisterType)),
    word_order=ORDERS,
    byte_order=ORDERS,
    data=st.data(),
)
def test_part_round_trip_with_struct_made_words(
    typ: RegisterType, word_order: str, byte_order: str, data: st.DataObject
) -> None:
    fmt = {"float32": ">f", "uint32": ">I", "int32": ">i", "uint16": ">H", "int16": ">h"}[typ.value]
    if typ is RegisterType.FLOAT32:
        value: float = data.draw(st.floats(width=32, allow_nan=False, allow_infinity=False))
    else:
        bits = struct.calcsize(fmt) * 8
        signed = fmt[1].islower()
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        value = data.draw(st.integers(lo, hi))
    raw = struct.pack(fmt, value)
    if byte_order == "little":
        raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    if word_order == "little":
        words.reverse()
    part = RegisterPart(address=10, type=typ, word_order=word_order, byte_order=byte_order)
    assert decode_part(part, words) == value


@given(name=st.sampled_from(["eastron_sdm120", "chint_ddsu666", "tuf_2000m", "advantech_adam6051_counter"]),
       total=st.floats(min_value=0, max_value=1e6, allow_nan=False))  # fmt: skip
def test_shipped_maps_encode_decode_round_trip(name: str, total: float) -> None:
    m = load_map(name)
    words = encode_total(m, total)
    assert len(words) == m.count
    # float32 keeps ~7 significant digits; the pulse counter resolves 0.01 m3
    assert decode_total(m, words) == pytest.approx(total, rel=1e-6, abs=0.006)


@given(words=st.lists(st.integers(min_value=-5, max_value=70000), min_size=0, max_size=6))
def test_any_words_decode_or_raise_decode_error(words: list[int]) -> None:
    for name in available_maps():
        try:
            value = decode_total(load_map(name), words)
        except DecodeError:
            continue
        assert math.isfinite(value) and value >= 0


@pytest.mark.parametrize(
    ("words", "message"),
    [([0x7FC0, 0], "not a number"), ([0xBF80, 0], "negative"), ([1], "expected 2 registers"),
     ([70000, 0], "16-bit"), ([0x7F80, 0], "not a number")],
)  # fmt: skip
def test_bad_words_name_the_problem(words: list[int], message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_total(load_map("eastron_sdm120"), words)


GOOD = """
model: X
meter: water
unit: m3
source: a document
function: holding
total:
  - {address: 0, type: uint32}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("unit: m3", "unit: kWh"), "reports m3"),
        (GOOD.replace("uint32", "float64"), "total.0.type"),
        (GOOD + "  - {address: 1, type: uint16}\n", "overlaps"),
        (GOOD + "  - {address: 200, type: uint16}\n", "at most 125"),
        (GOOD.replace("function: holding", "function: coil"), "function"),
        (GOOD.replace("{address: 0, type: uint32}", "{address: 0, type: uint32, scale: 0}"), "scale"),
        ("just text", "mapping"),
        ("a: [", "not valid YAML"),
        (GOOD.replace("source: a document\n", ""), "source"),
    ],
)
def test_bad_maps_are_refused_with_the_field(text: str, message: str) -> None:
    with pytest.raises(RegisterMapError, match=message):
        parse_map(text, name="bad")


def test_unknown_or_unsafe_map_names() -> None:
    with pytest.raises(RegisterMapError, match="unknown register map"):
        load_map("no_such_meter")
    with pytest.raises(RegisterMapError, match="invalid register map name"):
        load_map("../site")


def test_read_span_covers_gaps() -> None:
    m = RegisterMap.model_validate(
        {"model": "m", "meter": "gas", "unit": "m3", "source": "s", "function": "input",
         "total": [{"address": 20, "type": "uint16"}, {"address": 10, "type": "float32", "scale": 2}]}
    )  # fmt: skip
    assert (m.start, m.count) == (10, 11)
    words = [0] * 11
    words[0:2] = list(struct.unpack(">HH", struct.pack(">f", 1.5)))
    words[10] = 7
    assert decode_total(m, words) == 10.0
