"""DL/T 645-2007, the Chinese multi-function electricity meter protocol on RS-485: frames as bytes.

Frame: ``68 A0..A5 68 C L DATA CS 16``. The address is 12 decimal digits in BCD, low byte first
(``AAAAAAAAAAAA`` is the wildcard a lone meter answers). Every DATA byte is sent plus ``0x33``. To read a
value the master sends control ``0x11`` with the 4-byte data identifier (DI0 first); the meter answers
``0x91`` (``0xB1``: more frames follow) with the identifier and the value, or ``0xD1`` with one error byte.
The total this agent reads is DI ``00 01 00 00``, forward active energy (正向有功总电能): 4 BCD bytes,
``XXXXXX.XX`` kWh, so the register wraps after 999999.99 kWh.

Pure functions only; ``anju.edge_agent.serial_poll`` moves the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

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

ADDRESS_SIZE = 6
LENGTH_AT = 9  # offset of L from the first 0x68
READ = 0x11
REPLY = 0x80  # set in every answer's control code
ERROR = 0x40  # set in an abnormal answer
MORE = 0x20  # set when follow-up frames carry more data
FORWARD_ACTIVE_TOTAL = 0x00010000
ENERGY_DIGITS = 8  # XXXXXX.XX
ENERGY_SCALE = 100
ENERGY_MAX = (10**ENERGY_DIGITS - 1) / ENERGY_SCALE
WILDCARD = "AAAAAAAAAAAA"
ERRORS = {0x01: "other error", 0x02: "no such data", 0x04: "password error", 0x08: "baud rate cannot change"}


@dataclass(frozen=True, slots=True)
class Frame:
    """One DL/T 645 frame, DATA without its 0x33 offset."""

    address: str
    control: int
    data: bytes


def _offset(data: bytes, delta: int) -> bytes:
    return bytes((b + delta) & 0xFF for b in data)


def encode(frame: Frame) -> bytes:
    """The bytes of ``frame`` on the wire (without wake-up bytes)."""
    if len(frame.data) > 255 or not 0 <= frame.control <= 255:
        raise FrameError("control must be one byte and data at most 255 bytes")
    head = bytes([START]) + address_bytes(frame.address, ADDRESS_SIZE)
    return seal(head + bytes([START, frame.control, len(frame.data)]) + _offset(frame.data, 0x33))


def decode(raw: bytes) -> Frame:
    """The frame in ``raw`` (wake-up bytes allowed before it); FrameError when it is not one."""
    body = unseal(raw, length_at=LENGTH_AT)
    if body[7] != START:
        raise FrameError("no second 0x68 after the address")
    return Frame(address=address_text(body[1:7]), control=body[8], data=_offset(body[10:], -0x33))


def di_bytes(di: int) -> bytes:
    """A 4-byte data identifier as sent: DI0 first."""
    return di.to_bytes(4, "little")


def read_request(address: str, di: int = FORWARD_ACTIVE_TOTAL) -> bytes:
    """The master's request for data item ``di`` of the meter at ``address``."""
    return encode(Frame(address, READ, di_bytes(di)))


def energy_reply(address: str, kwh: float, di: int = FORWARD_ACTIVE_TOTAL) -> bytes:
    """A meter's normal answer carrying ``kwh`` (wrapped at the register's size, as a meter does)."""
    raw = round(kwh * ENERGY_SCALE) % 10**ENERGY_DIGITS
    return encode(Frame(address, READ | REPLY, di_bytes(di) + bcd_encode(raw, ENERGY_DIGITS // 2)))


def error_reply(address: str, code: int = 0x02) -> bytes:
    """A meter's abnormal answer with error byte ``code``."""
    return encode(Frame(address, READ | REPLY | ERROR, bytes([code])))


def parse_energy(raw: bytes, *, address: str, di: int = FORWARD_ACTIVE_TOTAL) -> float:
    """The total in kWh a meter's answer carries; FrameError when it is not the answer to our request."""
    frame = decode(raw)
    if frame.address != address and address != WILDCARD:
        raise FrameError(f"answer from {frame.address}, not {address}")
    if frame.control == READ | REPLY | ERROR:
        code = frame.data[0] if frame.data else 0
        raise DeviceError(f"meter error 0x{code:02X} ({ERRORS.get(code, 'unknown')})")
    if frame.control & ~MORE != READ | REPLY:
        raise FrameError(f"control 0x{frame.control:02X} does not answer a read")
    if frame.data[:4] != di_bytes(di):
        raise FrameError(f"answer for data item {frame.data[:4][::-1].hex()}, not {di:08x}")
    if len(frame.data) != 4 + ENERGY_DIGITS // 2:
        raise FrameError(f"energy needs {ENERGY_DIGITS // 2} bytes, got {len(frame.data) - 4}")
    return bcd_decode(frame.data[4:]) / ENERGY_SCALE
