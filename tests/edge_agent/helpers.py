"""Plain factories and small real servers for the edge agent tests."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from anju_mqtt import parse_broker_url, stop_loop
from anju_wire import AccessBatch, Ack, ReadingsBatch, Topic, decode, encode
from anju_wire.payloads import ranges_of
from tests.services import free_port

SECRET_ENV = "ANJU_TEST_PSEUDONYM_SECRET"


def scrape_metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The agent's /metrics as {(sample name, sorted labels): value}."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def unique_ids() -> tuple[str, str]:
    """A fresh estate id and agent id, so persistent MQTT sessions never collide between tests."""
    estate = "T" + uuid.uuid4().hex[:8]
    return estate, f"{estate}-gw1"


def site_dict(*, estate: str, agent: str, mqtt_url: str, outbox_path: str, **extra: Any) -> dict[str, Any]:
    """A valid site document; keyword arguments replace top-level keys."""
    doc: dict[str, Any] = {
        "agent_id": agent,
        "estate_id": estate,
        "mqtt_url": mqtt_url,
        "outbox": {"path": outbox_path, "capacity": 1000},
        "pseudonym_secret_env": SECRET_ENV,
        "publish": {"batch_max": 50, "ack_timeout_s": 0.5, "status_interval_s": 0.5},
        "meters": [],
        "gates": [],
    }
    doc.update(extra)
    return doc


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``cond`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class HubStandIn:
    """A tiny hub: records every batch it receives and, when ``acking``, acks every seq in it."""

    def __init__(self, url: str, *, estate: str, agent: str) -> None:
        self.estate = estate
        self.agent = agent
        self.acking = True
        self.readings: list[ReadingsBatch] = []
        self.access: list[AccessBatch] = []
        self.status: list[bytes] = []
        self.lock = threading.Lock()
        addr = parse_broker_url(url)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"hub-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.connect(addr.host, addr.port)
        for t in (Topic.readings(estate), Topic.access(estate), Topic.status(estate, agent)):
            self.client.subscribe(str(t), qos=1)
        self.client.loop_start()

    def seqs_seen(self) -> list[int]:
        """Every seq received so far, with repeats."""
        with self.lock:
            return [r.seq for b in self.readings for r in b.readings] + [
                e.seq for b in self.access for e in b.events
            ]

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        topic = Topic.parse(msg.topic)
        seqs: list[int]
        with self.lock:
            if topic == Topic.readings(self.estate):
                rb = decode(ReadingsBatch, bytes(msg.payload))
                self.readings.append(rb)
                seqs = [r.seq for r in rb.readings]
            elif topic == Topic.access(self.estate):
                ab = decode(AccessBatch, bytes(msg.payload))
                self.access.append(ab)
                seqs = [e.seq for e in ab.events]
            else:
                self.status.append(bytes(msg.payload))
                return
            acking = self.acking
        if acking:
            ack = Ack(
                agent_id=self.agent, estate_id=self.estate, ts=datetime.now(UTC), ranges=ranges_of(seqs)
            )
            client.publish(str(Topic.ack(self.estate, self.agent)), encode(ack), qos=1)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        stop_loop(self.client)


@contextmanager
def hub_stand_in(url: str, *, estate: str, agent: str) -> Iterator[HubStandIn]:
    """A HubStandIn for the duration of a block."""
    hub = HubStandIn(url, estate=estate, agent=agent)
    try:
        yield hub
    finally:
        hub.close()


@asynccontextmanager
async def meter_server(registers: dict[int, dict[int, int]], port: int | None = None) -> AsyncIterator[int]:
    """A real Modbus TCP server; ``registers[device_id][address]`` is read live. Yields the port."""

    devices = []
    for dev_id, words in registers.items():

        def fill(words: dict[int, int] = words) -> Any:
            async def _action(
                function_code: int, start_address: int, address: int, count: int,
                current_registers: list[int], set_values: list[int] | list[bool] | None,
            ) -> None:  # fmt: skip
                for i in range(len(current_registers)):
                    current_registers[i] = words.get(start_address + i, 0)

            return _action

        devices.append(
            SimDevice(
                id=dev_id,
                simdata=[SimData(0, count=1000, values=0, datatype=DataType.REGISTERS)],
                action=fill(),
            )
        )
    port = port or free_port()
    server = ModbusTcpServer(devices, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    try:
        yield port
    finally:
        await server.shutdown()
