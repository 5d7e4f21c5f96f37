"""What every polled meter source shares, whatever its protocol: staggered polling of the meters behind one
endpoint, availability noted once per change, rollover and replacement flags, and one outbox commit per round.

An endpoint is one connection that carries one request at a time: an RS-485 bus on a serial port, or a
TCP host:port (a meter, or a serial-to-TCP converter in front of a bus). Subclasses say how one meter is
read (``_read``), how its connection closes (``close``) and at what total its register wraps
(``_maximum``). Every poll becomes a reading in the outbox: the total, or ``quality: unavailable`` with a
null value and one log line when the meter goes away (and one when it returns). A total below the
meter's last stored one is flagged as a rollover or a replaced meter (``anju.edge_agent.counters``); the last
totals are kept in the outbox database in the same commit as the readings, so a restart does not forget
them. Every failed poll is one log line: the WARNING when the meter goes away, then one DEBUG line per
further failed poll; the transport libraries' own loggers stay quiet (``anju.logs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from anju.edge_agent.counters import CounterTracker, LastTotal
from anju.edge_agent.errors import OutboxError
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.records import ReadingRecord, RecordKind, reading_record
from anju.edge_agent.site import MeterConfig
from anju_wire import Clock
from anju_wire.payloads import DeviceAvailability

log = logging.getLogger(__name__)


async def _sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))


@dataclass(slots=True)
class MeterState:
    """What the poller knows about one meter between polls."""

    config: MeterConfig
    register_map: Any  # the protocol's description of where the total lives (a RegisterMap for Modbus)
    next_due: float
    maximum: float | None = None  # the total at which the meter wraps to zero, if it can
    available: bool | None = None
    since: datetime | None = None
    last_problem: str | None = None
    polls: int = 0
    failures: int = 0
    rollovers: int = 0
    replacements: int = 0


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """The result of one read: a total, or why there is none."""

    value: float | None
    problem: str | None = None


@dataclass(slots=True)
class PollerStats:
    """Counters of one endpoint poller."""

    polls: int = 0
    transport_errors: int = 0
    device_errors: int = 0
    decode_errors: int = 0
    refused_full: int = 0
    late_rounds: int = field(default=0)
    rollovers: int = 0
    replacements: int = 0


class EndpointPoller(ABC):
    """Polls every meter behind one endpoint into the outbox; subclasses speak the protocol."""

    protocol = "?"

    def __init__(self, *, meters: list[MeterConfig], clock: Clock, outbox: Outbox) -> None:
        if not meters or any(m.endpoint != meters[0].endpoint for m in meters):
            raise ValueError("a poller needs meters, all behind one endpoint")
        first = meters[0]
        self.transport = first.transport
        self.host = first.host
        self.port = first.port
        self.serial_port = first.serial_port
        self._clock = clock
        self._outbox = outbox
        self.stats = PollerStats()
        start = time.monotonic()
        self.meters: list[MeterState] = []
        for i, m in enumerate(meters):
            register_map = self._register_map(m)
            self.meters.append(
                MeterState(
                    config=m,
                    register_map=register_map,
                    # stagger: spread the first polls over each meter's interval
                    next_due=start + clock.wall_seconds(m.poll_interval_s) * i / len(meters),
                    maximum=self._maximum(m, register_map),
                )
            )
        self._counters = CounterTracker(outbox.last_totals())
        self._timeout = max(m.timeout_s for m in meters)

    def _register_map(self, meter: MeterConfig) -> Any:
        """What ``_read`` needs to know about this meter's model (None unless the protocol has maps)."""
        return None

    @abstractmethod
    def _maximum(self, meter: MeterConfig, register_map: Any) -> float | None:
        """The total at which this meter's register wraps to zero (None: it cannot)."""

    @abstractmethod
    async def _read(self, state: MeterState) -> PollOutcome:
        """Read one meter's total once; count the failure's cause in ``self.stats``."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection (``run`` does this on its way out)."""

    @property
    def name(self) -> str:
        """The endpoint as ``host:port`` or the serial port's path."""
        if self.serial_port is not None:
            return self.serial_port
        return f"{self.host}:{self.port}"

    def availability(self) -> list[DeviceAvailability]:
        """Each meter's availability as last seen (meters not yet polled are left out)."""
        return [
            DeviceAvailability(device=s.config.device, available=s.available, since=s.since)
            for s in self.meters
            if s.available is not None
        ]

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; always closes the connection."""
        try:
            while not stop.is_set():
                now = time.monotonic()
                due = [s for s in self.meters if s.next_due <= now]
                if not due:
                    wake = min(s.next_due for s in self.meters)
                    await _sleep_unless_stopped(stop, wake - now)
                    continue
                await self.poll_round(due, stop=stop)
        finally:
            self.close()

    async def poll_round(
        self, states: list[MeterState] | None = None, *, stop: asyncio.Event | None = None
    ) -> list[ReadingRecord]:
        """Poll these meters (default: all) in turn, store their readings in one commit, return them."""
        records: list[ReadingRecord] = []
        for state in self.meters if states is None else states:
            if stop is not None and stop.is_set():
                break
            records.append(await self.poll(state))
            self._schedule(state)
        if records:
            await self._store(records)
        return records

    def _schedule(self, state: MeterState) -> None:
        interval = self._clock.wall_seconds(state.config.poll_interval_s)
        state.next_due += interval
        now = time.monotonic()
        if state.next_due < now:
            # too far behind: skip missed slots rather than build a backlog of polls
            self.stats.late_rounds += 1
            state.next_due = now + interval

    async def _store(self, records: list[ReadingRecord]) -> None:
        totals = [
            LastTotal(
                unit_id=r.unit_id, meter=r.meter.value, device=r.device, total=r.value, ts=r.ts.isoformat()
            )
            for r in records
            if r.value is not None
        ]
        try:
            await asyncio.to_thread(
                self._outbox.put_many, RecordKind.READING, [r.to_json() for r in records], totals=totals
            )
        except OutboxError as err:
            self.stats.refused_full += len(records)
            log.error("%s: %d readings not stored: %s", self.name, len(records), err)
            return
        # only now: a refused reading must not become the baseline its successor is compared with
        self._counters.remember(totals)
        for r in records:
            if r.event is not None:
                log.warning("%s: total fell to %s: flagged %s", r.device, r.value, r.event)

    async def poll(self, state: MeterState) -> ReadingRecord:
        """Read one meter once and return its reading, timestamped at the poll."""
        ts = self._clock.now()
        outcome = await self._read(state)
        state.polls += 1
        self.stats.polls += 1
        self._note_availability(state, outcome, ts)
        cfg = state.config
        event = self._counters.event(
            unit_id=cfg.unit_id, meter=cfg.meter.value, value=outcome.value, maximum=state.maximum
        )
        if event == "rollover":
            self.stats.rollovers += 1
            state.rollovers += 1
        elif event == "replaced":
            self.stats.replacements += 1
            state.replacements += 1
        return reading_record(
            unit_id=cfg.unit_id, meter=cfg.meter, device=cfg.device, ts=ts, value=outcome.value, event=event
        )

    def _note_availability(self, state: MeterState, outcome: PollOutcome, ts: datetime) -> None:
        available = outcome.value is not None
        if not available:
            state.failures += 1
        if state.available is available:
            if not available:  # still away: this poll's one line, for whoever reads DEBUG
                log.debug("%s: poll failed: %s", state.config.device, outcome.problem)
            return
        if available:
            if state.available is not None:
                log.info("%s is available again", state.config.device)
        else:
            log.warning("%s is unavailable: %s", state.config.device, outcome.problem)
        state.available = available
        state.since = ts
        state.last_problem = outcome.problem
