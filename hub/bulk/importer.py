"""Bulk import of units, meter readings and access events from CSV files, streamed through COPY.

Units and access events: each file is read in large byte blocks that are copied verbatim (one line =
one text value) into a temporary staging table; the lines are then split, checked and cast in SQL,
rejected lines go to the reject file with their line number and reason, and good rows go into the real
tables with ``ON CONFLICT DO NOTHING``, so importing the same files twice changes nothing.

Readings, the bulk of any import, take a faster route described above ``split_readings``: canonical
lines are recognised by vectorised client code and COPYed (binary) into unindexed per-month load
tables that are indexed and swapped in for empty partitions at the end; every other line gets the
same SQL checks as before, so the reasons and line numbers in the reject file do not change.
"""

from __future__ import annotations

import csv
import io
import logging
import struct
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Literal

import numpy as np
import psycopg
from numpy.lib.stride_tricks import as_strided
from psycopg import sql

from hub.storage import ensure_months
from hub.storage.timeseries import month_bounds, partition_name

log = logging.getLogger(__name__)

Kind = Literal["units", "readings", "access"]
BLOCK_BYTES = 32 << 20  # read and stage this much of a units or access file at a time
READINGS_BLOCK_BYTES = 8 << 20  # readings: small enough for the client's checks to stay in cache

HEADERS: dict[Kind, tuple[str, ...]] = {
    "units": ("unit_id", "estate_id", "building", "floor", "area_m2", "household_size", "lease_start"),
    "readings": ("ts", "unit_id", "meter", "value"),
    "access": ("ts", "device_id", "estate_id", "building", "floor", "method", "person_id", "unit_id",
               "stranger_track"),
}


class BulkImportError(Exception):
    """A file cannot be imported at all (missing, or its header is not the expected one)."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What importing one file did."""

    kind: Kind
    path: str
    rows_read: int
    rows_new: int
    rows_known: int
    rows_rejected: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        """Lines read per wall second."""
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


# Each line is staged as one text value: CSV mode with delimiter and quote bytes that never occur in
# the files, so COPY neither splits nor unescapes anything and a malformed line cannot abort the COPY.
_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS bulk_stage (n bigserial, raw text) ON COMMIT PRESERVE ROWS;
TRUNCATE bulk_stage RESTART IDENTITY;
"""
_COPY_STAGE = "COPY bulk_stage (raw) FROM STDIN (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"

# A timestamp must carry its UTC offset (a bare local time is ambiguous); string tests, not a regex,
# because this runs for every line.
_TS_OK = (
    "(length(f[1]) >= 19 AND substr(f[1], 11, 1) IN ('T', ' ') AND (right(f[1], 1) = 'Z' "
    "OR substr(f[1], length(f[1]) - 5, 1) IN ('+', '-') OR substr(f[1], length(f[1]) - 2, 1) IN ('+', '-')) "
    "AND pg_input_is_valid(f[1], 'timestamptz'))"
)

# Split lines into fields (double quotes dropped: the formats have no commas inside fields), with a
# reason for each bad line. MATERIALIZED: the reason is computed once per line, not once per use.
_CHECK: dict[Kind, str] = {
    "readings": f"""
CREATE TEMP TABLE bulk_checked ON COMMIT DROP AS
WITH s AS (
    SELECT n, raw, string_to_array(replace(raw, '"', ''), ',') AS f
    FROM (SELECT n, rtrim(raw, E'\\r') AS raw FROM bulk_stage) r
), c AS MATERIALIZED (
    SELECT n, raw, f, CASE
        WHEN raw IS NULL OR raw = '' THEN 'empty line'
        WHEN cardinality(f) <> 4 THEN 'expected 4 fields, found ' || cardinality(f)
        WHEN NOT {_TS_OK} THEN 'ts is not an ISO 8601 timestamp with a UTC offset'
        WHEN f[2] = '' THEN 'unit_id is empty'
        WHEN f[3] NOT IN ('electricity', 'water', 'gas') THEN 'meter must be electricity, water or gas'
        WHEN NOT pg_input_is_valid(f[4], 'double precision') THEN 'value is not a number'
        WHEN f[4]::float8 IN ('NaN', 'Infinity', '-Infinity') OR f[4]::float8 < 0
            THEN 'value must be a finite cumulative register >= 0'
        WHEN NOT EXISTS (SELECT 1 FROM units u WHERE u.unit_id = f[2]) THEN 'unknown unit_id (not in units)'
    END AS reason
    FROM s
)
SELECT n, raw, reason,
       CASE WHEN reason IS NULL THEN f[1]::timestamptz END AS ts,
       CASE WHEN reason IS NULL THEN f[2] END AS unit_id,
       CASE WHEN reason IS NULL THEN f[3] END AS meter,
       CASE WHEN reason IS NULL THEN f[4]::float8 END AS value
FROM c
""",
    "access": f"""
CREATE TEMP TABLE bulk_checked ON COMMIT DROP AS
WITH s AS (
    SELECT n, raw, string_to_array(replace(raw, '"', ''), ',') AS f
    FROM (SELECT n, rtrim(raw, E'\\r') AS raw FROM bulk_stage) r
), c AS MATERIALIZED (
    SELECT n, raw, f, CASE
        WHEN raw IS NULL OR raw = '' THEN 'empty line'
        WHEN cardinality(f) <> 9 THEN 'expected 9 fields, found ' || cardinality(f)
        WHEN NOT {_TS_OK} THEN 'ts is not an ISO 8601 timestamp with a UTC offset'
        WHEN f[2] = '' THEN 'device_id is empty'
        WHEN f[3] = '' THEN 'estate_id is empty'
        WHEN f[5] <> '' AND NOT pg_input_is_valid(f[5], 'integer') THEN 'floor is not an integer'
        WHEN f[6] NOT IN ('face', 'card', 'password', 'qr') THEN 'method must be face, card, password or qr'
        WHEN f[7] <> '' AND f[9] <> '' THEN 'both person_id and stranger_track are set'
        WHEN f[7] = '' AND f[9] = '' THEN 'neither person_id nor stranger_track is set'
        WHEN f[7] <> '' AND f[8] = '' THEN 'person_id without unit_id'
        WHEN f[9] <> '' AND f[8] <> '' THEN 'stranger_track with a unit_id'
        WHEN f[8] <> '' AND NOT EXISTS (SELECT 1 FROM units u WHERE u.unit_id = f[8])
            THEN 'unknown unit_id (not in units)'
    END AS reason
    FROM s
)
SELECT n, raw, reason,
       CASE WHEN reason IS NULL THEN f[1]::timestamptz END AS ts,
       f[2] AS device_id, f[3] AS estate_id, nullif(f[4], '') AS building,
       CASE WHEN reason IS NULL THEN nullif(f[5], '')::int END AS floor,
       f[6] AS method, nullif(f[7], '') AS person, nullif(f[8], '') AS unit_id,
       nullif(f[9], '') AS stranger_track
FROM c
""",
    "units": """
CREATE TEMP TABLE bulk_checked ON COMMIT DROP AS
WITH s AS (
    SELECT n, raw, string_to_array(replace(raw, '"', ''), ',') AS f
    FROM (SELECT n, rtrim(raw, E'\\r') AS raw FROM bulk_stage) r
), c AS MATERIALIZED (
    SELECT n, raw, f, CASE
        WHEN raw IS NULL OR raw = '' THEN 'empty line'
        WHEN cardinality(f) <> 7 THEN 'expected 7 fields, found ' || cardinality(f)
        WHEN f[1] = '' THEN 'unit_id is empty'
        WHEN f[2] = '' THEN 'estate_id is empty'
        WHEN f[4] <> '' AND NOT pg_input_is_valid(f[4], 'integer') THEN 'floor is not an integer'
        WHEN f[5] <> '' AND NOT pg_input_is_valid(f[5], 'real') THEN 'area_m2 is not a number'
        WHEN f[5] <> '' AND (f[5]::real <= 0 OR f[5]::real IN ('NaN', 'Infinity')) THEN 'area_m2 must be > 0'
        WHEN f[6] <> '' AND NOT pg_input_is_valid(f[6], 'integer') THEN 'household_size is not an integer'
        WHEN f[6] <> '' AND f[6]::int < 0 THEN 'household_size must be >= 0'
        WHEN f[7] <> '' AND (f[7] !~ '^\\d{4}-\\d\\d-\\d\\d$' OR NOT pg_input_is_valid(f[7], 'date'))
            THEN 'lease_start is not a YYYY-MM-DD date'
        WHEN count(*) OVER (PARTITION BY f[1]) > 1 AND n <> min(n) OVER (PARTITION BY f[1])
            THEN 'unit_id repeated in the file (first occurrence kept)'
    END AS reason
    FROM s
)
SELECT n, raw, reason, f[1] AS unit_id, f[2] AS estate_id, nullif(f[3], '') AS building,
       CASE WHEN reason IS NULL THEN nullif(f[4], '')::int END AS floor,
       CASE WHEN reason IS NULL THEN nullif(f[5], '')::real END AS area_m2,
       CASE WHEN reason IS NULL THEN nullif(f[6], '')::int END AS household_size,
       CASE WHEN reason IS NULL THEN nullif(f[7], '')::date END AS lease_start
FROM c
""",
}

_INSERT: dict[Kind, str] = {
    "readings": """
INSERT INTO meter_readings (ts, unit_id, meter, value, quality, device, agent_id)
SELECT ts, unit_id, meter, value, 'ok', NULL, 'bulk-import'
FROM bulk_checked WHERE reason IS NULL
ON CONFLICT DO NOTHING
""",
    # A deterministic event id from the event's own fields: the same line imported again is the same event.
    "access": """
INSERT INTO access_events (ts, estate_id, device_id, event_id, building, floor, method, person, unit_id,
                           stranger_track, agent_id)
SELECT ts, estate_id, device_id,
       'import:' || md5(concat_ws('|', extract(epoch FROM ts)::text, device_id, person, stranger_track,
                                  unit_id, method)),
       building, floor, method, person, unit_id, stranger_track, 'bulk-import'
FROM bulk_checked WHERE reason IS NULL
ON CONFLICT DO NOTHING
""",
    # Units are the registry: a changed row (e.g. a new lease) is updated; an unchanged one is left alone.
    "units": """
INSERT INTO units (unit_id, estate_id, building, floor, area_m2, household_size, lease_start)
SELECT unit_id, estate_id, building, floor, area_m2, household_size, lease_start
FROM bulk_checked WHERE reason IS NULL
ON CONFLICT (unit_id) DO UPDATE SET
    estate_id = EXCLUDED.estate_id, building = EXCLUDED.building, floor = EXCLUDED.floor,
    area_m2 = EXCLUDED.area_m2, household_size = EXCLUDED.household_size, lease_start = EXCLUDED.lease_start
WHERE (units.estate_id, units.building, units.floor, units.area_m2, units.household_size, units.lease_start)
      IS DISTINCT FROM
      (EXCLUDED.estate_id, EXCLUDED.building, EXCLUDED.floor, EXCLUDED.area_m2, EXCLUDED.household_size,
       EXCLUDED.lease_start)
""",
}

_MONTHS = "SELECT DISTINCT date_trunc('month', ts, 'UTC')::date FROM bulk_checked WHERE reason IS NULL"
_STALE = """
INSERT INTO bulk_stale_days (day)
SELECT DISTINCT (ts AT TIME ZONE 'Asia/Shanghai')::date FROM bulk_checked WHERE reason IS NULL
ON CONFLICT DO NOTHING
"""
_REJECTS = "COPY (SELECT n, reason, raw FROM bulk_checked WHERE reason IS NOT NULL ORDER BY n) TO STDOUT"


class Progress:
    """A one-line progress bar on stderr (bytes of a file), redrawn at most a few times a second."""

    def __init__(self, label: str, total: int, stream: IO[str] | None = None) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.monotonic()
        self._last = 0.0

    def advance(self, n: int, rows: int) -> None:
        """Record ``n`` more bytes done, ``rows`` lines so far; redraw if due."""
        self.done += n
        now = time.monotonic()
        if now - self._last >= 0.25 or self.done >= self.total:
            self._last = now
            share = min(self.done / self.total, 1.0)
            bar = "#" * int(30 * share)
            rate = rows / max(now - self.t0, 1e-9)
            self.stream.write(f"\r{self.label:<9} [{bar:<30}] {share:6.1%} {rows:>11,} rows {rate:>9,.0f}/s")
            self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        self.stream.write("\n")
        self.stream.flush()


class RejectWriter:
    """The reject file: ``file,line,reason,raw`` as CSV, one row per refused line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh)
        self._csv.writerow(["file", "line", "reason", "raw"])
        self.count = 0

    def write(self, file: str, line: int, reason: str, raw: str) -> None:
        """Record one refused line."""
        self._csv.writerow([file, line, reason, raw])
        self.count += 1

    def close(self) -> None:
        """Flush and close the file."""
        self._fh.close()

    def __enter__(self) -> RejectWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _block(fh: IO[bytes], size: int) -> bytes:
    """Read about ``size`` bytes ending at a line boundary; empty at end of file."""
    data = fh.read(size)
    if data and not data.endswith(b"\n"):
        data += fh.readline()
    return data


def _read_header(fh: IO[bytes], kind: Kind, path: Path) -> None:
    first = fh.readline().decode("utf-8-sig").strip().replace('"', "")
    got = tuple(c.strip() for c in first.split(","))
    if got != HEADERS[kind]:
        raise BulkImportError(f"{path}: header must be {','.join(HEADERS[kind])}, found {first!r}")


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
#    line (bad, or valid in an unusual spelling) goes through the SQL checks below, which stay the one
#    authority on reasons, with its line number.
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
_PG_EPOCH_S = 946_684_800
_TS_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_OFFSET_DIGITS = np.array([20, 21, 23, 24])
# The digit pairs of "YYYY-MM-DDTHH:MM:SS+HH:MM": century, year, month, day, hour, minute, second, offset.
_TS_TENS = np.array([0, 2, 5, 8, 11, 14, 17, 20, 23])
_TS_ONES = _TS_TENS + 1
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


def split_readings(data: bytes, known_units: Collection[str]) -> ReadingsBlock:
    """Split a block of readings lines (ending with a newline) into canonical lines by month and the rest.

    A canonical line is certainly valid: it has exactly four unquoted fields, a timestamp
    ``YYYY-MM-DD[T ]HH:MM:SS`` with ``Z`` or a ``+HH:MM``/``-HH:MM`` offset (years 1900 to 2199), a unit in
    ``known_units``, a known meter and an unsigned decimal value. Pure: no database, no I/O.
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
            ts_be = ((secs - _PG_EPOCH_S) * 1_000_000).astype(">i8").view(np.uint8).reshape(-1, 8)
            value_be = _values(v, v_class).astype(">f8").view(np.uint8).reshape(-1, 8)
            first_row = row_of_line.tolist()
            for j in order:
                m, r0, count = months_of[j], first_row[j], counts[j]
                by_parts.setdefault(m, []).append(
                    _binary_rows(seg_key[j], ts_be[r0:r0 + count], value_be[r0:r0 + count]))
                fast_rows[m] = fast_rows.get(m, 0) + count
        else:
            lo_b, hi_b = starts[seg_start].tolist(), nl[seg_end - 1].tolist()
            for j in order:
                m = months_of[j]
                by_parts.setdefault(m, []).append(data[lo_b[j]:hi_b[j] + 1])
                fast_rows[m] = fast_rows.get(m, 0) + counts[j]
    others = [(int(i) + 1, data[int(starts[i]):int(ends[i])]) for i in np.flatnonzero(~fast).tolist()]
    if binary:
        by_month = {m: b"".join([_BINARY_HEADER, *p, _BINARY_TRAILER]) for m, p in by_parts.items()}
    else:
        by_month = {m: b"".join(p) for m, p in by_parts.items()}
    return ReadingsBlock(lines=n, by_month=by_month, fast_rows=fast_rows, binary=binary, hours=hours,
                         others=others)


# COPY BINARY framing, and each row's constant parts: 4 fields, then ts (8 bytes) ... value (8 bytes).
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_BINARY_TRAILER = b"\xff\xff"
_ROW_START = np.frombuffer(struct.pack(">hi", 4, 8), np.uint8)
_VALUE_START = np.frombuffer(struct.pack(">i", 8), np.uint8)
_POW10 = 10 ** np.arange(16, dtype=np.int64)


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


def _binary_rows(key: bytes, ts_be: np.ndarray, value_be: np.ndarray) -> bytes:
    """COPY BINARY rows (ts, unit_id, meter, value) of one series: ``key`` is ``unit_id,meter``."""
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


def _blocks(fh: IO[bytes], size: int) -> Iterator[bytes]:
    """Blocks of about ``size`` bytes ending at line boundaries, the last one given a final newline."""
    while data := _block(fh, size):
        if not data.endswith(b"\n"):
            data += b"\n"
        yield data


# The lines the client did not recognise are staged with their line numbers and checked in SQL.
_COPY_STAGE_NUMBERED = (
    "COPY bulk_stage (n, raw) FROM STDIN (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
)
_ROWS = """
CREATE TEMP TABLE IF NOT EXISTS bulk_rows (ts timestamptz, unit_id text, meter text, value float8)
    ON COMMIT DELETE ROWS
"""
_CHECKED_TO_ROWS = """
INSERT INTO bulk_rows (ts, unit_id, meter, value)
SELECT ts, unit_id, meter, value FROM bulk_checked WHERE reason IS NULL
"""
_STALE_HOURS = """
INSERT INTO bulk_stale_days (day)
SELECT DISTINCT (to_timestamp(h * 3600) AT TIME ZONE 'Asia/Shanghai')::date FROM unnest(%s::bigint[]) h
ON CONFLICT DO NOTHING
"""
_LOAD_PREFIX = "bulk_load_meter_readings_"
_LOCK_TIMEOUT_MS = 2000  # the swap's wait for meter_readings, per attempt
_LOCK_TRIES = 5
# The two index builds run side by side on two connections, one core each; parallel workers on top
# of that only fight over the same two cores. Measured on 5.2M rows: 7.4 s so, 7.8 s one after the
# other with parallel workers, 8.5 s one after the other without. 1 GB instead of 256 MB of
# maintenance_work_mem gained nothing at 51.7M rows (121 s against 115 s, within the VM's noise).
_INDEX_SETTINGS = "SET LOCAL maintenance_work_mem = '256MB'; SET LOCAL max_parallel_maintenance_workers = 0"
# Serialises bulk readings imports (their load tables and swaps); the value is arbitrary but fixed.
_BULK_LOCK = 0x616E6A75626C6B  # "anjublk"


def _month_bounds(index: int) -> tuple[datetime, datetime]:
    return month_bounds(month_of_index(index))


class _ReadingsTarget:
    """Where each month of one readings import goes: a load table swapped in at the end, or a merge."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        row = conn.execute(
            "SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass('meter_readings')"
        ).fetchone()
        self.swappable = bool(row and row[0] == "p")  # plain partitions (not TimescaleDB)
        self.load: dict[int, int] = {}  # month index -> rows put into its load table
        self.merge: set[int] = set()
        self.new = 0  # rows inserted by merges so far

    def _load_name(self, m: int) -> str:
        first = month_of_index(m)
        return f"{_LOAD_PREFIX}{first.year:04d}_{first.month:02d}"

    def prepare(self, months: Collection[int]) -> None:
        """Choose the route of months not seen before (inside the block's transaction)."""
        for m in sorted(set(months) - self.load.keys() - self.merge):
            lo, hi = _month_bounds(m)
            row = self.conn.execute(
                "SELECT EXISTS (SELECT 1 FROM meter_readings WHERE ts >= %s AND ts < %s)", (lo, hi)
            ).fetchone()
            if not self.swappable or (row is not None and row[0]):
                self.merge.add(m)
                continue
            name = sql.Identifier(self._load_name(m))
            # No range check while loading (it costs per row): only this month's rows are routed here.
            self.conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE meter_readings INCLUDING DEFAULTS)").format(name))
            self.conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN quality SET DEFAULT 'ok', "
                                      "ALTER COLUMN agent_id SET DEFAULT 'bulk-import'").format(name))
            self.load[m] = 0

    def copy_rows(self, m: int, data: bytes, rows: int, *, binary: bool) -> None:
        """COPY canonical rows of month ``m``: into its load table, or into bulk_rows for a merge."""
        table = sql.Identifier(self._load_name(m)) if m in self.load else sql.Identifier("bulk_rows")
        with self.conn.cursor().copy(
            sql.SQL("COPY {} (ts, unit_id, meter, value) FROM STDIN (FORMAT {})").format(
                table, sql.SQL("binary" if binary else "csv"))
        ) as copy:
            copy.write(data)
        if m in self.load:
            self.load[m] += rows

    def flush_rows(self, months: Collection[int]) -> None:
        """Move bulk_rows (merge months' lines and SQL-checked lines) to their load tables or merge them."""
        for m in sorted(months):
            lo, hi = _month_bounds(m)
            if m in self.load:
                cur = self.conn.execute(
                    sql.SQL("INSERT INTO {} (ts, unit_id, meter, value) SELECT ts, unit_id, meter, value "
                            "FROM bulk_rows WHERE ts >= %s AND ts < %s").format(
                        sql.Identifier(self._load_name(m))), (lo, hi))
                self.load[m] += max(cur.rowcount, 0)
            else:
                cur = self.conn.execute(
                    "INSERT INTO meter_readings (ts, unit_id, meter, value, quality, device, agent_id) "
                    "SELECT ts, unit_id, meter, value, 'ok', NULL, 'bulk-import' FROM bulk_rows "
                    "WHERE ts >= %s AND ts < %s ON CONFLICT DO NOTHING", (lo, hi))
                self.new += max(cur.rowcount, 0)
        self.conn.execute("TRUNCATE bulk_rows")

    def finish(self) -> int:
        """Index each load table and swap it in for its (still empty) partition; return all rows new."""
        months = sorted(self.load)
        if months:
            self._build_indexes(months)
        for m in months:
            self.new += self._swap_in(m)
        self.load.clear()
        return self.new

    def _build_indexes(self, months: list[int]) -> None:
        """Build the load tables' key and time indexes, the time ones on a second connection meanwhile.

        The client is idle by now, so the second core builds the time indexes while this connection
        builds the key indexes (one sort each). Without a second connection, one after the other.
        """
        second: psycopg.Connection | None = None
        try:
            second = psycopg.connect(_conninfo(self.conn), autocommit=True)
        except psycopg.Error as err:
            log.info("building indexes on one connection (%s)", err)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="anju-index") as pool:
            pending = None
            if second is not None:
                pending = pool.submit(self._time_indexes, second, months)
            try:
                for m in months:
                    self._key_index(m)
                if second is None:
                    self._time_indexes(self.conn, months)
            finally:
                if pending is not None:
                    pending.result()
                if second is not None:
                    second.close()

    def _time_indexes(self, conn: psycopg.Connection, months: list[int]) -> None:
        for m in months:
            load = self._load_name(m)
            with conn.transaction():
                conn.execute(_INDEX_SETTINGS)
                conn.execute(sql.SQL("CREATE INDEX {} ON {} (ts)").format(
                    sql.Identifier(load + "_ts"), sql.Identifier(load)))

    def _key_index(self, m: int) -> None:
        """The unique (unit_id, meter, ts) index; a reading repeated in the file keeps its first copy."""
        conn, load = self.conn, self._load_name(m)
        ident = sql.Identifier(load)
        create = sql.SQL("CREATE UNIQUE INDEX {} ON {} (unit_id, meter, ts)").format(
            sql.Identifier(load + "_pkey"), ident)
        with conn.transaction():
            conn.execute(_INDEX_SETTINGS)
            try:
                with conn.transaction():
                    conn.execute(create)
            except psycopg.errors.UniqueViolation:
                # As ON CONFLICT DO NOTHING would: the copy that came first (COPY appends in order) stays.
                cur = conn.execute(sql.SQL(
                    "DELETE FROM {t} WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() OVER "
                    "(PARTITION BY unit_id, meter, ts ORDER BY ctid) AS k FROM {t}) d WHERE k > 1)"
                ).format(t=ident))
                self.load[m] -= max(cur.rowcount, 0)
                conn.execute(create)

    def _swap_in(self, m: int) -> int:
        conn, load = self.conn, self._load_name(m)
        first = month_of_index(m)
        part = partition_name("meter_readings", first)
        lo, hi = _month_bounds(m)
        ident = sql.Identifier(load)
        rows = self.load[m]
        with conn.transaction():
            # The range check lets ATTACH skip its scan, which would run under the parent's lock.
            conn.execute(sql.SQL(
                "ALTER TABLE {t} ALTER COLUMN quality DROP DEFAULT, ALTER COLUMN agent_id DROP DEFAULT, "
                "ADD CONSTRAINT {c} CHECK (ts >= {lo} AND ts < {hi}), "
                "ADD CONSTRAINT {k} PRIMARY KEY USING INDEX {k}"
            ).format(t=ident, c=sql.Identifier(load + "_range"), lo=sql.Literal(lo), hi=sql.Literal(hi),
                     k=sql.Identifier(load + "_pkey")))
        for attempt in range(_LOCK_TRIES):
            try:
                return self._attach(m, rows)
            except psycopg.errors.LockNotAvailable:
                # Waiting behind a long reader would queue every other query behind us: retry later.
                log.info("%s: meter_readings busy, attach attempt %d of %d", part, attempt + 1, _LOCK_TRIES)
                time.sleep(1.0 + attempt)
            except (_MonthNotEmptyError, psycopg.errors.ObjectNotInPrerequisiteState,
                    psycopg.errors.CheckViolation) as err:
                log.info("month %s not swapped in (%s); merging its %d rows instead", part, err, rows)
                break
        ensure_months(conn, [first])
        with conn.transaction():
            cur = conn.execute(sql.SQL(
                "INSERT INTO meter_readings (ts, unit_id, meter, value, quality, device, agent_id) "
                "SELECT ts, unit_id, meter, value, quality, device, agent_id FROM {} ON CONFLICT DO NOTHING"
            ).format(ident))
            conn.execute(sql.SQL("DROP TABLE {}").format(ident))
        return max(cur.rowcount, 0)

    def _attach(self, m: int, rows: int) -> int:
        """Swap the indexed load table in for month ``m``'s partition, which must still be empty."""
        conn, load = self.conn, self._load_name(m)
        part = partition_name("meter_readings", month_of_index(m))
        lo, hi = _month_bounds(m)
        ident = sql.Identifier(load)
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT_MS}ms'")
            # Parent first, as queries lock; the month must still be empty (live ingest may have written).
            conn.execute("LOCK TABLE meter_readings IN ACCESS EXCLUSIVE MODE")
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM meter_readings WHERE ts >= %s AND ts < %s)", (lo, hi)
            ).fetchone()
            if row is None or row[0]:
                raise _MonthNotEmptyError(part)
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(part)))
            conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident, sql.Identifier(part)))
            conn.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                sql.Identifier(part), sql.Identifier(load + "_pkey"), sql.Identifier(part + "_pkey")))
            conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(load + "_ts"), sql.Identifier(part + "_ts_idx")))
            conn.execute(sql.SQL(
                "ALTER TABLE meter_readings ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})"
            ).format(sql.Identifier(part), sql.Literal(lo), sql.Literal(hi)))
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(part), sql.Identifier(load + "_range")))
        return rows

    def discard(self) -> None:
        """Drop the load tables of an import that failed (its committed blocks are re-imported next time)."""
        for m in list(self.load):
            self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self._load_name(m))))
        self.conn.commit()
        self.load.clear()


def _conninfo(conn: psycopg.Connection) -> str:
    """A connection string for another session like ``conn``'s (its password included)."""
    params = {o.keyword.decode(): o.val.decode() for o in conn.pgconn.info if o.val is not None}
    return psycopg.conninfo.make_conninfo(**params)


class _MonthNotEmptyError(Exception):
    """A month received rows from elsewhere while its load table was filling."""


def _drop_leftover_loads(conn: psycopg.Connection) -> None:
    """Drop load tables that a crashed import left behind (callers hold the bulk lock)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relkind = 'r' AND c.relname LIKE %s", (_LOAD_PREFIX + "%",)
    ).fetchall()
    for (name,) in rows:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    conn.commit()


def _import_readings(
    conn: psycopg.Connection, path: Path, fh: IO[bytes], *, rejects: RejectWriter, bar: Progress | None,
    block_bytes: int, on_block: Callable[[int], None] | None,
) -> tuple[int, int, int]:
    """Import the rest of an open readings file; return (lines read, rows new, lines rejected)."""
    conn.execute("SELECT pg_advisory_lock(%s)", (_BULK_LOCK,))
    conn.commit()
    target: _ReadingsTarget | None = None
    try:
        _drop_leftover_loads(conn)
        known = frozenset(r[0] for r in conn.execute("SELECT unit_id FROM units"))
        conn.execute(_ROWS)
        target = _ReadingsTarget(conn)
        conn.commit()  # each block below is then a transaction of its own, not a savepoint
        read = rejected = 0
        line_base = 1  # line number of the header
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="anju-import") as pool:
            blocks = _blocks(fh, block_bytes)

            def next_block() -> tuple[bytes, ReadingsBlock] | None:
                data = next(blocks, None)
                return None if data is None else (data, split_readings(data, known))

            pending = pool.submit(next_block)
            while (item := pending.result()) is not None:
                pending = pool.submit(next_block)  # the worker checks the next block meanwhile
                data, block = item
                with conn.transaction():
                    # Blocks need not each wait for their WAL flush: the import's final commit (its
                    # bulk_imports row) waits for all of it, and a crash before that is re-imported.
                    conn.execute("SET LOCAL synchronous_commit = off")
                    bad, odd_months = _check_others(conn, block, path, line_base, rejects)
                    months = set(block.by_month) | odd_months
                    ensure_months(conn, [month_of_index(m) for m in months])
                    target.prepare(months)
                    if block.hours:
                        conn.execute(_STALE_HOURS, (block.hours,))
                    for m, lines in block.by_month.items():
                        target.copy_rows(m, lines, block.fast_rows[m], binary=block.binary)
                    target.flush_rows(odd_months | (set(block.by_month) & target.merge))
                line_base += block.lines
                read += block.lines
                rejected += bad
                if bar is not None:
                    bar.advance(len(data), read)
                if on_block is not None:
                    on_block(read)
        if bar is not None:
            bar.stream.write(f"\r{bar.label:<9} indexing and attaching the loaded months ...".ljust(90))
            bar.stream.flush()
        new = target.finish()
        target = None
        return read, new, rejected
    finally:
        try:
            if target is not None:  # failed: its committed blocks are simply imported again next time
                conn.rollback()
                target.discard()
            conn.execute("SELECT pg_advisory_unlock(%s)", (_BULK_LOCK,))
            conn.commit()
        except psycopg.Error as err:  # the connection itself failed; the error that got us here goes on
            log.warning("could not clean up after the readings import: %s", err)


def _check_others(
    conn: psycopg.Connection, block: ReadingsBlock, path: Path, line_base: int, rejects: RejectWriter
) -> tuple[int, set[int]]:
    """Check the block's non-canonical lines in SQL; write rejects; stage the good ones in bulk_rows.

    Returns how many lines were rejected and the month indexes of the good ones.
    """
    if not block.others:
        return 0, set()
    conn.execute(_STAGE)
    with conn.cursor().copy(_COPY_STAGE_NUMBERED) as copy:
        copy.write(b"".join(b"%d\x01%s\n" % (n, raw) for n, raw in block.others))
    conn.execute(_CHECK["readings"])
    bad = _write_rejects(conn, path, line_base, rejects)
    months = {d.year * 12 + d.month - 1 for (d,) in conn.execute(_MONTHS)}
    conn.execute(_STALE)
    conn.execute(_CHECKED_TO_ROWS)
    conn.execute("DROP TABLE bulk_checked")
    return bad, months


def _write_rejects(conn: psycopg.Connection, path: Path, line_base: int, rejects: RejectWriter) -> int:
    """Copy bulk_checked's refused lines into the reject file; return how many."""
    row = conn.execute("SELECT count(*) FROM bulk_checked WHERE reason IS NOT NULL").fetchone()
    bad = int(row[0]) if row else 0
    if bad:
        buf = io.BytesIO()
        with conn.cursor().copy(_REJECTS) as out:
            for part in out:
                buf.write(part)
        for rec in buf.getvalue().decode("utf-8").splitlines():
            n, reason, raw = _unescape_copy_text(rec)
            rejects.write(path.name, line_base + int(n), reason, raw)
    return bad


def import_file(
    conn: psycopg.Connection,
    kind: Kind,
    path: Path,
    *,
    rejects: RejectWriter,
    progress: bool = True,
    block_bytes: int | None = None,
    on_block: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import one CSV file of ``kind`` into the hub's tables; return the counts.

    Units and access events are committed block by block. Readings are committed block by block into
    load tables (or merged, for months that already hold rows) and become visible when the file is done.
    """
    if not path.is_file():
        raise BulkImportError(f"{path}: no such file")
    started = datetime.now(UTC)
    t0 = time.monotonic()
    bar = Progress(kind, path.stat().st_size) if progress else None
    with path.open("rb") as fh:
        _read_header(fh, kind, path)
        if bar is not None:
            bar.advance(fh.tell(), 0)
        if kind == "readings":
            read, new, rejected = _import_readings(conn, path, fh, rejects=rejects, bar=bar,
                                                   block_bytes=block_bytes or READINGS_BLOCK_BYTES,
                                                   on_block=on_block)
        else:
            read, new, rejected = _import_checked_in_sql(conn, kind, path, fh, rejects=rejects, bar=bar,
                                                         block_bytes=block_bytes or BLOCK_BYTES,
                                                         on_block=on_block)
    if bar is not None:
        bar.close()
    result = ImportResult(kind=kind, path=str(path), rows_read=read, rows_new=new,
                          rows_known=read - new - rejected, rows_rejected=rejected,
                          seconds=time.monotonic() - t0)
    conn.execute(
        "INSERT INTO bulk_imports (kind, path, rows_read, rows_new, rows_known, rows_rejected, rejects_path,"
        " started_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (kind, str(path), read, new, result.rows_known, rejected, str(rejects.path), started),
    )
    conn.commit()
    return result


def _import_checked_in_sql(
    conn: psycopg.Connection, kind: Kind, path: Path, fh: IO[bytes], *, rejects: RejectWriter,
    bar: Progress | None, block_bytes: int, on_block: Callable[[int], None] | None,
) -> tuple[int, int, int]:
    """Stage whole blocks verbatim and check, cast and insert them in SQL; commit per block."""
    read = new = rejected = 0
    line_base = 1  # line number of the header; staged line n is line line_base + n
    while data := _block(fh, block_bytes):
        with conn.transaction():
            conn.execute(_STAGE)
            with conn.cursor().copy(_COPY_STAGE) as copy:
                copy.write(data)
            conn.execute(_CHECK[kind])
            if kind != "units":
                months = [r[0] for r in conn.execute(_MONTHS)]
                ensure_months(conn, months)
                conn.execute(_STALE)
            cur = conn.execute(_INSERT[kind])
            inserted = max(cur.rowcount, 0)
            row = conn.execute("SELECT count(*) FROM bulk_checked").fetchone()
            lines = int(row[0]) if row else 0
            bad = _write_rejects(conn, path, line_base, rejects)
            conn.execute("DROP TABLE bulk_checked")
        line_base += lines
        read += lines
        new += inserted
        rejected += bad
        if bar is not None:
            bar.advance(len(data), read)
        if on_block is not None:
            on_block(read)
    return read, new, rejected


def _unescape_copy_text(line: str) -> tuple[str, str, str]:
    """Split one line of COPY text output into its three columns, undoing COPY's backslash escapes."""
    cols = line.split("\t")
    out: list[str] = []
    for col in cols:
        if col == "\\N":
            out.append("")
            continue
        out.append(col.replace("\\t", "\t").replace("\\r", "\r").replace("\\n", "\n").replace("\\\\", "\\"))
    n, reason, raw = [*out, "", "", ""][:3]
    return n, reason, raw


@dataclass(frozen=True, slots=True)
class BulkImport:
    """The files of one ``anju import`` run; any may be absent."""

    units: Path | None = None
    readings: Path | None = None
    access: Path | None = None


def import_all(
    conn: psycopg.Connection, files: BulkImport, *, rejects_path: Path, progress: bool = True
) -> list[ImportResult]:
    """Import units first (readings and events of unknown units are refused), then readings and access."""
    results: list[ImportResult] = []
    with RejectWriter(rejects_path) as rejects:
        order: tuple[tuple[Kind, Path | None], ...] = (
            ("units", files.units), ("readings", files.readings), ("access", files.access),
        )
        for kind, path in order:
            if path is not None:
                results.append(import_file(conn, kind, path, rejects=rejects, progress=progress))
    return results


def stale_days(conn: psycopg.Connection) -> list[date]:
    """Local days that bulk imports changed since features were last refreshed for them."""
    return [r[0] for r in conn.execute("SELECT day FROM bulk_stale_days ORDER BY day")]
