"""CJ/T 188-2004, the Chinese household meter protocol for water, gas and heat meters: frames as bytes.

Frame: ``68 T A0..A6 C L DATA CS 16``. ``T`` is the meter type (0x10 cold water, 0x11 hot water, 0x30
gas), the address 14 decimal digits in BCD, low byte first (``AAAAAAAAAAAAAA`` is the wildcard). No offset
on DATA. To read the meter the master sends control ``0x01`` with ``DI = 90 1F`` and a sequence byte; the
meter answers ``0x81`` with DI, SER, the current cumulative flow (4 BCD bytes, ``XXXXXX.XX``) and its unit
code, the flow at the last settlement day, the meter's clock and two status bytes; or ``0xC1`` (error).

Pure functions only; ``anju.edge_agent.serial_poll`` moves the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from anju.edge_agent.framing import (
    START,
    DeviceError,
    FrameError,
    address_bytes,
    address_text,
    bcd_decode,
    bcd_encode,
    seal,
    unseal,
)
from anju_wire.payloads import MeterKind

ADDRESS_SIZE = 7
LENGTH_AT = 10
READ = 0x01
REPLY = 0x80
ERROR = 0x40
READ_DATA = b"\x90\x1f"
METER_TYPES = {MeterKind.WATER: 0x10, MeterKind.GAS: 0x30}
# Unit codes of a flow total and what one count of XXXXXX.XX is in m3.
UNITS_M3 = {0x2C: 1.0, 0x29: 0.001}  # m3, litres
FLOW_DIGITS = 8
FLOW_SCALE = 100
FLOW_MAX = (10**FLOW_DIGITS - 1) / FLOW_SCALE
REPLY_LENGTH = 22  # DI(2) SER(1) current(4+1) settlement(4+1) clock(7) status(2)
WILDCARD = "AAAAAAAAAAAAAA"


@dataclass(frozen=True, slots=True)
class Frame:
    """One CJ/T 188 frame."""

    meter_type: int
    address: str
    control: int
    data: bytes


def encode(frame: Frame) -> bytes:
    """The bytes of ``frame`` on the wire (without wake-up bytes)."""
    if len(frame.data) > 255 or not (0 <= frame.control <= 255 and 0 <= frame.meter_type <= 255):
        raise FrameError("type and control must be one byte and data at most 255 bytes")
    head = bytes([START, frame.meter_type]) + address_bytes(frame.address, ADDRESS_SIZE)
    return seal(head + bytes([frame.control, len(frame.data)]) + frame.data)


def decode(raw: bytes) -> Frame:
    """The frame in ``raw`` (wake-up bytes allowed before it); FrameError when it is not one."""
    body = unseal(raw, length_at=LENGTH_AT)
    return Frame(meter_type=body[1], address=address_text(body[2:9]), control=body[9], data=body[11:])


def read_request(meter_type: int, address: str, ser: int = 0) -> bytes:
    """The master's request for the current totals of the meter at ``address``."""
    return encode(Frame(meter_type, address, READ, READ_DATA + bytes([ser & 0xFF])))


def _clock_bytes(at: datetime) -> bytes:
    digits = at.strftime("%Y%m%d%H%M%S")  # 14 digits: sent seconds first
    return bcd_encode(int(digits), 7)


def flow_reply(meter_type: int, address: str, m3: float, at: datetime, ser: int = 0) -> bytes:
    """A meter's normal answer carrying ``m3`` (wrapped at the register's size, as a meter does)."""
    raw = round(m3 * FLOW_SCALE) % 10**FLOW_DIGITS
    flow = bcd_encode(raw, FLOW_DIGITS // 2) + b"\x2c"
    data = READ_DATA + bytes([ser & 0xFF]) + flow + flow + _clock_bytes(at) + b"\x00\x00"
    return encode(Frame(meter_type, address, READ | REPLY, data))


def error_reply(meter_type: int, address: str, ser: int = 0, status: int = 0x0004) -> bytes:
    """A meter's abnormal answer (status bit 2: valve or reading fault)."""
    data = bytes([ser & 0xFF]) + status.to_bytes(2, "little")
    return encode(Frame(meter_type, address, READ | REPLY | ERROR, data))


def parse_flow(raw: bytes, *, meter_type: int, address: str) -> float:
    """The current cumulative total in m3 a meter's answer carries; FrameError when it does not answer us."""
    frame = decode(raw)
    if frame.address != address and address != WILDCARD:
        raise FrameError(f"answer from {frame.address}, not {address}")
    if frame.meter_type != meter_type:
        raise FrameError(f"answer from a type 0x{frame.meter_type:02X} meter, not 0x{meter_type:02X}")
    if frame.control == READ | REPLY | ERROR:
        status = int.from_bytes(frame.data[1:3], "little") if len(frame.data) >= 3 else 0
        raise DeviceError(f"meter error, status 0x{status:04X}")
    if frame.control != READ | REPLY:
        raise FrameError(f"control 0x{frame.control:02X} does not answer a read")
    if len(frame.data) != REPLY_LENGTH or frame.data[:2] != READ_DATA:
        raise FrameError(f"not a 90 1F answer of {REPLY_LENGTH} bytes")
    unit = frame.data[7]
    if unit not in UNITS_M3:
        raise FrameError(f"unknown unit code 0x{unit:02X}")
    return bcd_decode(frame.data[3:7]) / FLOW_SCALE * UNITS_M3[unit]
