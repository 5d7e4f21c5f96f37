"""Detection across worker processes: each judges and acts on its share of the estates on its own connection.

The batches of whole estates (``estate_batches``) are shared out so each worker gets about as many units
(the largest first, each to the least loaded worker). A worker judges its batches and sends back only its
units' anomaly measures, its verdict counts and which units it flagged; it keeps the flagged verdicts. The
parent scores the anomaly over every worker's measures at once, as a single process would (the one
comparison across the city), and sends each worker the anomalies of its flagged units; the worker then
opens or refreshes their alerts and cases and commits. So the alerts are those of a single-process run.

Under the hub's pipeline the run is given the lease term's fence (``anju.hub.lease.TermFence``): each
worker checks the term, with the lease's row locked, just before its commit, so a worker of a hub that
lost the lease (paused, partitioned, dead) commits nothing after a standby took over. A worker whose
fence fails rolls its share back and the run raises ``DetectionLeaseLost``; a share whose fence passed
was committed while the term held.

Workers are started with ``spawn``: the hub is threaded (ingest, API), and a forked child would inherit
locks held by other threads. Each worker's transaction is its own: the run is not one transaction, but it
is idempotent (an open alert is refreshed, not opened twice; a case opens only with a new alert), so a run
that failed half-way is completed by the next.
"""

from __future__ import annotations

import logging
import multiprocessing
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from multiprocessing.connection import Connection as Pipe
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from anju.hub.audit import deferred_audit
from anju.hub.detection.load import Batch
from anju.hub.detection.service import (
    DetectionResult,
    Judged,
    Measures,
    act,
    detection_result,
    judge,
    learned_models,
)
from anju.hub.lease import LeaseLost, TermFence
from anju.models.anomaly import UnitAnomaly
from anju.models.rules import Policy
from anju_wire.clock import ESTATE_TZ

log = logging.getLogger(__name__)


class DetectionWorkerError(RuntimeError):
    """A detection worker failed or died; the message carries its traceback where it could send one."""


class DetectionLeaseLost(DetectionWorkerError, LeaseLost):
    """A detection worker found the lease term no longer held at its commit: its share was rolled back."""


@dataclass(frozen=True, slots=True)
class _Share:
    """What one worker is given: where to connect and the batches of estates it judges."""

    conninfo: str
    batches: tuple[Batch, ...]
    as_of: date
    policy: Policy
    models: bool
    tz: str
    fence: TermFence | None = None  # the lease term to hold at the commit (the hub's pipeline)


def conninfo_of(conn: psycopg.Connection) -> str:
    """A connection string to the same database as ``conn``, password included (workers connect with it)."""
    return make_conninfo(conn.info.dsn, password=conn.info.password)


def share_out(sizes: Sequence[tuple[Batch, int]], jobs: int) -> list[tuple[Batch, ...]]:
    """The batches, given as ``(batch, units)``, in ``jobs`` shares of about equal units (largest first,
    each to the least loaded share); empty shares are left out, and each share keeps estate order."""
    shares: list[list[tuple[int, Batch]]] = [[] for _ in range(max(1, jobs))]
    load = [0] * len(shares)
    for index, (batch, units) in sorted(enumerate(sizes), key=lambda x: (-x[1][1], x[0])):
        least = load.index(min(load))
        shares[least].append((index, batch))
        load[least] += units
    return [tuple(b for _, b in sorted(share, key=lambda x: x[0])) for share in shares if share]


def _worker(share: _Share, pipe: Pipe) -> None:
    """One worker: judge the share, report, wait for the anomalies, act, fence, commit, report."""
    try:
        with psycopg.connect(share.conninfo) as conn, conn.transaction():
            with deferred_audit(conn):  # its rows are appended when the block ends: before the fence
                judged: list[Judged] = []
                measures = Measures()
                for estates in share.batches:
                    j = judge(conn, as_of=share.as_of, policy=share.policy, estates=estates,
                              models=share.models, tz=share.tz)
                    measures.add(j.measures)
                    j.measures = Measures()
                    judged.append(j)
                flagged_units = sorted({f.unit_id for j in judged for f in j.flagged})
                pipe.send(("judged", _summary(judged), measures, flagged_units))
                anomalies = pipe.recv()
                if anomalies is None:  # another worker failed: leave everything as it was
                    raise _Abandoned
                learned = learned_models(conn, models=share.models)
                acted: Counter[str] = Counter()
                for j in judged:
                    acted += act(conn, flagged=j.flagged, as_of=share.as_of, policy=share.policy,
                                 anomalies=anomalies, learned=learned)
            if share.fence is not None:  # the last statement before the commit; raising rolls it all back
                share.fence.fence(conn)
        pipe.send(("acted", acted))
    except _Abandoned:
        pipe.send(("abandoned", None))
    except LeaseLost as err:  # not a fault of the worker's: the parent raises it as a lost lease
        pipe.send(("lost", str(err)))
    except Exception:
        pipe.send(("error", traceback.format_exc()))  # the parent raises it as its own
        raise
    finally:
        pipe.close()


class _Abandoned(Exception):
    """The parent called the run off after judging (another worker failed)."""


def _summary(judged: Sequence[Judged]) -> list[Judged]:
    """The worker's batches without their flagged verdicts or measures: the counts the parent adds up."""
    return [Judged(units=j.units, counts=j.counts) for j in judged]


def _receive(pipe: Pipe, expected: str) -> tuple[Any, ...]:
    try:
        message = pipe.recv()
    except EOFError as err:
        raise DetectionWorkerError("a detection worker died without a word (killed, out of memory)") from err
    if message[0] == "error":
        raise DetectionWorkerError(f"a detection worker failed:\n{message[1]}")
    if message[0] == "lost":
        raise DetectionLeaseLost(f"a detection worker's share was rolled back: {message[1]}")
    if message[0] != expected:
        raise DetectionWorkerError(f"a detection worker answered {message[0]!r}, not {expected!r}")
    return tuple(message[1:])


def run_parallel(
    conninfo: str, *, as_of: date, policy: Policy, models: bool, sizes: Sequence[tuple[Batch, int]],
    jobs: int, tz: str = ESTATE_TZ, fence: TermFence | None = None,
) -> DetectionResult:
    """Detection of the batches (``(batch, units)``) by ``jobs`` worker processes; see the module.
    ``fence``: the lease term each worker checks, with the row locked, just before its commit."""
    context = multiprocessing.get_context("spawn")
    workers = []
    try:
        for batches in share_out(sizes, jobs):
            ours, theirs = context.Pipe()
            share = _Share(conninfo, batches, as_of, policy, models, tz, fence)
            process = context.Process(target=_worker, name="anju-detect", daemon=True, args=(share, theirs))
            process.start()
            theirs.close()
            workers.append((process, ours))
        judged: list[Judged] = []
        measures = Measures()
        flagged: list[list[str]] = []
        try:
            for _, pipe in workers:
                summary, theirs_measured, units = _receive(pipe, "judged")
                judged += summary
                measures.add(theirs_measured)
                flagged.append(units)
        except DetectionWorkerError:
            for _, pipe in workers:
                if not pipe.closed:
                    _tell(pipe, None)
            raise
        scores = measures.scores(policy=policy) if models else None
        del measures
        for (_, pipe), units in zip(workers, flagged, strict=True):
            mine: dict[str, UnitAnomaly | None] = {
                u: None if scores is None else scores.get(u) for u in units}
            _tell(pipe, mine)
        acted: Counter[str] = Counter()
        errors = []
        for _, pipe in workers:
            try:
                (counts,) = _receive(pipe, "acted")
                acted += counts
            except DetectionWorkerError as err:
                errors.append(err)
        if errors:
            raise errors[0]
        return detection_result(as_of, judged, acted)
    finally:
        for process, pipe in workers:
            pipe.close()
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()


def _tell(pipe: Pipe, message: object) -> None:
    try:
        pipe.send(message)
    except (BrokenPipeError, ConnectionResetError) as err:  # gone already: its own error is reported
        log.debug("detection worker's pipe closed: %s", err)
