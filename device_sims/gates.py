"""Face-gate event source: publishes the household model's gate passages, as the vendor's JSON, on time.

Each event goes to ``gates/{deviceID}/events`` on the estate broker with QoS 1 as soon as the shared
clock passes its timestamp. paho runs its network loop in its own thread; its callbacks reach asyncio
only through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from bisect import bisect_left

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from anju.device_sims.household import EstateModel, GateEvent
from anju_mqtt import BrokerAddress, close_client, make_client, parse_broker_url, wait_or_stop
from anju_wire import Clock

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 10.0
MIN_WAIT_S = 0.002  # at high clock speeds, publish whatever came due in small batches, not per event


class GateSourceError(RuntimeError):
    """The gate source could not reach its broker."""


def gate_topic(device_id: str) -> str:
    """The estate-broker topic a gate publishes its events on."""
    return f"gates/{device_id}/events"


class _Publisher:
    """A paho client whose connection and acknowledgements are awaitable from asyncio."""

    def __init__(self, address: BrokerAddress, client_id: str) -> None:
        self._address = address
        self._loop = asyncio.get_running_loop()
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self._pending: set[int] = set()
        self._drained = asyncio.Event()
        self._drained.set()
        client = make_client(address, client_id=client_id, reconnect=(1, 30))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, reason: ReasonCode,
        properties: object,
    ) -> None:
        self._loop.call_soon_threadsafe(self._set_connected, None if not reason.is_failure else str(reason))

    def _set_connected(self, failure: str | None) -> None:
        if self._connected.done():
            if failure is None:
                log.info("gate source reconnected to %s:%d", self._address.host, self._address.port)
            return
        if failure is None:
            self._connected.set_result(None)
        else:
            self._connected.set_exception(GateSourceError(f"broker refused the connection: {failure}"))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags, reason: ReasonCode,
        properties: object,
    ) -> None:
        if reason.is_failure:
            log.warning("gate source lost the broker (%s); paho reconnects", reason)

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, reason: ReasonCode, properties: object
    ) -> None:
        self._loop.call_soon_threadsafe(self._acked, mid)

    def _acked(self, mid: int) -> None:
        self._pending.discard(mid)
        if not self._pending:
            self._drained.set()

    async def connect(self, timeout: float) -> None:
        """Connect (paho's thread keeps the connection) and wait until the broker accepted us."""
        self._client.connect_async(self._address.host, self._address.port, keepalive=30)
        self._client.loop_start()
        try:
            async with asyncio.timeout(timeout):
                await self._connected
        except TimeoutError as err:
            self.close()
            raise GateSourceError(
                f"no connection to {self._address.host}:{self._address.port} in {timeout:.1f} s"
            ) from err
        except GateSourceError:
            self.close()
            raise

    def publish(self, topic: str, payload: bytes) -> None:
        """Queue one QoS 1 message; paho keeps it and resends after a reconnect."""
        info = self._client.publish(topic, payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise GateSourceError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        # on_publish reaches the loop only after this method returns, so the mid is pending first.
        self._pending.add(info.mid)
        self._drained.clear()

    async def drain(self, timeout: float) -> bool:
        """Wait until the broker acknowledged everything published; False if time ran out."""
        try:
            async with asyncio.timeout(timeout):
                await self._drained.wait()
        except TimeoutError:
            log.warning("gate source: %d events not acknowledged by the broker", len(self._pending))
            return False
        return True

    def close(self) -> None:
        """Disconnect and join paho's network thread."""
        close_client(self._client)


async def run_gate_source(
    model: EstateModel,
    clock: Clock,
    *,
    mqtt_url: str,
    stop: asyncio.Event | None = None,
    catch_up: bool = False,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> int:
    """Publish every gate event when the clock passes its time; return how many were published.

    Events already in the past at start are skipped (the gate sent them before we were here) unless
    ``catch_up``. Returns when all events are out and acknowledged, or soon after ``stop`` is set.
    """
    stop = stop or asyncio.Event()
    events: list[GateEvent] = model.gate_events()
    times = [e.ts for e in events]
    index = 0 if catch_up else bisect_left(times, clock.now())
    client_id = f"anju-gates-{model.spec.estate_id}-{uuid.uuid4().hex[:8]}"
    publisher = _Publisher(parse_broker_url(mqtt_url), client_id)
    await publisher.connect(connect_timeout_s)
    published = 0
    try:
        while index < len(events) and not stop.is_set():
            now = clock.now()
            while index < len(events) and events[index].ts <= now:
                event = events[index]
                publisher.publish(gate_topic(event.device_id), event.to_vendor_json())
                index += 1
                published += 1
            if index < len(events):
                delay = clock.wall_seconds((events[index].ts - now).total_seconds())
                await wait_or_stop(stop, max(delay, MIN_WAIT_S))
        await publisher.drain(DRAIN_TIMEOUT_S)
    finally:
        publisher.close()
    log.info("gate source of %s published %d events", model.spec.estate_id, published)
    return published
