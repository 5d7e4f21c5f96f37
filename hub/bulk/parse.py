"""Pure parsing of import files: headers, blocks at line boundaries, and the readings fast path.

No database and no I/O beyond reading an open binary file: ``split_readings`` decides, with vectorised
numpy code, which readings lines are certainly valid (and encodes them for COPY BINARY through
``hub.bulk.copy_binary``); every other line is left to the SQL checks in ``hub.bulk.checks``, which stay
the one authority on reasons.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Literal

import numpy as np
from numpy.lib.stride_tricks import as_strided

from anju.hub.bulk.copy_binary import BINARY_HEADER, BINARY_TRAILER, PG_EPOCH_S, binary_rows

Kind = Literal["units", "readings", "access"]

HEADERS: dict[Kind, tuple[str, ...]] = {
    "units": ("unit_id", "estate_id", "building", "floor", "area_m2", "household_size", "lease_start"),
    "readings": ("ts", "unit_id", "meter", "value"),
    "access": ("ts", "device_id", "estate_id", "building", "floor", "method", "person_id", "unit_id",
               "stranger_track"),
}
# Columns added after a kind's first form, taken after HEADERS' as a whole or not at all, so files
# exported before them still import. faces_enrolled: people of the household with a face enrolled at
# the gates (0 = card, code or QR only; empty = not known, which keeps a value already known).
OPTIONAL_COLUMNS: dict[Kind, tuple[str, ...]] = {"units": ("faces_enrolled",)}


class BulkImportError(Exception):
    """A file cannot be imported at all (missing, or its header is not the expected one)."""


def read_block(fh: IO[bytes], size: int) -> bytes:
    """Read about ``size`` bytes ending at a line boundary; empty at end of file."""
    data = fh.read(size)
    if data and not data.endswith(b"\n"):
        data += fh.readline()
    return data


def accepted_headers(kind: Kind) -> tuple[tuple[str, ...], ...]:
    """The headers a file of ``kind`` may have: the first form, then with the optional columns."""
    extra = OPTIONAL_COLUMNS.get(kind, ())
    return (HEADERS[kind], HEADERS[kind] + extra) if extra else (HEADERS[kind],)


def read_header(fh: IO[bytes], kind: Kind, path: Path) -> int:
    """Read the header line, refuse the file unless it is an accepted one; return its number of fields."""
    first = fh.readline().decode("utf-8").lstrip("\ufeff").strip().replace('"', "")
    got = tuple(c.strip() for c in first.split(","))
    accepted = accepted_headers(kind)
    if got not in accepted:
        forms = " or ".join(",".join(h) for h in accepted)
        raise BulkImportError(f"{path}: header must be {forms}, found {first!r}")
    return len(got)


def iter_blocks(fh: IO[bytes], size: int) -> Iterator[bytes]:
    """Blocks of about ``size`` bytes ending at line boundaries, the last one given a final newline."""
    while data := read_block(fh, size):
        if not data.endswith(b"\n"):
            data += b"\n"
        yield data


# --- Readings: the fast path -------------------------------------------------------------------------
#
# Profiling 1.57M readings (300 units x 90 days) on this 2-core VM showed where the old all-SQL path
# spent its time: splitting, checking and casting every line in SQL, then INSERT ... ON CONFLICT into a
# table whose two B-tree indexes are maintained row by row. Even a binary COPY straight into
# meter_readings ran at only 0.28 of a plain COPY into a bare table; COPY into an unindexed table and
# building the indexes afterwards (one sort each) ran at 0.67. So readings now take this route:
#
# 1. The client checks each block with vectorised numpy code against the canonical line form
#    (``YYYY-MM-DDTHH:MM:SS+HH:MM`` or ``...Z``, a known unit, a known meter, an unsigned decimal value
#    of at most 15 digits). Such lines are certainly valid. When the file is grouped by series (the
#    usual export) they are sent as COPY BINARY, built a series at a time, which spares the server
#    its text parsing (about 40% of a CSV COPY); otherwise their original bytes go as CSV. Every other
#    line (bad, or valid in an unusual spelling) goes through the SQL checks (``hub.bulk.checks``),
#    which stay the one authority on reasons, with its line number.
# 2. A month whose partition holds no rows when the import first reaches it is loaded into a fresh
#    unindexed table (in key order, which halves the key index's build); at the end its two indexes
#    are built side by side on two connections and it is swapped in for the empty partition
#    (re-checked under lock). Any other month (already has rows: a re-import, an extension, live
#    ingest; or TimescaleDB, which has no partitions to swap) is merged with ON CONFLICT DO NOTHING.
#    Either way importing twice changes nothing.
# 3. A worker thread reads and checks the next block while the database takes the current one.
#
# Measured on 5.2M rows (1000 units x 90 days), same server and run: plain CSV COPY into a bare
# table ~990k rows/s; this path ~585k rows/s (0.59), of which ~40% is the two index builds.

METERS = frozenset({"electricity", "water", "gas"})
_PAD = 32  # zero bytes around a block so fixed-width windows never leave the buffer
_VALUE_WIDTH = 16  # longest value the fast path takes (15 digits and a dot); longer ones go through SQL
_KEY_WIDTH = 128  # longest "unit_id,meter" the fast path takes
_COLUMNS = np.arange(_KEY_WIDTH, dtype=np.uint8)
_TS_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_OFFSET_DIGITS = np.array([20, 21, 23, 24])
# The digit pairs of "YYYY-MM-DDTHH:MM:SS+HH:MM": century, year, month, day, hour, minute, second, offset.
_TS_TENS = np.array([0, 2, 5, 8, 11, 14, 17, 20, 23])
_TS_ONES = _TS_TENS + 1
_POW10 = 10 ** np.arange(16, dtype=np.int64)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
_FIRST_YEAR, _LAST_YEAR = 1900, 2199


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm, vectorised)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    days: np.ndarray = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days


_MONTH_INDEX0 = _FIRST_YEAR * 12
_MONTH_STARTS_S = _days_from_civil(
    np.repeat(np.arange(_FIRST_YEAR, _LAST_YEAR + 2, dtype=np.int64), 12),
    np.tile(np.arange(1, 13, dtype=np.int64), _LAST_YEAR + 2 - _FIRST_YEAR),
    np.ones(12 * (_LAST_YEAR + 2 - _FIRST_YEAR), np.int64),
) * 86400


def month_of_index(index: int) -> date:
    """The first day of month number ``index`` (year * 12 + month - 1)."""
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class ReadingsBlock:
    """One block of a readings file, split by the client: canonical lines by UTC month, the rest aside."""

    lines: int
    by_month: dict[int, bytes]  # month index -> the block's canonical lines of that month, as CSV
    fast_rows: dict[int, int]  # month index -> how many lines by_month holds for it
    binary: bool  # by_month holds COPY binary data (else the original CSV lines)
    hours: list[int]  # distinct UTC hours (epoch seconds // 3600) of the canonical lines
    others: list[tuple[int, bytes]]  # (line within the block from 1, bytes) of every other line


def _windows(b: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:
    """``width`` bytes starting at each of ``pos`` in ``b``, as a (len(pos), width) array (a copy)."""
    view = as_strided(b, (len(b) - width + 1, width), (1, 1), writeable=False)
    out: np.ndarray = view[pos]
    return out


def split_readings(
    data: bytes, known_units: Collection[str], *, ts_range: tuple[int, int] | None = None
) -> ReadingsBlock:
    """Split a block of readings lines (ending with a newline) into canonical lines by month and the rest.

    A canonical line is certainly valid: it has exactly four unquoted fields, a timestamp
    ``YYYY-MM-DD[T ]HH:MM:SS`` with ``Z`` or a ``+HH:MM``/``-HH:MM`` offset (years 1900 to 2199, and
    within ``ts_range``, epoch seconds inclusive, when given), a unit in ``known_units``, a known meter
    and an unsigned decimal value. Pure: no database, no I/O.
    """
    raw = np.frombuffer(data, np.uint8)
    nl = np.flatnonzero(raw == 10)
    n = len(nl)
    if n == 0:
        return ReadingsBlock(0, {}, {}, False, [], [])
    b = np.zeros(len(raw) + 2 * _PAD, np.uint8)
    b[_PAD:_PAD + len(raw)] = raw
    starts = np.empty(n, np.int64)
    starts[0] = 0
    starts[1:] = nl[:-1] + 1
    has_cr = (nl > starts) & (b[nl - 1 + _PAD] == 13)
    ends = nl - has_cr
    # A block is sent to COPY with one line-ending style: if it mixes styles, CR lines take the slow path.
    crlf_block = bool(has_cr.all())
    commas = np.flatnonzero(raw == 44)
    comma_count = np.bincount(np.searchsorted(nl, commas), minlength=n)[:n]
    ok = comma_count == 3
    if not crlf_block:
        ok &= ~has_cr
    quotes = np.flatnonzero(raw == 34)
    if len(quotes):
        ok[np.searchsorted(nl, quotes)] = False
    rows = np.flatnonzero(ok)
    first = (np.cumsum(comma_count) - comma_count)[rows]
    c1, c3 = commas[first], commas[first + 2]
    s, e = starts[rows], ends[rows]
    good = np.ones(len(rows), bool)

    # Timestamp: every number in it is made of digit pairs.
    t_len = c1 - s
    t = _windows(b, s + _PAD, 25)
    digit = t - np.uint8(48)  # non-digits wrap around to > 9
    good &= (digit[:, _TS_DIGITS] <= 9).all(axis=1)
    good &= (t[:, 4] == 45) & (t[:, 7] == 45) & ((t[:, 10] == 84) | (t[:, 10] == 32))
    good &= (t[:, 13] == 58) & (t[:, 16] == 58)
    zulu = (t_len == 20) & (t[:, 19] == 90)
    offset = ((t_len == 25) & ((t[:, 19] == 43) | (t[:, 19] == 45)) & (t[:, 22] == 58)
              & (digit[:, _OFFSET_DIGITS] <= 9).all(axis=1))
    good &= zulu | offset
    # (n, 9) numbers; garbage in rows already found bad, which nothing below turns good again.
    pairs = (digit[:, _TS_TENS] * np.uint8(10) + digit[:, _TS_ONES]).astype(np.int64)
    year = pairs[:, 0] * 100 + pairs[:, 1]
    month, day, hour, minute, second, off_h, off_m = (pairs[:, i] for i in range(2, 9))
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    good &= (year >= _FIRST_YEAR) & (year <= _LAST_YEAR) & (month >= 1) & (month <= 12)
    good &= (day >= 1) & (day <= month_days) & (hour <= 23) & (minute <= 59) & (second <= 59)
    good &= zulu | ((off_h <= 14) & (off_m <= 59))
    off_s = np.where(zulu, 0, np.where(t[:, 19] == 45, -1, 1) * (off_h * 3600 + off_m * 60))
    secs = ((_days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second - off_s
    if ts_range is not None:  # lines outside go to the SQL checks, which give the reason
        good &= (secs >= ts_range[0]) & (secs <= ts_range[1])

    # Value: digits with at most one dot, read right-aligned on the line end. Each byte is classed
    # (digit 1, dot 32, other 128) and the classes summed: < 64 means no other byte and at most one dot.
    v_len = e - c3 - 1
    good &= (v_len >= 1) & (v_len <= _VALUE_WIDTH)
    v = _windows(b, e + _PAD - _VALUE_WIDTH, _VALUE_WIDTH)
    v_class = np.uint8(128) - np.uint8(127) * ((v - np.uint8(48)) <= 9) - np.uint8(96) * (v == 46)
    v_first = (_VALUE_WIDTH - np.clip(v_len, 0, _VALUE_WIDTH)).astype(np.uint8)
    v_class *= _COLUMNS[:_VALUE_WIDTH] >= v_first[:, None]
    v_sum = v_class.sum(axis=1, dtype=np.uint16)
    good &= (v_sum < 64) & ((v_sum & 31) >= 1) & ((v_sum & 31) <= 15)

    # "unit_id,meter": checked once per run of equal keys (files are grouped by series).
    k_len = c3 - c1 - 1
    width = int(min(max(int(k_len.max(initial=1)), 1), _KEY_WIDTH))
    good &= (k_len >= 1) & (k_len <= width)
    k = _windows(b, c1 + 1 + _PAD, width)
    k *= _COLUMNS[:width] < np.clip(k_len, 0, width).astype(np.uint8)[:, None]
    keys = np.ascontiguousarray(k).view(f"S{width}").ravel()
    run_starts = np.zeros(0, np.int64)
    if len(rows):
        change = np.ones(len(rows), bool)
        change[1:] = keys[1:] != keys[:-1]
        run_starts = np.flatnonzero(change)
        verdict: dict[bytes, bool] = {}
        run_ok = np.empty(len(run_starts), bool)
        for j, key in enumerate(keys[run_starts].tolist()):
            if key not in verdict:
                verdict[key] = _key_ok(key, known_units)
            run_ok[j] = verdict[key]
        good &= np.repeat(run_ok, np.diff(np.append(run_starts, len(rows))))

    fast = np.zeros(n, bool)
    fast[rows[good]] = True
    month_index = np.full(n, -1, np.int64)
    fast_secs = secs[good]
    month_index[rows[good]] = np.searchsorted(_MONTH_STARTS_S, fast_secs, side="right") - 1 + _MONTH_INDEX0
    hours = _distinct(fast_secs // 3600)

    # Runs of consecutive canonical lines of one series and month become slices of the original bytes,
    # put in key order: a load table filled in primary-key order makes the key's index build cheaper.
    by_parts: dict[int, list[bytes]] = {}
    fast_rows: dict[int, int] = {}
    binary = False
    if fast.any():
        series = np.zeros(n, np.int64)
        if len(rows):
            series[rows[run_starts]] = 1
        cut = np.flatnonzero((np.diff(month_index) != 0) | (series[1:] == 1)) + 1
        seg_start = np.concatenate(([0], cut))
        seg_end = np.concatenate((cut, [n]))
        seg_month = month_index[seg_start]
        keep = seg_month >= 0
        seg_start, seg_end, seg_month = seg_start[keep], seg_end[keep], seg_month[keep]
        row_of_line = np.searchsorted(rows, seg_start)
        seg_key = keys[row_of_line].tolist()
        months_of = seg_month.tolist()
        counts = (seg_end - seg_start).tolist()
        order: Iterable[int] = range(len(seg_start))
        # Grouped by series (the usual export): key order, and binary rows built a series at a time.
        # A file in another order keeps its line order and goes as CSV (one slice per line would not pay).
        binary = len(seg_start) <= max(n // 8, 64)
        if binary:
            order = sorted(order, key=lambda j: (months_of[j], seg_key[j]))
            ts_be = ((secs - PG_EPOCH_S) * 1_000_000).astype(">i8").view(np.uint8).reshape(-1, 8)
            value_be = _values(v, v_class).astype(">f8").view(np.uint8).reshape(-1, 8)
            first_row = row_of_line.tolist()
            for j in order:
                m, r0, count = months_of[j], first_row[j], counts[j]
                by_parts.setdefault(m, []).append(
                    binary_rows(seg_key[j], ts_be[r0:r0 + count], value_be[r0:r0 + count]))
                fast_rows[m] = fast_rows.get(m, 0) + count
        else:
            lo_b, hi_b = starts[seg_start].tolist(), nl[seg_end - 1].tolist()
            for j in order:
                m = months_of[j]
                by_parts.setdefault(m, []).append(data[lo_b[j]:hi_b[j] + 1])
                fast_rows[m] = fast_rows.get(m, 0) + counts[j]
    others = [(int(i) + 1, data[int(starts[i]):int(ends[i])]) for i in np.flatnonzero(~fast).tolist()]
    if binary:
        by_month = {m: b"".join([BINARY_HEADER, *p, BINARY_TRAILER]) for m, p in by_parts.items()}
    else:
        by_month = {m: b"".join(p) for m, p in by_parts.items()}
    return ReadingsBlock(lines=n, by_month=by_month, fast_rows=fast_rows, binary=binary, hours=hours,
                         others=others)


def _values(window: np.ndarray, byte_class: np.ndarray) -> np.ndarray:
    """The numbers in right-aligned value windows already checked (at most 15 digits and one dot).

    Exactly what PostgreSQL's float8 input gives: the digits make an integer below 2**53 and the
    division by a power of ten (also exact) is correctly rounded, as strtod is.
    """
    digits = np.where(byte_class == 1, window - np.uint8(48), np.uint8(0))
    pairs = digits[:, 0::2] * np.uint8(10) + digits[:, 1::2]
    quads = pairs[:, 0::2].astype(np.uint32) * 100 + pairs[:, 1::2]
    eights = quads[:, 0::2] * 10_000 + quads[:, 1::2]
    whole = eights[:, 0].astype(np.int64) * 100_000_000 + eights[:, 1]  # the dot counts as a 0 digit
    is_dot = byte_class == 32
    has_dot = is_dot.any(axis=1)
    frac = np.where(has_dot, _VALUE_WIDTH - 1 - np.argmax(is_dot, axis=1), 0)
    below = whole % _POW10[frac]
    mantissa = np.where(has_dot, (whole - below) // 10 + below, whole)
    out: np.ndarray = mantissa / _POW10[frac].astype(np.float64)
    return out


def _distinct(values: np.ndarray) -> list[int]:
    """The distinct values, ascending (a histogram when their range is small, as hours in a block are)."""
    if len(values) == 0:
        return []
    lo, hi = int(values.min()), int(values.max())
    if hi - lo < 1 << 20:
        out: list[int] = (np.flatnonzero(np.bincount(values - lo)) + lo).tolist()
        return out
    out = np.unique(values).tolist()
    return out


def _key_ok(key: bytes, known_units: Collection[str]) -> bool:
    try:
        unit, meter = key.decode("utf-8").split(",")
    except (UnicodeDecodeError, ValueError):
        return False
    return meter in METERS and unit in known_units

