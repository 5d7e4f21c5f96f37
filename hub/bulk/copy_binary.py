"""COPY BINARY encoding of meter readings rows (ts, unit_id, meter, value); pure, no database."""

from __future__ import annotations

import struct

import numpy as np

# COPY BINARY framing, and each row's constant parts: 4 fields, then ts (8 bytes) ... value (8 bytes).
BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
BINARY_TRAILER = b"\xff\xff"
PG_EPOCH_S = 946_684_800  # 2000-01-01T00:00:00Z, where PostgreSQL's timestamps count from
_ROW_START = np.frombuffer(struct.pack(">hi", 4, 8), np.uint8)
_VALUE_START = np.frombuffer(struct.pack(">i", 8), np.uint8)


def binary_rows(key: bytes, ts_be: np.ndarray, value_be: np.ndarray) -> bytes:
    """COPY BINARY rows (ts, unit_id, meter, value) of one series: ``key`` is ``unit_id,meter``.

    ``ts_be`` holds each row's microseconds since ``PG_EPOCH_S`` and ``value_be`` its float8, both as
    (rows, 8) big-endian bytes.
    """
    unit, meter = key.split(b",")
    fields = struct.pack(">i", len(unit)) + unit + struct.pack(">i", len(meter)) + meter
    width = 14 + len(fields) + 12
    out = np.empty((len(ts_be), width), np.uint8)
    out[:, 0:6] = _ROW_START
    out[:, 6:14] = ts_be
    out[:, 14:14 + len(fields)] = np.frombuffer(fields, np.uint8)
    out[:, width - 12:width - 8] = _VALUE_START
    out[:, width - 8:] = value_be
    return out.tobytes()
