"""What DL/T 645-2007 and CJ/T 188-2004 frames share: little-endian BCD, the additive checksum, addresses
of decimal digits sent low byte first, and finding one whole frame in the bytes a serial line delivers.

Both frames run ``0x68 ... C L DATA CS 0x16``: ``L`` sits at a fixed offset in the header, ``CS`` is the sum
modulo 256 of every byte from the first ``0x68`` to the end of ``DATA``. Meters may send ``0xFE`` wake-up
bytes before the frame; anything before the first ``0x68`` is skipped.
"""

from __future__ import annotations

from anju.edge_agent.errors import DecodeError

START = 0x68
END = 0x16
WAKE = b"\xfe\xfe\xfe\xfe"


class FrameError(DecodeError):
    """Bytes that are not a valid frame of the protocol, or a frame that does not answer the request."""


class DeviceError(FrameError):
    """The meter answered with an abnormal (error) frame."""


def checksum(data: bytes | bytearray) -> int:
    """The frame checksum: the sum of the bytes modulo 256."""
    return sum(data) & 0xFF


def bcd_encode(value: int, size: int) -> bytes:
    """``value`` as ``size`` bytes of packed BCD, least significant byte first."""
    if value < 0 or value >= 100**size:
        raise FrameError(f"{value} does not fit {size} BCD bytes")
    out = bytearray()
    for _ in range(size):
        value, pair = divmod(value, 100)
        out.append((pair // 10) << 4 | pair % 10)
    return bytes(out)


def bcd_decode(data: bytes | bytearray) -> int:
    """The number in packed BCD bytes, least significant byte first; FrameError on a nibble above 9."""
    value = 0
    for byte in reversed(data):
        hi, lo = byte >> 4, byte & 0x0F
        if hi > 9 or lo > 9:
            raise FrameError(f"byte 0x{byte:02X} is not BCD")
        value = value * 100 + hi * 10 + lo
    return value


def address_bytes(address: str, size: int, *, wildcard: str = "A") -> bytes:
    """A meter address of ``2 * size`` decimal digits (or all ``wildcard``) as sent: low byte first."""
    if len(address) != 2 * size:
        raise FrameError(f"address {address!r} must have {2 * size} digits")
    if address == wildcard * (2 * size):
        return bytes([int(wildcard * 2, 16)]) * size
    if not address.isdigit() or not address.isascii():
        raise FrameError(f"address {address!r} must be decimal digits")
    return bytes.fromhex(address)[::-1]


def address_text(data: bytes | bytearray) -> str:
    """The address digits of the bytes of an address field (the inverse of ``address_bytes``)."""
    return bytes(data[::-1]).hex().upper()


def take_frame(buf: bytes | bytearray, *, length_at: int) -> tuple[bytes | None, int]:
    """The first whole, well-formed frame in ``buf`` and how many bytes of ``buf`` to drop.

    ``length_at`` is the offset of ``L`` from the frame's ``0x68``. (None, n): no whole frame yet; drop the
    first ``n`` bytes (noise before a possible start, or a false start) and wait for more.
    """
    start = 0
    while True:
        i = buf.find(START, start)
        if i < 0:
            return None, len(buf)
        if len(buf) - i <= length_at:
            return None, i
        total = length_at + 1 + buf[length_at + i] + 2
        if len(buf) - i < total:
            return None, i
        frame = bytes(buf[i : i + total])
        if frame[-1] == END and checksum(frame[:-2]) == frame[-2]:
            return frame, i + total
        start = i + 1  # a 0x68 inside noise: look for the next one


def seal(body: bytes) -> bytes:
    """``body`` (``0x68`` to the end of DATA) with its checksum and end byte."""
    return body + bytes([checksum(body), END])


def unseal(frame: bytes, *, length_at: int) -> bytes:
    """The body of one whole frame (its checksum, end byte and length checked); FrameError otherwise."""
    frame = frame.lstrip(b"\xfe")
    if len(frame) < length_at + 3 or frame[0] != START or frame[-1] != END:
        raise FrameError("not a frame: no 0x68 ... 0x16")
    if len(frame) != length_at + 1 + frame[length_at] + 2:
        have = len(frame) - length_at - 3
        raise FrameError(f"length byte says {frame[length_at]} data bytes, the frame has {have}")
    if checksum(frame[:-2]) != frame[-2]:
        raise FrameError(f"checksum 0x{frame[-2]:02X}, expected 0x{checksum(frame[:-2]):02X}")
    return frame[:-2]
