"""The durable, bounded SQLite outbox: every record lands here first and leaves only when the hub acks it.

Durability: WAL with ``synchronous=FULL``. A gate event cannot be read again from the gate, and the
broker acknowledges it as soon as our callback returns, so a commit must survive a power cut, not only
a process crash (WAL + NORMAL may roll back the last commits on power loss). The cost is one fsync per
commit; callers batch with ``put_many`` where they can (pollers write every due reading in one commit).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

from anju.edge_agent.counters import LastTotal
from anju.edge_agent.errors import OutboxError, OutboxFull
from anju.edge_agent.records import RecordKind, StoredRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    sent_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS records_kind_seq ON records (kind, seq);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    source TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL
);
-- The last total stored per meter, written in the same commit as its reading, so that a restarted
-- agent still recognises a rollover or a replaced meter on its first poll.
CREATE TABLE IF NOT EXISTS meter_totals (
    unit_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    device TEXT NOT NULL,
    total REAL NOT NULL,
    ts TEXT NOT NULL,
    PRIMARY KEY (unit_id, meter)
);
"""
_CHUNK = 500  # keeps IN (...) lists under SQLite's parameter limit


class Outbox:
    """A thread-safe durable queue of records numbered by a never-reused, increasing ``seq``."""

    def __init__(self, path: str | Path, *, capacity: int) -> None:
        if capacity < 1:
            raise OutboxError("capacity must be at least 1")
        self._capacity = capacity
        self._lock = threading.Lock()
        self._path = Path(path)
        if str(path) != ":memory:":
            self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        except sqlite3.Error as err:
            raise OutboxError(f"cannot open outbox {path}: {err}") from err
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
            self._depth = int(self._conn.execute("SELECT count(*) FROM records").fetchone()[0])
        except sqlite3.Error as err:
            self._conn.close()
            raise OutboxError(f"cannot prepare outbox {path}: {err}") from err
        self._closed = False

    @property
    def capacity(self) -> int:
        """The most records the outbox holds before it refuses new ones."""
        return self._capacity

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def depth(self) -> int:
        """Records waiting for the hub's ack."""
        with self._lock:
            return self._depth

    def is_full(self) -> bool:
        """Whether the next ``put`` would be refused."""
        with self._lock:
            return self._depth >= self._capacity

    def put(self, kind: RecordKind | str, payload_json: str) -> int:
        """Store one record durably and return its sequence number; raise OutboxFull at capacity."""
        return self.put_many(kind, [payload_json])[0]

    def put_many(
        self, kind: RecordKind | str, payloads: Sequence[str], *, totals: Sequence[LastTotal] = ()
    ) -> list[int]:
        """Store records in one durable commit (all or none); return their sequence numbers in order.

        ``totals`` replace the kept last total of their meters in the same commit as the readings.
        """
        k = RecordKind(kind)
        if not payloads:
            return []
        now = time.time()
        with self._lock:
            self._check_open()
            if self._depth + len(payloads) > self._capacity:
                raise OutboxFull(
                    f"outbox holds {self._depth} of {self._capacity} records; refusing {len(payloads)} more"
                )
            seqs: list[int] = []
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for p in payloads:
                    cur = self._conn.execute(
                        "INSERT INTO records (kind, payload, created_at) VALUES (?, ?, ?)", (k.value, p, now)
                    )
                    assert cur.lastrowid is not None
                    seqs.append(cur.lastrowid)
                self._conn.executemany(
                    "INSERT INTO meter_totals (unit_id, meter, device, total, ts) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (unit_id, meter) DO UPDATE SET device = excluded.device, "
                    "total = excluded.total, ts = excluded.ts",
                    [(t.unit_id, t.meter, t.device, t.total, t.ts) for t in totals],
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                raise OutboxError(f"cannot store {len(payloads)} {k} records: {err}") from err
            self._depth += len(seqs)
            return seqs

    def last_totals(self) -> dict[tuple[str, str], LastTotal]:
        """The last stored total of every meter, by (unit_id, meter)."""
        with self._lock:
            self._check_open()
            rows = self._conn.execute("SELECT unit_id, meter, device, total, ts FROM meter_totals").fetchall()
        return {
            (str(u), str(m)): LastTotal(
                unit_id=str(u), meter=str(m), device=str(d), total=float(t), ts=str(ts)
            )
            for u, m, d, t, ts in rows
        }

    def next_batch(self, kind: RecordKind | str, limit: int, not_sent_since: float) -> list[StoredRecord]:
        """Oldest records of ``kind`` never sent or last sent before ``not_sent_since`` (unix seconds)."""
        k = RecordKind(kind)
        with self._lock:
            self._check_open()
            rows = self._conn.execute(
                "SELECT seq, payload FROM records WHERE kind = ? AND (sent_at IS NULL OR sent_at < ?) "
                "ORDER BY seq LIMIT ?",
                (k.value, not_sent_since, limit),
            ).fetchall()
        return [StoredRecord(seq=int(s), kind=k, payload=str(p)) for s, p in rows]

    def mark_sent(self, seqs: Iterable[int], *, at: float | None = None) -> None:
        """Record that these records were handed to the broker (at ``at``, default now)."""
        when = time.time() if at is None else at
        self._update_in(
            "UPDATE records SET sent_at = ?, attempts = attempts + 1 WHERE seq IN ({})", [when], seqs
        )

    def mark_unsent(self) -> None:
        """Forget every send time, so everything unacked goes out again (after a reconnect)."""
        with self._lock:
            self._check_open()
            self._conn.execute("UPDATE records SET sent_at = NULL WHERE sent_at IS NOT NULL")

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete the records the hub confirmed; return how many were still here."""
        return self._update_in("DELETE FROM records WHERE seq IN ({})", [], seqs, deletes=True)

    def reject(self, *, source: str, payload: bytes, reason: str) -> None:
        """Keep raw bytes that could not become a record, with the reason (a dead-letter table)."""
        with self._lock:
            self._check_open()
            self._conn.execute(
                "INSERT INTO rejected (received_at, source, payload, reason) VALUES (?, ?, ?, ?)",
                (time.time(), source, payload, reason[:1000]),
            )

    def rejected(self, limit: int = 100) -> list[tuple[str, bytes, str]]:
        """The most recent rejected payloads as (source, raw bytes, reason), newest first."""
        with self._lock:
            self._check_open()
            rows = self._conn.execute(
                "SELECT source, payload, reason FROM rejected ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [(str(s), bytes(p), str(r)) for s, p, r in rows]

    def discard(self, seqs: Iterable[int], *, reason: str) -> None:
        """Move stored records that no longer validate into ``rejected`` so they cannot block the queue."""
        wanted = sorted(set(seqs))
        with self._lock:
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for s in wanted:
                    row = self._conn.execute(
                        "SELECT kind, payload FROM records WHERE seq = ?", (s,)
                    ).fetchone()
                    if row is None:
                        continue
                    self._conn.execute(
                        "INSERT INTO rejected (received_at, source, payload, reason) VALUES (?, ?, ?, ?)",
                        (time.time(), f"outbox:{row[0]}:{s}", str(row[1]).encode(), reason[:1000]),
                    )
                    self._conn.execute("DELETE FROM records WHERE seq = ?", (s,))
                    self._depth -= 1
                self._conn.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                self._depth = int(self._conn.execute("SELECT count(*) FROM records").fetchone()[0])
                raise OutboxError(f"cannot discard records: {err}") from err

    def close(self) -> None:
        """Close the database; later calls raise OutboxError."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise OutboxError("outbox is closed")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _update_in(self, sql: str, head: list[float], seqs: Iterable[int], *, deletes: bool = False) -> int:
        wanted = sorted({int(s) for s in seqs})
        if not wanted:
            return 0
        changed = 0
        with self._lock:
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for i in range(0, len(wanted), _CHUNK):
                    chunk = wanted[i : i + _CHUNK]
                    cur = self._conn.execute(sql.format(",".join("?" * len(chunk))), [*head, *chunk])
                    changed += cur.rowcount
                self._conn.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                raise OutboxError(f"outbox update failed: {err}") from err
            if deletes:
                self._depth -= changed
        return changed
