"""DL/T 645-2007 and CJ/T 188-2004 frames: property-based round trips, corruption caught, streams resynced."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anju.edge_agent import cjt188, dlt645
from anju.edge_agent.framing import FrameError, bcd_decode, bcd_encode, take_frame
from anju_wire.payloads import MeterKind

dlt_addresses = st.text(alphabet="0123456789", min_size=12, max_size=12)
cjt_addresses = st.text(alphabet="0123456789", min_size=14, max_size=14)
payloads = st.binary(max_size=64)
noise = st.binary(max_size=20).map(lambda b: b.replace(b"\x68", b""))


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_bcd_round_trips(value: int) -> None:
    assert bcd_decode(bcd_encode(value, 6)) == value


def test_bcd_by_hand() -> None:
    # 123456.78 kWh as a meter sends it: 78 56 34 12
    assert bcd_encode(12345678, 4) == bytes.fromhex("78563412")
    with pytest.raises(FrameError, match="not BCD"):
        bcd_decode(b"\x1a")
    with pytest.raises(FrameError, match="does not fit"):
        bcd_encode(10**8, 4)


def test_dlt645_request_matches_the_standard_by_hand() -> None:
    # address 000000000001, read 00 01 00 00: DI sent DI0 first, each byte +0x33
    frame = dlt645.read_request("000000000001")
    assert frame.hex(" ") == "68 01 00 00 00 00 00 68 11 04 33 33 34 33 b3 16"


def test_dlt645_energy_reply_by_hand() -> None:
    reply = dlt645.energy_reply("123456789012", 1234.56)
    assert reply[:10] == bytes.fromhex("68 12 90 78 56 34 12 68 91 08")
    # DI 33 33 34 33, then 1234.56 = 00 12 34 56 -> 56 34 12 00 sent, each +0x33
    assert reply[10:18] == bytes.fromhex("33 33 34 33 89 67 45 33")
    assert dlt645.parse_energy(b"\xfe\xfe\xfe\xfe" + reply, address="123456789012") == 1234.56


@given(dlt_addresses, st.integers(min_value=0, max_value=255), payloads)
def test_dlt645_frames_round_trip(address: str, control: int, data: bytes) -> None:
    frame = dlt645.Frame(address, control, data)
    assert dlt645.decode(dlt645.encode(frame)) == frame


@given(dlt_addresses, st.integers(min_value=0, max_value=10**8 - 1))
def test_dlt645_energy_round_trips(address: str, hundredths: int) -> None:
    reply = dlt645.energy_reply(address, hundredths / 100)
    assert dlt645.parse_energy(reply, address=address) == hundredths / 100


@given(dlt_addresses, payloads, st.data())
def test_any_single_byte_change_is_caught(address: str, data: bytes, draw: st.DataObject) -> None:
    raw = bytearray(dlt645.encode(dlt645.Frame(address, 0x91, data)))
    i = draw.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[i] ^= draw.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(FrameError):
        dlt645.decode(bytes(raw))


@given(noise, dlt_addresses, payloads, noise)
def test_a_frame_is_found_in_noise(before: bytes, address: str, data: bytes, after: bytes) -> None:
    wire = dlt645.encode(dlt645.Frame(address, 0x91, data))
    stream = bytearray(before + b"\xfe\xfe" + wire + after)
    found = None
    for _ in range(4):  # drop what take_frame says to drop, as the serial reader does
        found, drop = take_frame(stream, length_at=dlt645.LENGTH_AT)
        if found is not None:
            break
        del stream[:drop]
    assert found == wire


@given(dlt_addresses, payloads, st.integers(min_value=1, max_value=40))
def test_a_frame_split_across_reads_waits_for_its_end(address: str, data: bytes, cut: int) -> None:
    wire = dlt645.encode(dlt645.Frame(address, 0x91, data))
    cut = min(cut, len(wire) - 1)
    assert take_frame(wire[:cut], length_at=dlt645.LENGTH_AT)[0] is None
    assert take_frame(wire, length_at=dlt645.LENGTH_AT) == (wire, len(wire))


def test_dlt645_answers_that_do_not_answer_us() -> None:
    with pytest.raises(dlt645.DeviceError, match="no such data"):
        dlt645.parse_energy(dlt645.error_reply("000000000007"), address="000000000007")
    with pytest.raises(FrameError, match="answer from 000000000008"):
        dlt645.parse_energy(dlt645.energy_reply("000000000008", 1.0), address="000000000007")
    with pytest.raises(FrameError, match="data item"):
        dlt645.parse_energy(dlt645.energy_reply("000000000007", 1.0, di=0x00020000), address="000000000007")
    with pytest.raises(FrameError, match="does not answer a read"):
        dlt645.parse_energy(dlt645.read_request("000000000007"), address="000000000007")


def test_dlt645_register_wraps_like_a_meter() -> None:
    wrapped = dlt645.energy_reply("000000000001", 1_000_000.25)
    assert dlt645.parse_energy(wrapped, address="000000000001") == 0.25


@given(st.sampled_from([0x10, 0x11, 0x30]), cjt_addresses, st.integers(min_value=0, max_value=255), payloads)
def test_cjt188_frames_round_trip(meter_type: int, address: str, control: int, data: bytes) -> None:
    frame = cjt188.Frame(meter_type, address, control, data)
    assert cjt188.decode(cjt188.encode(frame)) == frame


@given(cjt_addresses, st.integers(min_value=0, max_value=10**8 - 1), st.integers(min_value=0, max_value=255))
def test_cjt188_flow_round_trips(address: str, hundredths: int, ser: int) -> None:
    at = datetime(2026, 3, 4, 5, 6, 7)
    reply = cjt188.flow_reply(0x10, address, hundredths / 100, at, ser)
    assert cjt188.parse_flow(reply, meter_type=0x10, address=address) == hundredths / 100


def test_cjt188_request_and_reply_by_hand() -> None:
    req = cjt188.read_request(cjt188.METER_TYPES[MeterKind.WATER], "12345678901234")
    assert req.hex(" ") == "68 10 34 12 90 78 56 34 12 01 03 90 1f 00 " + f"{sum(req[:-2]) & 0xFF:02x} 16"
    reply = cjt188.flow_reply(0x10, "12345678901234", 12.5, datetime(2026, 3, 4, 5, 6, 7))
    assert reply[9:11] == b"\x81\x16"
    assert reply[14:19] == bytes.fromhex("50 12 00 00 2c")  # 12.50 m3: 00 00 12 50 sent low first
    assert reply[24:31] == bytes.fromhex("07 06 05 04 03 26 20")  # 2026-03-04 05:06:07, seconds first


def test_cjt188_answers_that_do_not_answer_us() -> None:
    at = datetime(2026, 1, 1)
    with pytest.raises(cjt188.DeviceError, match="status 0x0004"):
        cjt188.parse_flow(cjt188.error_reply(0x10, "00000000000001"), meter_type=0x10,
                          address="00000000000001")  # fmt: skip
    with pytest.raises(FrameError, match="type 0x30"):
        cjt188.parse_flow(cjt188.flow_reply(0x30, "00000000000001", 1, at), meter_type=0x10,
                          address="00000000000001")  # fmt: skip
    litres = bytearray(cjt188.flow_reply(0x10, "00000000000001", 12.5, at))
    litres[18], litres[23] = 0x29, 0x29  # the same count in litres
    litres[-2] = sum(litres[:-2]) & 0xFF
    assert cjt188.parse_flow(bytes(litres), meter_type=0x10, address="00000000000001") == 0.0125
