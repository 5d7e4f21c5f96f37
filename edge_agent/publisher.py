"""Drains the outbox to the hub broker as QoS 1 batches; deletes records only when the hub's ack names them.

A PUBACK only says the broker has the message in memory, so it deletes nothing: the hub publishes an
``Ack`` (seq ranges) on the agent's ack topic once the rows are stored, and only then do records leave
the outbox. Records not acked within ``ack_timeout_s`` wall seconds are sent again; after a reconnect
everything unacked is sent again at once. The hub deduplicates by (agent, seq) and natural keys.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as paho

from anju.edge_agent import __version__
from anju.edge_agent.errors import OutboxError
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.records import RecordKind, build_batch
from anju.edge_agent.site import PublishSettings
from anju_mqtt import MqttLink, Will, wait_or_stop
from anju_wire import Ack, AgentStatus, Clock, ContractError, Topic, decode, encode
from anju_wire.payloads import DeviceAvailability

log = logging.getLogger(__name__)

_TOPIC_OF = {RecordKind.READING: Topic.readings, RecordKind.ACCESS: Topic.access}


@dataclass(slots=True)
class PublisherStats:
    """Counters of the publisher."""

    batches: int = 0
    records_sent: int = 0
    acks: int = 0
    acked_records: int = 0
    bad_acks: int = 0
    discarded: int = 0


class Publisher:
    """Publishes status and outbox batches to the hub broker and applies the hub's acks."""

    def __init__(
        self,
        *,
        url: str,
        agent_id: str,
        estate_id: str,
        outbox: Outbox,
        clock: Clock,
        settings: PublishSettings,
        devices: Callable[[], list[DeviceAvailability]] = list,
        census: Callable[[], dict[str, int] | None] = lambda: None,
        flush_interval_s: float = 0.1,
    ) -> None:
        self.agent_id = agent_id
        self.estate_id = estate_id
        self._outbox = outbox
        self._clock = clock
        self._settings = settings
        self._devices = devices
        self._census = census  # the face census (faces.census.FaceCensus) or None: not reported
        self._flush = flush_interval_s
        self._status_topic = str(Topic.status(estate_id, agent_id))
        self._ack_topic = str(Topic.ack(estate_id, agent_id))
        self._inflight: list[paho.MQTTMessageInfo] = []  # touched only by the drain task
        self._resend_all = threading.Event()
        self.stats = PublisherStats()
        offline = AgentStatus(agent_id=agent_id, estate_id=estate_id, state="offline")
        self.link = MqttLink(
            url=url,
            client_id=agent_id,
            name=f"{agent_id} uplink",
            will=Will(self._status_topic, encode(offline)),
            on_connect=self._connected,
            on_message=self._message,
        )

    def status(self, state: str = "online") -> AgentStatus:
        """The agent's status as it stands now."""
        return AgentStatus(
            agent_id=self.agent_id,
            estate_id=self.estate_id,
            ts=self._clock.now(),
            state="online" if state == "online" else "offline",
            software=f"anju-edge {__version__}",
            outbox_depth=self._outbox.depth(),
            outbox_capacity=self._outbox.capacity,
            outbox_full=self._outbox.is_full(),
            devices=self._devices(),
            faces_enrolled=self._census(),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the uplink, drain the outbox and publish status until ``stop`` is set."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.link.run(stop, before_disconnect=self._goodbye), name="uplink")
            tg.create_task(self._drain(stop), name="drain")
            tg.create_task(self._status_loop(stop), name="status")

    def _goodbye(self) -> None:
        info = self.link.publish(self._status_topic, encode(self.status("offline")), qos=1, retain=True)
        info.wait_for_publish(timeout=2.0)

    # paho network thread
    def _connected(self) -> None:
        self.link.client.subscribe(self._ack_topic, qos=1)
        self.link.publish(self._status_topic, encode(self.status()), qos=1, retain=True)
        self._resend_all.set()

    def _message(self, topic: str, raw: bytes) -> None:
        if topic != self._ack_topic:
            return
        try:
            ack = decode(Ack, raw)
        except ContractError as err:
            self.stats.bad_acks += 1
            log.warning("ignoring malformed ack: %s", err)
            return
        if ack.agent_id != self.agent_id or ack.estate_id != self.estate_id:
            self.stats.bad_acks += 1
            log.warning("ignoring ack addressed to %s/%s", ack.estate_id, ack.agent_id)
            return
        try:
            deleted = self._outbox.ack(ack.seqs())
        except OutboxError as err:
            log.error("cannot apply ack: %s", err)
            return
        self.stats.acks += 1
        self.stats.acked_records += deleted

    # asyncio side
    async def _status_loop(self, stop: asyncio.Event) -> None:
        while not await wait_or_stop(stop, self._settings.status_interval_s):
            if self.link.connected:
                status = await asyncio.to_thread(self.status)  # the census may reread the gallery file
                self.link.publish(self._status_topic, encode(status), qos=1, retain=True)

    async def _drain(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            sent = 0
            if self.link.connected:
                if self._resend_all.is_set():
                    self._resend_all.clear()
                    self._inflight.clear()
                    await asyncio.to_thread(self._outbox.mark_unsent)
                for kind in RecordKind:
                    sent += await self._send_one(kind)
            if not sent:
                await wait_or_stop(stop, self._flush)

    async def _send_one(self, kind: RecordKind) -> int:
        # PUBACK bookkeeping without a paho callback: paho holds its own lock while calling on_publish
        self._inflight = [i for i in self._inflight if not i.is_published()]
        if len(self._inflight) >= self._settings.max_inflight:
            return 0
        cutoff = time.time() - self._settings.ack_timeout_s
        records = await asyncio.to_thread(self._outbox.next_batch, kind, self._settings.batch_max, cutoff)
        if not records:
            return 0
        batch, bad = build_batch(
            kind, agent_id=self.agent_id, estate_id=self.estate_id, sent_at=self._clock.now(), records=records
        )
        for b in bad:
            log.error("discarding outbox record %d: %s", b.seq, b.reason)
            await asyncio.to_thread(self._outbox.discard, [b.seq], reason=b.reason)
            self.stats.discarded += 1
        if batch is None:
            return len(bad)
        good = [r.seq for r in records if r.seq not in {b.seq for b in bad}]
        info = self.link.publish(str(_TOPIC_OF[kind](self.estate_id)), encode(batch), qos=1)
        if info.rc == 0:
            self._inflight.append(info)
        await asyncio.to_thread(self._outbox.mark_sent, good)
        self.stats.batches += 1
        self.stats.records_sent += len(good)
        return len(good)
