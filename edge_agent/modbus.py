"""One poller per Modbus endpoint: reads each meter's cumulative register on its clock interval.

An endpoint is a Modbus TCP host:port (often an RS-485 line behind a serial-to-TCP converter) or a
serial port driving an RS-485 bus directly (Modbus RTU). Its meters are read one at a time over one
connection, staggered across the interval: a bus carries one request at a time.
Every poll becomes a reading in the outbox: the decoded total, or ``quality: unavailable`` with a null
value when the meter does not answer, answers with a Modbus exception, or answers with a value that
cannot be a cumulative total. Availability changes are logged once when a meter goes away and once
when it returns. A total below the meter's last stored one is flagged as a rollover or a replaced meter
(``edge_agent.counters``); the last totals are kept in the outbox database, in the same commit as the
readings, so a restart does not forget them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from anju_wire import Clock
from anju_wire.payloads import DeviceAvailability
from edge_agent.counters import CounterTracker, LastTotal, rollover_max
from edge_agent.errors import DecodeError, OutboxError
from edge_agent.mqtt import wait_or_stop
from edge_agent.outbox import Outbox
from edge_agent.records import ReadingRecord, RecordKind, reading_record
from edge_agent.registers import RegisterMap, decode_total
from edge_agent.site import MeterConfig

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MeterState:
    """What the poller knows about one meter between polls."""

    config: MeterConfig
    register_map: RegisterMap
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


class ModbusEndpointPoller:
    """Polls every meter behind one Modbus endpoint (TCP host:port, or an RTU serial port) into the outbox."""

    def __init__(
        self,
        *,
        meters: list[MeterConfig],
        clock: Clock,
        outbox: Outbox,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        if not meters or any(m.endpoint != meters[0].endpoint for m in meters):
            raise ValueError("a poller needs meters, all behind one endpoint")
        first = meters[0]
        if host is not None and (first.transport != "tcp" or (host, port) != (first.host, first.port)):
            raise ValueError("host/port given do not match the meters' endpoint")
        self.transport = first.transport
        self.host = first.host
        self.port = first.port
        self.serial_port = first.serial_port
        self._clock = clock
        self._outbox = outbox
        self.stats = PollerStats()
        start = time.monotonic()
        self.meters = []
        for i, m in enumerate(meters):
            register_map = m.load_map()
            self.meters.append(
                MeterState(
                    config=m,
                    register_map=register_map,
                    # stagger: spread the first polls over each meter's interval
                    next_due=start + clock.wall_seconds(m.poll_interval_s) * i / len(meters),
                    maximum=rollover_max(register_map),
                )
            )
        self._counters = CounterTracker(outbox.last_totals())
        self._timeout = max(m.timeout_s for m in meters)
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if first.transport == "rtu":
            assert first.serial_port is not None
            self._client = AsyncModbusSerialClient(
                first.serial_port, baudrate=first.baudrate, parity=first.parity, stopbits=first.stopbits,
                bytesize=first.bytesize, timeout=self._timeout, retries=0, reconnect_delay=0,
            )  # fmt: skip
        else:
            assert first.host is not None
            self._client = AsyncModbusTcpClient(
                first.host, port=first.port, timeout=self._timeout, retries=0, reconnect_delay=0
            )

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
                    await wait_or_stop(stop, wake - now)
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

    def close(self) -> None:
        """Close the Modbus connection (``run`` does this on its way out)."""
        self._client.close()

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

    async def _read(self, state: MeterState) -> PollOutcome:
        m = state.register_map
        cfg = state.config
        try:
            if not self._client.connected and not await asyncio.wait_for(
                self._client.connect(), timeout=cfg.timeout_s
            ):
                self.stats.transport_errors += 1
                return PollOutcome(None, f"cannot connect to {self.name}")
            reader = (
                self._client.read_input_registers
                if m.function == "input"
                else self._client.read_holding_registers
            )
            rr = await asyncio.wait_for(
                reader(m.start, count=m.count, device_id=cfg.device_id), timeout=cfg.timeout_s * 2
            )
        except (ModbusException, OSError, TimeoutError) as err:
            self.stats.transport_errors += 1
            self._client.close()
            return PollOutcome(None, f"transport: {type(err).__name__}: {err}")
        if rr.isError():
            self.stats.device_errors += 1
            return PollOutcome(None, f"device exception response: code {getattr(rr, 'exception_code', '?')}")
        try:
            return PollOutcome(decode_total(m, list(rr.registers)))
        except DecodeError as err:
            self.stats.decode_errors += 1
            return PollOutcome(None, f"bad value: {err}")

    def _note_availability(self, state: MeterState, outcome: PollOutcome, ts: datetime) -> None:
        available = outcome.value is not None
        if not available:
            state.failures += 1
        if state.available is available:
            return
        if available:
            if state.available is not None:
                log.info("%s is available again", state.config.device)
        else:
            log.warning("%s is unavailable: %s", state.config.device, outcome.problem)
        state.available = available
        state.since = ts
        state.last_problem = outcome.problem
