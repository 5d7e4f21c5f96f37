"""Meters that report on their own over MQTT (Tasmota plugs, NB-IoT water meters via their platform).

They are treated like polled meters: each message becomes a reading in the outbox (stored from inside
paho's callback, so the estate broker's PUBACK follows the commit), a falling total is flagged as a
rollover or a replaced meter against the same persisted last totals as Modbus meters, and a meter that
has sent nothing for ``silence_intervals`` of its expected intervals is unavailable: logged once when it
goes silent and once when it returns, with an ``unavailable`` reading for each interval of silence.
Messages that do not decode are kept raw in the outbox's ``rejected`` table with the reason.

Delivery from the estate broker is at least once: a message stored just before the agent died, whose
PUBACK never left, comes again on the persistent session. A message carrying its own time that repeats
the meter's last stored total and time (persisted with it, so this holds across a SIGKILL) is such a
redelivery and is not stored twice. A message older than the last stored one (an earlier redelivery, or
a platform delivering late) is stored as the valid reading it is, but it neither raises a rollover or
replacement flag nor replaces the last total: only a newer total can show that the register fell.
The hub keys readings by (unit, meter, time), so a late copy of a reading it has is dropped there.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from anju.edge_agent.counters import CounterTracker, LastTotal
from anju.edge_agent.errors import OutboxError, PayloadError
from anju.edge_agent.meter_payloads import PayloadMap, decode_payload
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.records import ReadingRecord, RecordKind, reading_record
from anju.edge_agent.site import MeterConfig
from anju_mqtt import MqttLink, wait_or_stop
from anju_wire import Clock
from anju_wire.payloads import DeviceAvailability

log = logging.getLogger(__name__)
# The estate broker is local and serves one agent, so no fleet of clients needs spreading out; and a
# broker restarted without its saved state acknowledges and discards what meters publish until we have
# subscribed again, so every second of backoff after it returns is a second of readings lost.
ESTATE_BACKOFF_CAP_S = 2.0


@dataclass(slots=True)
class ReportingMeter:
    """What the agent knows about one self-reporting meter."""

    config: MeterConfig
    payload_map: PayloadMap
    interval_s: float  # wall seconds of one expected reporting interval
    last_heard: float  # monotonic; the start counts as heard, so a meter gets its full grace period
    next_gap_reading: float = 0.0
    available: bool | None = None
    since: datetime | None = None
    messages: int = 0
    silent_intervals: int = 0
    rollovers: int = 0
    replacements: int = 0

    @property
    def silence_s(self) -> float:
        """Wall seconds without a message after which the meter counts as unavailable."""
        return self.interval_s * self.config.silence_intervals


@dataclass(slots=True)
class MqttMeterStats:
    """Counters of the MQTT meter source."""

    messages: int = 0
    rejected: int = 0
    foreign: int = 0  # messages for a platform device that no meter of this site is
    refused_full: int = 0
    redelivered: int = 0  # repeats of the last stored message, not stored again
    late: int = 0  # older than the meter's last stored reading: stored, not compared


class MqttMeterSource:
    """Subscribes to the self-reporting meters' topics on the estate broker and feeds the outbox."""

    def __init__(
        self, *, url: str, agent_id: str, meters: list[MeterConfig], clock: Clock, outbox: Outbox
    ) -> None:
        if not meters or any(m.transport != "mqtt" for m in meters):
            raise ValueError("an MQTT meter source needs meters, all with transport: mqtt")
        self._clock = clock
        self._outbox = outbox
        self._lock = threading.Lock()  # paho's thread stores messages, the event loop's notes silence
        self.stats = MqttMeterStats()
        now = time.monotonic()
        self.meters = [
            ReportingMeter(
                config=m,
                payload_map=m.load_payload_map(),
                interval_s=clock.wall_seconds(m.poll_interval_s),
                last_heard=now,
            )
            for m in meters
        ]
        self._by_topic: dict[str, list[ReportingMeter]] = defaultdict(list)
        for s in self.meters:
            assert s.config.topic is not None
            self._by_topic[s.config.topic].append(s)
        self._counters = CounterTracker(outbox.last_totals())
        self.link = MqttLink(
            url=url,
            client_id=f"{agent_id}-meters",
            name=f"{agent_id} mqtt meters",
            on_connect=self._subscribe,
            on_message=self.handle,
            backoff_cap_s=ESTATE_BACKOFF_CAP_S,
        )

    def availability(self) -> list[DeviceAvailability]:
        """Each meter's availability as last seen (meters neither heard nor yet overdue are left out)."""
        with self._lock:
            return [
                DeviceAvailability(device=s.config.device, available=s.available, since=s.since)
                for s in self.meters
                if s.available is not None
            ]

    async def run(self, stop: asyncio.Event) -> None:
        """Receive meter messages and watch for silence until ``stop`` is set."""
        watch = asyncio.create_task(self._watch_silence(stop), name="mqtt meters silence")
        try:
            await self.link.run(stop)
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    async def _watch_silence(self, stop: asyncio.Event) -> None:
        tick = max(0.05, min(1.0, min(s.interval_s for s in self.meters) / 4))
        while not await wait_or_stop(stop, tick):
            await asyncio.to_thread(self.check_silence)

    def _subscribe(self) -> None:
        for topic in self._by_topic:
            self.link.client.subscribe(topic, qos=1)

    def _match(self, topic: str, raw: bytes) -> tuple[ReportingMeter, float, datetime | None] | None:
        candidates = self._by_topic.get(topic, [])
        if not candidates:
            return None
        # meters sharing a topic are one platform's devices: one layout, told apart by device id
        reading = decode_payload(candidates[0].payload_map, raw)
        for s in candidates:
            if s.config.payload_device is None or s.config.payload_device == reading.device:
                return s, reading.total, reading.ts
        return None

    def handle(self, topic: str, raw: bytes) -> None:
        """Store one meter message as a reading, or raw in ``rejected`` with the reason."""
        self.stats.messages += 1
        try:
            matched = self._match(topic, raw)
        except PayloadError as err:
            self.stats.rejected += 1
            log.warning("rejected meter message on %s: %s", topic, err)
            try:
                self._outbox.reject(source=f"meter:{topic}", payload=raw, reason=str(err))
            except OutboxError as store_err:
                log.error("rejected meter message on %s not kept: %s", topic, store_err)
            return
        if matched is None:
            self.stats.foreign += 1
            log.debug("message on %s is for no meter of this site", topic)
            return
        state, total, ts = matched
        with self._lock:
            cfg = state.config
            last = self._counters.last(cfg.unit_id, cfg.meter.value)
            last_ts = datetime.fromisoformat(last.ts) if last is not None and ts is not None else None
            if last is not None and last_ts is not None and ts == last_ts and total == last.total:
                self.stats.redelivered += 1
                state.last_heard = time.monotonic()
                log.debug("%s: message of %s delivered again; stored once", cfg.device, ts)
                return
            newest = last_ts is None or ts is None or ts >= last_ts
            event = None
            if newest:
                event = self._counters.event(
                    unit_id=cfg.unit_id, meter=cfg.meter.value, value=total,
                    maximum=state.payload_map.rollover_at,
                )  # fmt: skip
            else:
                self.stats.late += 1
            record = reading_record(
                unit_id=cfg.unit_id, meter=cfg.meter, device=cfg.device, ts=ts or self._clock.now(),
                value=total, event=event,
            )  # fmt: skip
            if not self._store(record, newest=newest):
                return
            state.messages += 1
            state.last_heard = time.monotonic()
            if event == "rollover":
                state.rollovers += 1
            elif event == "replaced":
                state.replacements += 1
            if event is not None:
                log.warning("%s: total fell to %s: flagged %s", cfg.device, total, event)
            if state.available is not True:
                if state.available is False:
                    log.info("%s is reporting again", cfg.device)
                state.available = True
                state.since = record.ts

    def check_silence(self) -> None:
        """Mark meters silent for too long unavailable, with one ``unavailable`` reading per interval."""
        now = time.monotonic()
        with self._lock:
            for s in self.meters:
                if now - s.last_heard < s.silence_s:
                    continue
                if s.available is not False:
                    log.warning(
                        "%s is unavailable: no message for %.0f s", s.config.device, now - s.last_heard
                    )
                    s.available = False
                    s.since = self._clock.now()
                    s.next_gap_reading = now
                if now < s.next_gap_reading:
                    continue
                cfg = s.config
                gap = reading_record(
                    unit_id=cfg.unit_id, meter=cfg.meter, device=cfg.device, ts=self._clock.now(), value=None
                )
                if self._store(gap):
                    s.silent_intervals += 1
                s.next_gap_reading = now + s.interval_s

    def _store(self, record: ReadingRecord, *, newest: bool = True) -> bool:
        totals = []
        if record.value is not None and newest:
            totals.append(
                LastTotal(
                    unit_id=record.unit_id,
                    meter=record.meter.value,
                    device=record.device,
                    total=record.value,
                    ts=record.ts.isoformat(),
                )
            )
        try:
            self._outbox.put_many(RecordKind.READING, [record.to_json()], totals=totals)
        except OutboxError as err:
            self.stats.refused_full += 1
            log.error("%s: reading not stored: %s", record.device, err)
            return False
        self._counters.remember(totals)
        return True
