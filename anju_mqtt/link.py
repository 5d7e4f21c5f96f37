"""An MQTT client kept connected by an asyncio task with jittered, capped reconnect backoff.

paho runs its network loop in its own thread (``loop_start``); its callbacks reach asyncio only through
``loop.call_soon_threadsafe``. paho's own reconnect is switched off so that our backoff (with jitter, so a
fleet of gateways does not reconnect in lockstep after a broker restart) is the only one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from anju_mqtt.address import parse_broker_url
from anju_mqtt.backoff import backoff_delay
from anju_mqtt.client import Will, make_client, stop_loop

log = logging.getLogger(__name__)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; return True if ``stop`` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    return stop.is_set()


class MqttLink:
    """A persistent-session MQTT client whose connection an asyncio task keeps up."""

    def __init__(
        self,
        *,
        url: str,
        client_id: str,
        name: str,
        will: Will | None = None,
        keepalive: int = 30,
        on_connect: Callable[[], None] | None = None,
        on_message: Callable[[str, bytes], None] | None = None,
        on_publish: Callable[[int], None] | None = None,
        backoff_cap_s: float = 30.0,
    ) -> None:
        self.address = parse_broker_url(url)
        self.name = name
        self._keepalive = keepalive
        self._on_connect_cb = on_connect
        self._on_message_cb = on_message
        self._on_publish_cb = on_publish
        self._backoff_cap = backoff_cap_s
        self._connected = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lost: asyncio.Event | None = None
        self.connects = 0
        client = make_client(
            self.address, client_id=client_id, clean_session=False, will=will, reconnect=None
        )
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        self.client = client

    @property
    def connected(self) -> bool:
        """Whether the broker has accepted the current connection."""
        return self._connected.is_set()

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> paho.MQTTMessageInfo:
        """Queue a message with paho (thread-safe); the returned info carries its ``mid``."""
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    async def run(self, stop: asyncio.Event, *, before_disconnect: Callable[[], None] | None = None) -> None:
        """Connect, stay connected until ``stop`` is set, then disconnect cleanly."""
        self._loop = asyncio.get_running_loop()
        self._lost = asyncio.Event()
        attempt = 0
        try:
            while not stop.is_set():
                self._lost.clear()
                try:
                    await asyncio.to_thread(
                        self.client.connect, self.address.host, self.address.port, self._keepalive
                    )
                except (OSError, ssl.SSLError) as err:
                    delay = backoff_delay(attempt, cap=self._backoff_cap)
                    if attempt == 0:
                        log.warning(
                            "%s: cannot reach %s:%s (%s); retrying with backoff",
                            self.name,
                            self.address.host,
                            self.address.port,
                            err,
                        )
                    attempt += 1
                    await wait_or_stop(stop, delay)
                    continue
                connects_before = self.connects
                self.client.loop_start()
                lost = asyncio.create_task(self._lost.wait(), name=f"{self.name}-lost")
                halt = asyncio.create_task(stop.wait(), name=f"{self.name}-stop")
                try:
                    await asyncio.wait({lost, halt}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    lost.cancel()
                    halt.cancel()
                    await asyncio.gather(lost, halt, return_exceptions=True)
                if stop.is_set():
                    break
                await asyncio.to_thread(stop_loop, self.client)
                attempt = 0 if self.connects > connects_before else attempt + 1
                await wait_or_stop(stop, backoff_delay(attempt, cap=self._backoff_cap))
        finally:
            await asyncio.to_thread(self._shutdown, before_disconnect)

    def _shutdown(self, before_disconnect: Callable[[], None] | None) -> None:
        if self._connected.is_set() and before_disconnect is not None:
            before_disconnect()
        self._connected.clear()  # a disconnect we asked for is not a lost connection
        self.client.disconnect()
        stop_loop(self.client)

    # paho callbacks: network thread
    def _handle_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            log.warning("%s: broker refused connection: %s", self.name, reason)
            return
        self.connects += 1
        if self.connects == 1:
            log.info("%s: connected to %s:%s", self.name, self.address.host, self.address.port)
        else:
            log.info("%s: reconnected to %s:%s", self.name, self.address.host, self.address.port)
        self._connected.set()
        if self._on_connect_cb is not None:
            self._on_connect_cb()

    def _handle_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was:
            log.warning("%s: connection lost: %s", self.name, reason)
        if self._loop is not None and self._lost is not None:
            with contextlib.suppress(RuntimeError):  # the event loop is already closed at shutdown
                self._loop.call_soon_threadsafe(self._lost.set)

    def _handle_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if self._on_message_cb is not None:
            self._on_message_cb(msg.topic, bytes(msg.payload))

    def _handle_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        if self._on_publish_cb is not None:
            self._on_publish_cb(mid)
