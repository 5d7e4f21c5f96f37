"""The face-gate source against a real Mosquitto, on a fast simulated clock."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from anju.device_sims.gates import GateSourceError, run_gate_source
from anju.device_sims.household import EstateModel
from anju_mqtt import parse_broker_url, stop_loop
from anju_wire import AcceleratedClock
from tests.device_sims.factories import START, private_estate_id, small_estate


@contextmanager
def subscriber(mqtt_url: str, estate_id: str) -> Iterator[list[mqtt.MQTTMessage]]:
    """Collect every gate event of one estate's gates while the block runs."""
    addr = parse_broker_url(mqtt_url)
    received: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, *_: c.subscribe("gates/+/events", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.startswith(f"gates/{estate_id}-"):
            received.append(msg)

    client.on_message = on_message
    client.connect(addr.host, addr.port)
    client.loop_start()
    try:
        assert subscribed.wait(5), "subscription not confirmed"
        yield received
    finally:
        client.disconnect()
        stop_loop(client)


def test_events_arrive_as_vendor_json_when_the_clock_passes_them(mqtt_url: str) -> None:
    model = EstateModel(small_estate(days=2, estate_id=private_estate_id()))
    events = model.gate_events()
    speed = 2 * 86400 / 1.5  # two simulated days in 1.5 s
    clock = AcceleratedClock(origin_wall=time.time() + 0.3, origin_sim=START, speed=speed)
    with subscriber(mqtt_url, model.spec.estate_id) as received:
        began = time.time()
        published = asyncio.run(run_gate_source(model, clock, mqtt_url=mqtt_url))
        took = time.time() - began
        deadline = time.time() + 5
        while len(received) < len(events) and time.time() < deadline:
            time.sleep(0.02)
    assert published == len(events)
    assert 1.3 < took < 5, "events follow the simulated clock, not all at once"
    assert [m.payload for m in received] == [e.to_vendor_json() for e in events]
    assert [m.topic for m in received] == [f"gates/{e.device_id}/events" for e in events]
    assert all(m.qos == 1 for m in received)
    doc = json.loads(received[0].payload)
    assert doc["deviceID"] == events[0].device_id and doc["eventType"] == "AccessControllerEvent"


def test_stop_ends_the_source_promptly_and_past_events_are_skipped(mqtt_url: str) -> None:
    model = EstateModel(small_estate(days=30, estate_id=private_estate_id()))
    # Start 10 days in at one simulated hour per wall second: nothing before day 10 is sent.
    clock = AcceleratedClock(origin_wall=time.time(), origin_sim=START + timedelta(days=10), speed=3600)

    async def scenario() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(run_gate_source(model, clock, mqtt_url=mqtt_url, stop=stop))
        await asyncio.sleep(1.0)
        stop.set()
        async with asyncio.timeout(3):
            return await task

    with subscriber(mqtt_url, model.spec.estate_id) as received:
        published = asyncio.run(scenario())
        time.sleep(0.2)
    assert published == len(received)
    assert all(json.loads(m.payload)["dateTime"] >= "2026-03-11" for m in received)
    assert published < 20


def test_unreachable_broker_is_an_error() -> None:
    from anju.services import free_port

    model = EstateModel(small_estate(days=2))
    clock = AcceleratedClock(origin_wall=time.time(), origin_sim=START, speed=1.0)

    async def scenario() -> None:
        await run_gate_source(model, clock, mqtt_url=f"mqtt://127.0.0.1:{free_port()}", connect_timeout_s=0.5)

    with pytest.raises(GateSourceError):
        asyncio.run(scenario())
