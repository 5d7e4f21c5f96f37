"""Bulk import of units, meter readings and access events from CSV files, streamed through COPY.

Each file is read in large byte blocks that are copied verbatim (one line = one text value) into a
temporary staging table; the lines are then split, checked and cast in SQL, rejected lines go to the
reject file with their line number and reason, and good rows go into the real tables with
``ON CONFLICT DO NOTHING``, so importing the same files twice changes nothing. Parsing in the server
keeps Python out of the per-row path.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Literal

import psycopg

from hub.storage import ensure_months

Kind = Literal["units", "readings", "access"]
BLOCK_BYTES = 32 << 20  # read and stage this much of a file at a time

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


def import_file(
    conn: psycopg.Connection,
    kind: Kind,
    path: Path,
    *,
    rejects: RejectWriter,
    progress: bool = True,
    block_bytes: int = BLOCK_BYTES,
    on_block: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import one CSV file of ``kind`` into the hub's tables; commit per block; return the counts."""
    if not path.is_file():
        raise BulkImportError(f"{path}: no such file")
    started = datetime.now(UTC)
    t0 = time.monotonic()
    bar = Progress(kind, path.stat().st_size) if progress else None
    read = new = rejected = 0
    line_base = 1  # line number of the header; staged line n is line line_base + n
    with path.open("rb") as fh:
        _read_header(fh, kind, path)
        if bar is not None:
            bar.advance(fh.tell(), 0)
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
                row = conn.execute("SELECT count(*), count(*) FILTER (WHERE reason IS NOT NULL) "
                                   "FROM bulk_checked").fetchone()
                assert row is not None
                lines, bad = int(row[0]), int(row[1])
                if bad:
                    buf = io.BytesIO()
                    with conn.cursor().copy(_REJECTS) as out:
                        for part in out:
                            buf.write(part)
                    for rec in buf.getvalue().decode("utf-8").splitlines():
                        n, reason, raw = _unescape_copy_text(rec)
                        rejects.write(path.name, line_base + int(n), reason, raw)
                conn.execute("DROP TABLE bulk_checked")
            line_base += lines
            read += lines
            new += inserted
            rejected += bad
            if bar is not None:
                bar.advance(len(data), read)
            if on_block is not None:
                on_block(read)
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
