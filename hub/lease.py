"""A lease in PostgreSQL, so that exactly one hub runs the pipeline and a standby takes over when it dies.

The pipeline (detection, tenancy delivery and its feed, household notices, overdue deadlines, retention)
may run in any number of hubs (``anju hub --role pipeline``); each asks for the ``pipeline`` row of
``hub_leases`` and only its holder works. The holder renews every third of the lease period; a hub that
dies stops renewing, and a standby, which waits exactly until the row expires, takes it within one lease
period of the last renewal. Each new term adds one to ``epoch``, the fencing token: the pipeline checks
(holder, epoch) before each cycle, and again with the row locked ``FOR SHARE`` just before a step
commits (detection's worker processes each before their own commit, with a ``TermFence``), so a holder
that was paused past its expiry (a long GC, a frozen VM, a lost network) cannot commit work after
another hub took over: the takeover's UPDATE waits for that commit or finds the lease still live. Every
time is the database's clock (``clock_timestamp()``), so the hubs' clocks may differ; locally a holder
counts its term from the moment it *sent* the renewal, which errs on the safe side.

Why one active pipeline under a lease rather than detection sharded by estate across pipelines:
- most of the pipeline is city-wide with no estate to shard by (the tenancy outbox and change feed,
  retention, deadlines); those would need a single runner, that is a lease, anyway;
- sharding needs a membership protocol and rebalancing when a hub comes or goes, where a lease is one
  row and one UPDATE, and its failure mode (a takeover pause of one lease period) is far shorter than
  the detection interval;
- detection's own cost scales inside the active pipeline (estate by estate, across processes), so the
  single runner is not the ceiling; the database is. A standby costs nothing but an idle connection.

The pipeline's external sends stay exactly-once without the lease (the outbox claims rows and looks a
filing up before sending it again); the lease is what keeps two detectors from opening the same alert at
once and keeps the scheduled jobs single.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)

PIPELINE = "pipeline"

_ENSURE = "INSERT INTO hub_leases (name) VALUES (%s) ON CONFLICT (name) DO NOTHING"
# Take the row when it is free or expired (a new term: epoch + 1), or renew our own live term.
_ACQUIRE = """
UPDATE hub_leases SET
    epoch = CASE WHEN holder = %(me)s AND epoch = %(epoch)s AND expires_at >= clock_timestamp()
                 THEN epoch ELSE epoch + 1 END,
    acquired_at = CASE WHEN holder = %(me)s AND epoch = %(epoch)s AND expires_at >= clock_timestamp()
                       THEN acquired_at ELSE clock_timestamp() END,
    holder = %(me)s,
    renewed_at = clock_timestamp(),
    expires_at = clock_timestamp() + make_interval(secs => %(ttl)s)
WHERE name = %(name)s
  AND (expires_at < clock_timestamp() OR (holder = %(me)s AND epoch = %(epoch)s))
RETURNING epoch
"""
_REMAINING = (
    "SELECT extract(epoch FROM expires_at - clock_timestamp())::float8 FROM hub_leases WHERE name = %s"
)
_HELD = (
    "SELECT 1 FROM hub_leases WHERE name = %s AND holder = %s AND epoch = %s"
    " AND expires_at > clock_timestamp()"
)
_RELEASE = (
    "UPDATE hub_leases SET expires_at = '-infinity', holder = NULL"
    " WHERE name = %s AND holder = %s AND epoch = %s"
)


class LeaseLost(RuntimeError):
    """This hub no longer holds the lease (expired, or taken by another hub): its work must not commit."""


@dataclass(frozen=True, slots=True)
class LeaseTerm:
    """One term of holding the lease: the fencing token ``epoch`` and until when (monotonic) it is ours."""

    holder: str
    epoch: int
    valid_until: float  # time.monotonic(); the database's expiry is later, never earlier


def holder_id(hub_id: str) -> str:
    """A holder name unique to this process: a hub restarted under the same ``hub_id`` is a new holder."""
    return f"{hub_id}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class TermFence:
    """One term's fence as plain data, for another process of the holder (a detection worker, which has
    its own connection and transaction): picklable, unlike the ``Lease`` or ``LeaseKeeper`` it came from.

    It checks only the database's row, not the holder's local clock (the term's renewals are the parent's);
    with the row locked ``FOR SHARE`` until the caller's commit that is what keeps a takeover out."""

    name: str
    holder: str
    epoch: int

    def fence(self, conn: psycopg.Connection) -> None:
        """``Lease.fence``'s check in the caller's transaction: raise ``LeaseLost`` unless the term is still
        the live one, and lock the row until the caller commits (call it just before the commit)."""
        _held_in_database(conn, self.name, self.holder, self.epoch, _HELD + " FOR SHARE")


def _held_in_database(conn: psycopg.Connection, name: str, holder: str, epoch: int, sql: str) -> None:
    if conn.execute(sql.encode(), (name, holder, epoch)).fetchone() is None:
        raise LeaseLost(f"lease {name} epoch {epoch} is no longer held by {holder}")


class Lease:
    """The statements of one named lease for one holder; the caller owns the connections."""

    def __init__(self, *, holder: str, ttl_s: float, name: str = PIPELINE) -> None:
        if ttl_s <= 0:
            raise ValueError("a lease period must be positive")
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s

    def try_acquire(self, conn: psycopg.Connection, *, current: LeaseTerm | None = None) -> LeaseTerm | None:
        """Take the lease when free or expired, or renew ``current``; None while another hub holds it.

        Run with autocommit (or commit after): the row is locked until the caller's transaction ends.
        """
        sent = time.monotonic()
        conn.execute(_ENSURE, (self.name,))
        row = conn.execute(_ACQUIRE, {"me": self.holder, "epoch": current.epoch if current else -1,
                                      "ttl": self.ttl_s, "name": self.name}).fetchone()  # fmt: skip
        if row is None:
            return None
        return LeaseTerm(holder=self.holder, epoch=int(row[0]), valid_until=sent + self.ttl_s)

    def remaining_s(self, conn: psycopg.Connection) -> float:
        """Seconds until the current term (anyone's) expires, by the database's clock; 0 when expired."""
        row = conn.execute(_REMAINING, (self.name,)).fetchone()
        return max(0.0, float(row[0])) if row and row[0] is not None else 0.0

    def check(self, conn: psycopg.Connection, term: LeaseTerm) -> None:
        """Raise ``LeaseLost`` unless ``term`` is still the live one (no lock: before a step starts)."""
        self._held(conn, term, _HELD)

    def fence(self, conn: psycopg.Connection, term: LeaseTerm) -> None:
        """As ``check``, and lock the row ``FOR SHARE`` in the caller's transaction, so that no takeover
        commits before the caller's work does: call it just before the caller's commit (the lock also
        holds off this hub's own renewal until then)."""
        self._held(conn, term, _HELD + " FOR SHARE")

    def _held(self, conn: psycopg.Connection, term: LeaseTerm, sql: str) -> None:
        if time.monotonic() >= term.valid_until:
            raise LeaseLost(f"lease {self.name} epoch {term.epoch} ran out before it was renewed")
        _held_in_database(conn, self.name, term.holder, term.epoch, sql)

    def term_fence(self, term: LeaseTerm) -> TermFence:
        """``term``'s fence for another process (``TermFence``)."""
        return TermFence(name=self.name, holder=term.holder, epoch=term.epoch)

    def release(self, conn: psycopg.Connection, term: LeaseTerm) -> bool:
        """Give the lease up at a clean shutdown, so a standby need not wait for it to expire."""
        return conn.execute(_RELEASE, (self.name, term.holder, term.epoch)).rowcount == 1


class LeaseKeeper:
    """A thread that takes the lease when it can and renews it every third of its period.

    ``term()`` is the live term or None (standby). A standby retries right after the holder's expiry
    (by the database's clock), capped at a third of the period; a database error keeps the term until
    its local end, and then it is lost.
    """

    def __init__(
        self, *, database_url: str, lease: Lease, on_change: Callable[[LeaseTerm | None], None] | None = None
    ) -> None:
        self._url = database_url
        self.lease = lease
        self._on_change = on_change
        self._lock = threading.Lock()
        self._term: LeaseTerm | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"anju-lease-{lease.name}", daemon=True)
        self._db_down = False

    def term(self) -> LeaseTerm | None:
        """The term this hub holds now, or None."""
        with self._lock:
            term = self._term
        if term is not None and time.monotonic() >= term.valid_until:
            # Only that term ends: a renewal the keeper stored meanwhile stands.
            self._set(None, why="it ran out before it could be renewed", replacing=term)
            return self.term() if self._term is not None else None
        return term

    def start(self) -> None:
        """Start asking for the lease."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and release a held lease, so that a standby takes over at once."""
        self._stop.set()
        self._thread.join(10)
        term = self.term()
        if term is None:
            return
        try:
            with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                self.lease.release(conn, term)
        except psycopg.Error as err:  # the standby takes over at expiry instead
            log.warning("could not release the %s lease: %s", self.lease.name, err)
        self._set(None, why="this hub stops")

    def check(self, conn: psycopg.Connection, epoch: int) -> None:
        """``Lease.check`` of the term ``epoch`` as last renewed: a step may outlast the renewal that
        was current when it began, never the term."""
        self.lease.check(conn, self._current(epoch))

    def fence(self, conn: psycopg.Connection, epoch: int) -> None:
        """``Lease.fence`` of the term ``epoch`` as last renewed (just before the caller's commit)."""
        self.lease.fence(conn, self._current(epoch))

    def term_fence(self, epoch: int) -> TermFence:
        """The fence of the term ``epoch`` for another process (``TermFence``); ``LeaseLost`` when this hub
        no longer holds that term."""
        return self.lease.term_fence(self._current(epoch))

    def _current(self, epoch: int) -> LeaseTerm:
        term = self.term()
        if term is None or term.epoch != epoch:
            raise LeaseLost(f"lease {self.lease.name} epoch {epoch} is no longer this hub's")
        return term

    def _set(self, term: LeaseTerm | None, *, why: str = "", replacing: LeaseTerm | None = None) -> None:
        with self._lock:
            if replacing is not None and self._term is not replacing:
                return
            before, self._term = self._term, term
        changed = (before is None) != (term is None) or (
            before is not None and term is not None and before.epoch != term.epoch)
        if not changed:
            return
        if term is not None:
            log.info("%s lease taken by %s (epoch %d)", self.lease.name, term.holder, term.epoch)
        else:
            log.warning("%s lease lost: %s", self.lease.name, why)
        if self._on_change is not None:
            self._on_change(term)

    def _run(self) -> None:
        period = self.lease.ttl_s / 3
        conn: psycopg.Connection | None = None
        while not self._stop.is_set():
            wait = period
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self._url, autocommit=True, connect_timeout=max(1, int(period)))
                current = self.term()
                term = self.lease.try_acquire(conn, current=current)
                if term is not None:
                    self._set(term)
                else:
                    if current is not None:
                        self._set(None, why="another hub holds it")
                    wait = min(period, self.lease.remaining_s(conn) + 0.02)
                if self._db_down:
                    log.info("%s lease: database reachable again", self.lease.name)
                    self._db_down = False
            except psycopg.Error as err:
                if not self._db_down:  # said once per outage; the term runs out on its own
                    log.warning("%s lease: cannot reach the database: %s", self.lease.name, err)
                    self._db_down = True
                if conn is not None and not conn.closed:
                    conn.close()
                conn = None
                wait = min(period, 1.0)
            self._stop.wait(wait)
        if conn is not None:
            conn.close()
