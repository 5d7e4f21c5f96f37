"""Batch writer: COPY readings straight into their table, merging through staging only when some are there
already; access events through staging with dedup on their natural keys; one transaction per flush.

A reading is stored once: its primary key (unit, meter, ts) refuses a second copy. The common flush
(nothing resent) is one binary COPY into ``meter_readings``, inside a savepoint. When the key refuses a
row (an agent resent what was stored but not acked), the savepoint is rolled back and the same rows go
through a staging table and ``INSERT ... ON CONFLICT DO NOTHING``, which keeps the first copy; the next
flushes merge too, until one finds nothing resent.

Before writing, every unit a batch names is looked up in the unit registry (``units``): a message naming
an unregistered unit, or another estate's, becomes a dead letter (``processor.bind_units``). Ingest never
creates units; ``anju import --units`` and the tenancy system do.

A status carrying the gateway's face census sets ``units.faces_enrolled`` of its own estate's registered
units, in the flush's transaction, and only when the status row itself was taken (no older status). Units
of another estate or unknown ones are skipped and counted, not dead-lettered: the status is still true.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg import pq

from anju.hub.ingest.errors import WriterError
from anju.hub.ingest.processor import (
    AckDue,
    DeadLetter,
    ProcessResult,
    ReadingRow,
    StatusRow,
    bind_units,
    units_named,
)
from anju.hub.storage import ensure_months
from anju.hub.storage.timeseries import month_start

log = logging.getLogger(__name__)

READING_COLUMNS = (
    "ts", "unit_id", "meter", "value", "quality", "device", "agent_id", "seq", "received_at", "event",
)  # fmt: skip
ACCESS_COLUMNS = (
    "ts", "estate_id", "device_id", "event_id", "building", "floor", "method", "person", "unit_id",
    "stranger_track", "agent_id", "seq", "received_at",
)  # fmt: skip

# Binary COPY: psycopg's C dumpers send what the server stores, with no text to format or parse per row.
READING_TYPES = (
    "timestamptz", "text", "text", "float8", "text", "text", "text", "int8", "timestamptz", "text",
)  # fmt: skip
_COPY_READINGS = f"COPY meter_readings ({', '.join(READING_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_STAGE_READINGS = (
    f"COPY anju_stage_readings ({', '.join(READING_COLUMNS)}, estate_id) FROM STDIN (FORMAT BINARY)"
)

# Staging tables live per connection; ON COMMIT DELETE ROWS empties them after every flush.
_STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS anju_stage_readings (ts timestamptz, unit_id text, meter text, "
    "value double precision, quality text, device text, agent_id text, seq bigint, received_at timestamptz, "
    "event text, estate_id text) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS anju_stage_access (ts timestamptz, estate_id text, device_id text, "
    "event_id text, building text, floor int, method text, person text, unit_id text, stranger_track text, "
    "agent_id text, seq bigint, received_at timestamptz) ON COMMIT DELETE ROWS",
)

_REGISTRY = "SELECT unit_id, estate_id FROM units WHERE unit_id = ANY(%s)"

_INSERT_READINGS = (
    f"INSERT INTO meter_readings ({', '.join(READING_COLUMNS)}) "
    f"SELECT {', '.join(READING_COLUMNS)} FROM anju_stage_readings "
    "ON CONFLICT (unit_id, meter, ts) DO NOTHING"
)
_INSERT_ACCESS = (
    f"INSERT INTO access_events ({', '.join(ACCESS_COLUMNS)}) "
    f"SELECT {', '.join(ACCESS_COLUMNS)} FROM anju_stage_access "
    "ON CONFLICT (estate_id, event_id, ts) DO NOTHING"
)
_UPSERT_STATUS = """
INSERT INTO agent_status (agent_id, estate_id, state, payload, updated_at)
VALUES (%s, %s, %s, %s::jsonb, %s)
ON CONFLICT (agent_id) DO UPDATE SET state = EXCLUDED.state,
    payload = EXCLUDED.payload, updated_at = EXCLUDED.updated_at
WHERE agent_status.updated_at <= EXCLUDED.updated_at AND agent_status.estate_id = EXCLUDED.estate_id
"""  # an agent never moves to another estate (the processor refuses that already; this is the backstop)
# Only the estate's own registered units, only changed values; says (units skipped, units changed).
_CENSUS = """
WITH census AS (SELECT * FROM unnest(%(units)s::text[], %(counts)s::int[]) AS c(unit_id, n)),
own AS (
    SELECT c.unit_id, c.n FROM census c JOIN units u ON u.unit_id = c.unit_id AND u.estate_id = %(estate)s
),
changed AS (
    UPDATE units u SET faces_enrolled = own.n FROM own
    WHERE u.unit_id = own.unit_id AND u.estate_id = %(estate)s AND u.faces_enrolled IS DISTINCT FROM own.n
    RETURNING 1
)
SELECT (SELECT count(*) FROM census) - (SELECT count(*) FROM own), (SELECT count(*) FROM changed)
"""
_INSERT_DEAD = (
    "INSERT INTO dead_letters (received_at, topic, payload, reason, code, estate_id) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What one committed flush stored, and the acks now safe to send."""

    acks: tuple[AckDue, ...] = ()
    stored_readings: int = 0
    stored_events: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    statuses: int = 0
    dead: tuple[DeadLetter, ...] = ()  # the dead letters written, for counting by estate and code
    census_changed: int = 0  # units whose faces_enrolled a status's census changed
    census_skipped: tuple[tuple[str, str, int], ...] = ()  # per census: (estate, agent, units not its own)


def merge_acks(results: Sequence[ProcessResult]) -> tuple[AckDue, ...]:
    """One ack per (estate, agent) with every sequence number of the batch, in first-seen order."""
    merged: dict[tuple[str, str], set[int]] = {}
    for r in results:
        if r.ack is not None:
            merged.setdefault((r.ack.estate_id, r.ack.agent_id), set()).update(r.ack.seqs)
    return tuple(
        AckDue(agent_id=agent, estate_id=estate, seqs=tuple(sorted(seqs)))
        for (estate, agent), seqs in merged.items()
    )


def _latest_status(results: Sequence[ProcessResult]) -> list[StatusRow]:
    latest: dict[str, StatusRow] = {}
    for r in results:
        if r.status is not None:
            latest[r.status.agent_id] = r.status  # later messages win
    return list(latest.values())


class BatchWriter:
    """Writes batches of processed messages over one connection; one transaction per flush."""

    def __init__(self, conn: psycopg.Connection) -> None:
        if not conn.autocommit:
            raise WriterError("BatchWriter needs an autocommit connection: it owns its transactions")
        self._conn = conn
        row = conn.execute(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass('meter_readings')"
        ).fetchone()
        if row is None:
            raise WriterError("meter_readings does not exist: run anju.hub.storage.ensure_schema first")
        self._partitioned = row[0] == "p"
        self._months: set[date] = set()
        self._merge = False  # True after a flush found resent readings: merge until one finds none
        for ddl in _STAGE_DDL:
            conn.execute(ddl)

    @property
    def conn(self) -> psycopg.Connection:
        """The connection this writer uses."""
        return self._conn

    def _ensure_months(self, results: Sequence[ProcessResult]) -> None:
        """Create missing monthly partitions in their own short transaction, before the flush."""
        if not self._partitioned:
            return
        months: set[date] = set()
        for rows in [r.readings for r in results] + [r.access for r in results]:
            if not rows:
                continue
            first, last = month_start(min(x.ts for x in rows)), month_start(max(x.ts for x in rows))
            # One month per message is the rule; look at every row only when a message spans several.
            months |= {first} if first == last else {month_start(x.ts) for x in rows}
        months -= self._months
        if months:
            ensure_months(self._conn, months)
            self._months |= months

    def registry(self, unit_ids: set[str]) -> dict[str, str]:
        """The registered estate of each of ``unit_ids`` that is in the unit registry."""
        if not unit_ids:
            return {}
        rows = self._conn.execute(_REGISTRY, (sorted(unit_ids),)).fetchall()
        return {str(u): str(e) for u, e in rows}

    def _store_readings(self, cur: psycopg.Cursor, readings: list[ReadingRow]) -> int:
        """Store ``readings`` (inside the flush's transaction) and say how many are new."""
        if not self._merge:
            try:
                # In a savepoint: a COPY the key refuses leaves nothing behind.
                with self._conn.transaction(), cur.copy(_COPY_READINGS) as copy:
                    copy.set_types(READING_TYPES)
                    for x in readings:
                        copy.write_row(x[:-1])  # all but estate_id
                return len(readings)
            except psycopg.errors.UniqueViolation:
                self._merge = True  # some are stored already: merge this flush, and the next ones
        with cur.copy(_STAGE_READINGS) as copy:
            copy.set_types((*READING_TYPES, "text"))
            for x in readings:
                copy.write_row(x)
        cur.execute(_INSERT_READINGS)
        stored = cur.rowcount
        self._merge = stored < len(readings)  # back to plain COPY once a flush finds nothing resent
        return stored

    def write(self, results: Sequence[ProcessResult]) -> FlushResult:
        """Store a batch atomically; the returned acks are safe to send because the batch is committed.

        Messages naming units outside the registry (or of another estate) are stored as dead letters.
        """
        if self._conn.info.transaction_status != pq.TransactionStatus.IDLE:
            raise WriterError("connection is inside a transaction; BatchWriter.write needs it idle")
        known = self.registry(set().union(*(units_named(r) for r in results)))
        results = [bind_units(r, known) for r in results]
        readings = [x for r in results for x in r.readings]
        access = [x for r in results for x in r.access]
        dead = [r.dead_letter for r in results if r.dead_letter is not None]
        statuses = _latest_status(results)
        self._ensure_months(results)
        stored_readings = stored_events = census_changed = 0
        census_skipped: list[tuple[str, str, int]] = []
        with self._conn.transaction(), self._conn.cursor() as cur:
            if readings:
                stored_readings = self._store_readings(cur, readings)
            if access:
                with cur.copy(f"COPY anju_stage_access ({', '.join(ACCESS_COLUMNS)}) FROM STDIN") as copy:
                    for a in access:
                        copy.write_row(
                            (a.ts, a.estate_id, a.device_id, a.event_id, a.building, a.floor, a.method,
                             a.person, a.unit_id, a.stranger_track, a.agent_id, a.seq, a.received_at)
                        )  # fmt: skip
            if access:
                cur.execute(_INSERT_ACCESS)
                stored_events = cur.rowcount
            if plain := [s for s in statuses if s.faces_enrolled is None]:
                cur.executemany(
                    _UPSERT_STATUS,
                    [(s.agent_id, s.estate_id, s.state, s.payload, s.updated_at) for s in plain],
                )
            for s in statuses:
                if s.faces_enrolled is not None:
                    changed, skipped = _store_census(cur, s)
                    census_changed += changed
                    census_skipped += [(s.estate_id, s.agent_id, skipped)] if skipped is not None else []
            if dead:
                cur.executemany(
                    _INSERT_DEAD,
                    [(d.received_at, d.topic, d.payload, d.reason, d.code, d.estate_id) for d in dead],
                )
        return FlushResult(
            acks=merge_acks(results),
            stored_readings=stored_readings,
            stored_events=stored_events,
            duplicates=len(readings) + len(access) - stored_readings - stored_events,
            dead_letters=len(dead),
            statuses=len(statuses),
            dead=tuple(dead),
            census_changed=census_changed,
            census_skipped=tuple(census_skipped),
        )


def _store_census(cur: psycopg.Cursor, status: StatusRow) -> tuple[int, int | None]:
    """Upsert ``status`` and, when it was taken, apply its census: (units changed, units skipped).

    Skipped is None when the status was older than the stored one (nothing of it applied): a retained
    status the broker hands over late must not put back counts a newer one replaced.
    """
    cur.execute(
        _UPSERT_STATUS + " RETURNING 1",
        (status.agent_id, status.estate_id, status.state, status.payload, status.updated_at),
    )
    if cur.fetchone() is None:
        return 0, None
    census = status.faces_enrolled or ()
    cur.execute(_CENSUS, {"units": [u for u, _ in census], "counts": [n for _, n in census],
                          "estate": status.estate_id})  # fmt: skip
    row = cur.fetchone()
    assert row is not None
    return int(row[1]), int(row[0])
