"""Bulk import of units, meter readings and access events from CSV files, streamed through COPY.

Units and access events: each file is read in large byte blocks that are copied verbatim (one line =
one text value) into a temporary staging table; the lines are then split, checked and cast in SQL
(``hub.bulk.checks``), rejected lines go to the reject file (``hub.bulk.report``) with their line number
and reason, and good rows go into the real tables with ``ON CONFLICT DO NOTHING``, so importing the same
files twice changes nothing.

Readings, the bulk of any import, take a faster route described in ``anju.hub.bulk.parse``: canonical lines
are recognised by vectorised client code and COPYed (binary) into unindexed per-month load tables that
are indexed and swapped in for empty partitions at the end (``anju.hub.storage.timeseries``); every other
line gets the same SQL checks, so the reasons and line numbers in the reject file do not change.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, ClassVar

import psycopg
from psycopg import sql

from anju.hub.bulk import checks
from anju.hub.bulk.encoding import check_encoding, utf8_reader
from anju.hub.bulk.parse import (
    BulkImportError,
    Kind,
    ReadingsBlock,
    iter_blocks,
    month_of_index,
    read_block,
    read_header,
    split_readings,
)
from anju.hub.bulk.report import Progress, RejectWriter, unescape_copy_text
from anju.hub.storage import ensure_months
from anju.hub.storage.bulkload import (
    attach_load_table,
    build_load_indexes,
    create_load_table,
    drop_load_tables,
    is_hypertable,
    load_table_name,
    month_has_chunks,
    month_has_rows,
    swap_in_load_table,
)
from anju.hub.storage.timeseries import (
    PARTITION_LOCK_TIMEOUT_MS,
    PARTITION_LOCK_TRIES,
    is_partitioned,
    month_bounds,
)
from anju_wire import TimeBounds

log = logging.getLogger(__name__)

BLOCK_BYTES = 32 << 20  # read and stage this much of a units or access file at a time
READINGS_BLOCK_BYTES = 8 << 20  # readings: small enough for the client's checks to stay in cache
# Serialises bulk readings imports (their load tables and swaps); the value is arbitrary but fixed.
_BULK_LOCK = 0x616E6A75626C6B  # "anjublk"
_READINGS = "meter_readings"
# What the import's COPY leaves out of a load table's rows (it sends ts, unit_id, meter and value).
_LOAD_DEFAULTS = {"quality": "ok", "agent_id": "bulk-import"}


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


class _ReadingsTarget:
    """Where each month of one readings import goes: a load table swapped in at the end, or a merge."""

    # The swap's wait for meter_readings per try, and how many tries (as for making partitions).
    lock_timeout_ms: ClassVar[int] = PARTITION_LOCK_TIMEOUT_MS
    lock_tries: ClassVar[int] = PARTITION_LOCK_TRIES

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.swappable = is_partitioned(conn, _READINGS)  # plain partitions: swapped in
        self.attachable = not self.swappable and is_hypertable(conn, _READINGS)  # TimescaleDB: attached
        self.load: dict[int, int] = {}  # month index -> rows put into its load table
        self.merge: set[int] = set()
        self.new = 0  # rows inserted by merges so far

    def prepare(self, months: Collection[int]) -> None:
        """Choose the route of months not seen before (inside the block's transaction)."""
        for m in sorted(set(months) - self.load.keys() - self.merge):
            month = month_of_index(m)
            if self.swappable:
                taken = month_has_rows(self.conn, _READINGS, month)
            else:
                taken = not self.attachable or month_has_chunks(self.conn, _READINGS, month)
            if taken:
                self.merge.add(m)
                continue
            create_load_table(self.conn, _READINGS, month_of_index(m), defaults=_LOAD_DEFAULTS)
            self.load[m] = 0

    def copy_rows(self, m: int, data: bytes, rows: int, *, binary: bool) -> None:
        """COPY canonical rows of month ``m``: into its load table, or into bulk_rows for a merge."""
        table = sql.Identifier(_load_name(m) if m in self.load else "bulk_rows")
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
            lo, hi = month_bounds(month_of_index(m))
            if m in self.load:
                cur = self.conn.execute(
                    sql.SQL("INSERT INTO {} (ts, unit_id, meter, value) SELECT ts, unit_id, meter, value "
                            "FROM bulk_rows WHERE ts >= %s AND ts < %s").format(
                        sql.Identifier(_load_name(m))), (lo, hi))
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
            dropped = build_load_indexes(self.conn, _READINGS, [month_of_index(m) for m in months])
            for m in months:
                self.load[m] -= dropped[month_of_index(m)]
        for m in months:
            place = swap_in_load_table if self.swappable else attach_load_table
            if place(self.conn, _READINGS, month_of_index(m), defaults=_LOAD_DEFAULTS,
                     lock_timeout_ms=self.lock_timeout_ms, tries=self.lock_tries):
                self.new += self.load[m]
            else:
                self.new += self._merge_load(m)
        self.load.clear()
        return self.new

    def _merge_load(self, m: int) -> int:
        """Merge a load table that could not be swapped in, then drop it; return the rows new."""
        ensure_months(self.conn, [month_of_index(m)])
        ident = sql.Identifier(_load_name(m))
        with self.conn.transaction():
            cur = self.conn.execute(sql.SQL(
                "INSERT INTO meter_readings (ts, unit_id, meter, value, quality, device, agent_id) "
                "SELECT ts, unit_id, meter, value, quality, device, agent_id FROM {} ON CONFLICT DO NOTHING"
            ).format(ident))
            self.conn.execute(sql.SQL("DROP TABLE {}").format(ident))
        return max(cur.rowcount, 0)

    def discard(self) -> None:
        """Drop the load tables of an import that failed (its committed blocks are re-imported next time)."""
        for m in list(self.load):
            self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(_load_name(m))))
        self.conn.commit()
        self.load.clear()


def _load_name(m: int) -> str:
    return load_table_name(_READINGS, month_of_index(m))


def _import_readings(
    conn: psycopg.Connection, path: Path, fh: IO[bytes], *, rejects: RejectWriter, bar: Progress | None,
    block_bytes: int, on_block: Callable[[int], None] | None, window: tuple[datetime, datetime], tz: str,
) -> tuple[int, int, int]:
    """Import the rest of an open readings file; return (lines read, rows new, lines rejected)."""
    # Whole seconds certainly inside the window; the fast path leaves the rest to the SQL checks.
    ts_range = (math.ceil(window[0].timestamp()), math.floor(window[1].timestamp()))
    conn.execute("SELECT pg_advisory_lock(%s)", (_BULK_LOCK,))
    conn.commit()
    target: _ReadingsTarget | None = None
    try:
        drop_load_tables(conn, _READINGS)
        conn.commit()
        known = frozenset(r[0] for r in conn.execute("SELECT unit_id FROM units"))
        conn.execute(checks.ROWS)
        target = _ReadingsTarget(conn)
        conn.commit()  # each block below is then a transaction of its own, not a savepoint
        read = rejected = 0
        line_base = 1  # line number of the header
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="anju-import") as pool:
            blocks = iter_blocks(fh, block_bytes)

            def next_block() -> tuple[bytes, ReadingsBlock] | None:
                data = next(blocks, None)
                return None if data is None else (data, split_readings(data, known, ts_range=ts_range))

            pending = pool.submit(next_block)
            while (item := pending.result()) is not None:
                pending = pool.submit(next_block)  # the worker checks the next block meanwhile
                data, block = item
                with conn.transaction():
                    # Blocks need not each wait for their WAL flush: the import's final commit (its
                    # bulk_imports row) waits for all of it, and a crash before that is re-imported.
                    conn.execute("SET LOCAL synchronous_commit = off")
                    bad, odd_months = _check_others(conn, block, path, line_base, rejects, window, tz)
                    months = set(block.by_month) | odd_months
                    ensure_months(conn, [month_of_index(m) for m in months])
                    target.prepare(months)
                    if block.hours:
                        conn.execute(checks.STALE_HOURS, {"hours": block.hours, "tz": tz})
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
    conn: psycopg.Connection, block: ReadingsBlock, path: Path, line_base: int, rejects: RejectWriter,
    window: tuple[datetime, datetime], tz: str,
) -> tuple[int, set[int]]:
    """Check the block's non-canonical lines in SQL; write rejects; stage the good ones in bulk_rows.

    Returns how many lines were rejected and the month indexes of the good ones.
    """
    if not block.others:
        return 0, set()
    conn.execute(checks.stage_sql(conn.info.server_version))
    with conn.cursor().copy(checks.COPY_STAGE_NUMBERED) as copy:
        copy.write(b"".join(b"%d\x01%s\n" % (n, raw) for n, raw in block.others))
    conn.execute(checks.check_sql("readings", conn.info.server_version, window=window))
    bad = _write_rejects(conn, path, line_base, rejects)
    months = {d.year * 12 + d.month - 1 for (d,) in conn.execute(checks.MONTHS)}
    conn.execute(checks.STALE_READINGS, {"tz": tz})
    conn.execute(checks.CHECKED_TO_ROWS)
    conn.execute("DROP TABLE bulk_checked")
    return bad, months


def _write_rejects(conn: psycopg.Connection, path: Path, line_base: int, rejects: RejectWriter) -> int:
    """Copy bulk_checked's refused lines into the reject file; return how many."""
    row = conn.execute("SELECT count(*) FROM bulk_checked WHERE reason IS NOT NULL").fetchone()
    bad = int(row[0]) if row else 0
    if bad:
        buf = io.BytesIO()
        with conn.cursor().copy(checks.REJECTS) as out:
            for part in out:
                buf.write(part)
        for rec in buf.getvalue().decode("utf-8").splitlines():
            n, reason, raw = unescape_copy_text(rec)
            rejects.write(path.name, line_base + int(n), reason, raw)
    return bad


def import_file(
    conn: psycopg.Connection,
    kind: Kind,
    path: Path,
    *,
    rejects: RejectWriter,
    tz: str,
    progress: bool = True,
    block_bytes: int | None = None,
    on_block: Callable[[int], None] | None = None,
    encoding: str = "utf-8",
    bounds: TimeBounds | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Import one CSV file of ``kind`` into the hub's tables; return the counts.

    The file is checked whole first (``check_file``): one that cannot be read writes nothing. Units
    and access events are committed block by block. Readings are committed block by block into load
    tables (or merged, for months that already hold rows) and become visible when the file is done.
    Readings and events dated outside ``bounds`` (default ``TimeBounds()``) around ``now`` (default the
    clock) are refused with their reason. The days the file touched are marked stale as days of the
    estates' zone ``tz``, the zone the daily features are rolled up in.
    """
    check_file(kind, path, encoding=encoding)
    window = (bounds or TimeBounds()).window(now or datetime.now(UTC))
    return _import_checked_file(conn, kind, path, rejects=rejects, progress=progress, block_bytes=block_bytes,
                                on_block=on_block, encoding=encoding, window=window, tz=tz)


def check_file(kind: Kind, path: Path, *, encoding: str = "utf-8") -> None:
    """Refuse (BulkImportError) a file that is missing, not all text in ``encoding``, or wrongly headed."""
    if not path.is_file():
        raise BulkImportError(f"{path}: no such file")
    check_encoding(path, encoding)
    with path.open("rb") as fh:
        read_header(utf8_reader(fh, encoding), kind, path)


def _import_checked_file(
    conn: psycopg.Connection, kind: Kind, path: Path, *, rejects: RejectWriter, progress: bool,
    block_bytes: int | None, on_block: Callable[[int], None] | None, encoding: str,
    window: tuple[datetime, datetime], tz: str,
) -> ImportResult:
    started = datetime.now(UTC)
    t0 = time.monotonic()
    bar = Progress(kind, path.stat().st_size) if progress else None
    with path.open("rb") as raw:
        fh = utf8_reader(raw, encoding)
        fields = read_header(fh, kind, path)
        if bar is not None:
            bar.advance(raw.tell(), 0)
        if kind == "readings":
            read, new, rejected = _import_readings(conn, path, fh, rejects=rejects, bar=bar,
                                                   block_bytes=block_bytes or READINGS_BLOCK_BYTES,
                                                   on_block=on_block, window=window, tz=tz)
        else:
            read, new, rejected = _import_checked_in_sql(conn, kind, path, fh, rejects=rejects, bar=bar,
                                                         block_bytes=block_bytes or BLOCK_BYTES,
                                                         on_block=on_block, window=window, tz=tz,
                                                         fields=fields)
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
    window: tuple[datetime, datetime], tz: str, fields: int,
) -> tuple[int, int, int]:
    """Stage whole blocks verbatim and check, cast and insert them in SQL; commit per block.

    ``fields``: the header's count, which every line must have (units may have an optional column).
    """
    read = new = rejected = 0
    line_base = 1  # line number of the header; staged line n is line line_base + n
    while data := read_block(fh, block_bytes):
        with conn.transaction():
            conn.execute(checks.stage_sql(conn.info.server_version))
            with conn.cursor().copy(checks.COPY_STAGE) as copy:
                copy.write(data)
            conn.execute(checks.check_sql(kind, conn.info.server_version, window=window, fields=fields))
            if kind != "units":
                months = [r[0] for r in conn.execute(checks.MONTHS)]
                ensure_months(conn, months)
                conn.execute(checks.STALE, {"tz": tz})
            cur = conn.execute(checks.INSERT[kind])
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



@dataclass(frozen=True, slots=True)
class BulkImport:
    """The files of one ``anju import`` run; any may be absent."""

    units: Path | None = None
    readings: Path | None = None
    access: Path | None = None


def import_all(
    conn: psycopg.Connection, files: BulkImport, *, rejects_path: Path, tz: str, progress: bool = True,
    encoding: str = "utf-8", bounds: TimeBounds | None = None, now: datetime | None = None,
) -> list[ImportResult]:
    """Import units first (readings and events of unknown units are refused), then readings and access.

    Every file is checked (``check_file``) before anything is written, the reject file included.
    ``tz``, ``bounds`` and ``now`` as for ``import_file``.
    """
    window = (bounds or TimeBounds()).window(now or datetime.now(UTC))
    given: tuple[tuple[Kind, Path | None], ...] = (
        ("units", files.units), ("readings", files.readings), ("access", files.access))
    order = [(kind, path) for kind, path in given if path is not None]
    for kind, path in order:
        check_file(kind, path, encoding=encoding)
    results: list[ImportResult] = []
    with RejectWriter(rejects_path) as rejects:
        for kind, path in order:
            results.append(_import_checked_file(conn, kind, path, rejects=rejects, progress=progress,
                                                block_bytes=None, on_block=None, encoding=encoding,
                                                window=window, tz=tz))
    return results


def stale_days(conn: psycopg.Connection) -> list[date]:
    """Local days that bulk imports changed since features were last refreshed for them."""
    return [r[0] for r in conn.execute("SELECT day FROM bulk_stale_days ORDER BY day")]
