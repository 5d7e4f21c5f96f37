"""Supervision and liveness of the hub's background parts, for ``/api/health`` and ``/metrics``.

Each long-running part (the ingest writer, its broker connection, the detection and filing pipeline)
reports to a ``PartMonitor``: a heartbeat while it runs, a success after each unit of work, a failure
with its reason. ``run_supervised`` restarts a part's loop with jittered, capped backoff when it raises,
so one bad input or a bug in one step never leaves a thread silently dead behind a healthy-looking API.
The ``HubMonitor`` gathers the parts and turns them, with the ingest counters, into Prometheus metrics
at scrape time (no global registry, nothing at import time).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from anju_mqtt import backoff_delays

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PartHealth:
    """A snapshot of one background part (ingest, broker, pipeline): up, or why not; /api/health shows it."""

    name: str
    up: bool
    alive: bool
    failing: bool
    restarts: int
    last_success: datetime | None
    last_error: str | None
    heartbeat_age_s: float | None
    lag_s: float | None


class PartMonitor:
    """Thread-safe liveness of one part of the hub.

    A part is up when its thread runs, its last heartbeat is younger than ``stale_after_s`` and its last
    outcome was not a failure. ``lag`` (optional) says how far behind its input the part is, in seconds.
    """

    def __init__(
        self, name: str, *, stale_after_s: float, lag: Callable[[], float | None] | None = None
    ) -> None:
        self.name = name
        self._stale_after_s = stale_after_s
        self._lag = lag
        self._lock = threading.Lock()
        self._alive = False
        self._failing = False
        self._restarts = 0
        self._beat: float | None = None
        self._last_success: datetime | None = None
        self._last_error: str | None = None

    def set_alive(self, alive: bool) -> None:
        """The part's loop started (True) or ended (False)."""
        with self._lock:
            self._alive = alive
            self._beat = time.monotonic() if alive else self._beat

    def beat(self) -> None:
        """The loop is turning (idle or not)."""
        with self._lock:
            self._beat = time.monotonic()

    def success(self) -> None:
        """A unit of work completed."""
        with self._lock:
            self._beat = time.monotonic()
            self._last_success = datetime.now(UTC)
            if self._failing:
                log.info("%s recovered", self.name)  # logged once per recovery, not per success
            self._failing = False

    def failure(self, reason: BaseException | str) -> None:
        """A unit of work failed (the part may retry it)."""
        text = reason if isinstance(reason, str) else f"{type(reason).__name__}: {reason}"
        with self._lock:
            self._beat = time.monotonic()
            self._failing = True
            self._last_error = text[:500]

    def restarted(self) -> None:
        """The supervisor restarts the part's loop after it raised."""
        with self._lock:
            self._restarts += 1

    def snapshot(self) -> PartHealth:
        """The part's state now."""
        lag = self._lag() if self._lag is not None else None
        with self._lock:
            age = None if self._beat is None else time.monotonic() - self._beat
            stale = age is None or age > self._stale_after_s
            return PartHealth(
                name=self.name,
                up=self._alive and not stale and not self._failing,
                alive=self._alive,
                failing=self._failing,
                restarts=self._restarts,
                last_success=self._last_success,
                last_error=self._last_error,
                heartbeat_age_s=None if age is None else round(age, 3),
                lag_s=None if lag is None else round(lag, 3),
            )


def run_supervised(
    loop: Callable[[], None],
    *,
    part: PartMonitor,
    stop: threading.Event,
    first_delay_s: float = 0.5,
    cap_s: float = 30.0,
) -> None:
    """Run ``loop`` until ``stop`` is set; when it raises (or returns early), restart it with backoff."""
    delays = backoff_delays(first=first_delay_s, cap=cap_s)
    part.set_alive(True)
    try:
        while not stop.is_set():
            try:
                loop()
            except Exception as err:
                # The supervisor's job: log the crash with its traceback, show it in health and metrics,
                # restart the loop. Nothing is lost: ingest acks only what is committed.
                log.exception("%s stopped by an error; restarting it", part.name)
                part.failure(err)
            else:
                if stop.is_set():
                    return
                part.failure("loop returned without being asked to stop")
            part.restarted()
            stop.wait(next(delays))
    finally:
        part.set_alive(False)


class IngestView(Protocol):
    """What the monitor reads from the ingest service."""

    def stats_dict(self) -> dict[str, int]:
        """Counters since start."""
        ...

    def dead_letters_by_estate(self) -> dict[str, dict[str, int]]:
        """Dead letters since start, by estate and reason code."""
        ...

    def queue_depth(self) -> int:
        """Messages received and not yet processed."""
        ...


class LeaseTermView(Protocol):
    """What the monitor reads of a lease term."""

    @property
    def epoch(self) -> int:
        """The term's fencing token."""
        ...


class LeaseView(Protocol):
    """What the monitor reads from the pipeline's lease keeper."""

    def term(self) -> LeaseTermView | None:
        """The term this hub holds now, or None (standby)."""
        ...


class HubMonitor:
    """The hub's parts and counters, for the health view and the Prometheus endpoint."""

    def __init__(self) -> None:
        self._parts: list[PartMonitor] = []
        self._ingest: IngestView | None = None
        self._lease: LeaseView | None = None

    def add(self, *parts: PartMonitor) -> None:
        """Watch these parts."""
        self._parts.extend(parts)

    def attach_ingest(self, ingest: IngestView) -> None:
        """Read ingest counters from ``ingest``."""
        self._ingest = ingest

    def attach_lease(self, lease: LeaseView) -> None:
        """Report whether this hub holds the pipeline lease (1) or stands by (0)."""
        self._lease = lease

    def parts(self) -> list[PartHealth]:
        """A snapshot of every part."""
        return [p.snapshot() for p in self._parts]

    def dead_letters_by_estate(self) -> dict[str, dict[str, int]]:
        """Dead letters since start by estate and code (empty without ingest)."""
        return self._ingest.dead_letters_by_estate() if self._ingest is not None else {}

    def registry(self) -> CollectorRegistry:
        """A registry holding only this hub's metrics, read at scrape time."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_HubCollector(self))
        return registry

    def metrics(self) -> Iterable[Metric]:
        """The metric families, freshly read."""
        parts = self.parts()
        up = GaugeMetricFamily(
            "anju_part_up", "1 when the part runs and its last work succeeded", labels=["part"]
        )
        restarts = CounterMetricFamily("anju_part_restarts", "Restarts after a crash", labels=["part"])
        success = GaugeMetricFamily(
            "anju_part_last_success_timestamp_seconds", "Unix time of the last success", labels=["part"]
        )
        lag = GaugeMetricFamily(
            "anju_part_lag_seconds", "How far behind its input the part is", labels=["part"]
        )
        for p in parts:
            up.add_metric([p.name], 1.0 if p.up else 0.0)
            restarts.add_metric([p.name], p.restarts)
            if p.last_success is not None:
                success.add_metric([p.name], p.last_success.timestamp())
            if p.lag_s is not None:
                lag.add_metric([p.name], p.lag_s)
        yield from (up, restarts, success, lag)
        if self._lease is not None:
            term = self._lease.term()
            yield GaugeMetricFamily("anju_pipeline_active", "1 while this hub holds the pipeline lease",
                                    value=0.0 if term is None else 1.0)  # fmt: skip
            if term is not None:
                yield GaugeMetricFamily("anju_pipeline_lease_epoch", "The fencing token of the held term",
                                        value=term.epoch)  # fmt: skip
        if self._ingest is None:
            return
        for name, value in self._ingest.stats_dict().items():
            yield CounterMetricFamily(f"anju_ingest_{name}", f"ingest {name.replace('_', ' ')} since start",
                                      value=value)  # fmt: skip
        dead = CounterMetricFamily(
            "anju_ingest_dead_letters_by_estate",
            "Messages refused, by the estate of their topic and reason code",
            labels=["estate", "code"],
        )
        for estate, codes in sorted(self._ingest.dead_letters_by_estate().items()):
            for code, n in sorted(codes.items()):
                dead.add_metric([estate, code], n)
        yield dead
        yield GaugeMetricFamily("anju_ingest_queue_depth", "Messages waiting to be processed",
                                value=self._ingest.queue_depth())  # fmt: skip


class _HubCollector(Collector):
    def __init__(self, monitor: HubMonitor) -> None:
        self._monitor = monitor

    def collect(self) -> Iterable[Metric]:
        return self._monitor.metrics()


def by_estate(counts: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """``{(estate, code): n}`` as ``{estate: {code: n}}``."""
    out: dict[str, dict[str, int]] = {}
    for (estate, code), n in counts.items():
        out.setdefault(estate, {})[code] = n
    return out
