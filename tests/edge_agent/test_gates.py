"""Gate adapter: vendor JSON to pseudonymised access records, malformed input kept and counted."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from anju.edge_agent.errors import GateEventError
from anju.edge_agent.gates import GateIntake, GateSubscriber, parse_gate_event
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.site import GateConfig
from anju_mqtt import parse_broker_url, stop_loop
from anju_wire import AccessEvent
from tests.edge_agent.helpers import unique_ids, wait_until

SECRET = b"estate-key"
TENANT = {
    "eventType": "AccessControllerEvent", "serialNo": 88213, "dateTime": "2026-03-01T07:42:13+08:00",
    "deviceID": "E01-G1", "building": "1", "floor": None, "verifyMode": "face",
    "employeeNo": "T-E01-1-0302-1", "roomNo": "E01-1-0302", "strangerTrack": None,
}  # fmt: skip
STRANGER = {
    **TENANT,
    "serialNo": 88215,
    "employeeNo": None,
    "roomNo": None,
    "strangerTrack": "E01-G1-t000412",
}


def test_tenant_becomes_keyed_pseudonym_and_never_leaves() -> None:
    rec = parse_gate_event(json.dumps(TENANT).encode(), estate_id="E01", secret=SECRET)
    expected = "p-" + hmac.new(SECRET, b"E01:T-E01-1-0302-1", hashlib.sha256).hexdigest()[:32]
    assert rec.person == expected
    assert (rec.event_id, rec.unit_id, rec.method, rec.stranger_track) == (
        "E01-G1:88213",
        "E01-1-0302",
        "face",
        None,
    )
    assert "T-E01" not in rec.to_json()
    wire = AccessEvent.model_validate({**json.loads(rec.to_json()), "seq": 7})
    assert wire.person == expected
    other_estate = parse_gate_event(json.dumps(TENANT).encode(), estate_id="E02", secret=SECRET)
    assert other_estate.person != expected


def test_stranger_keeps_only_track() -> None:
    rec = parse_gate_event(json.dumps(STRANGER).encode(), estate_id="E01", secret=SECRET)
    assert (rec.person, rec.unit_id, rec.stranger_track) == (None, None, "E01-G1-t000412")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"serialNo": "x"}, "serialNo"),
        ({"dateTime": "2026-03-01T07:42:13"}, "dateTime"),
        ({"verifyMode": "iris"}, "verifyMode"),
        ({"employeeNo": None, "strangerTrack": None}, "exactly one"),
        ({"strangerTrack": "t1"}, "exactly one"),
        ({"roomNo": None}, "unit_id"),
        ({"eventType": "Heartbeat"}, "eventType"),
    ],
)
def test_malformed_events_raise_clear_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(GateEventError, match=message):
        parse_gate_event(json.dumps({**TENANT, **change}).encode(), estate_id="E01", secret=SECRET)


@given(st.one_of(
    st.binary(max_size=200),
    st.dictionaries(st.sampled_from(list(TENANT)), st.one_of(st.none(), st.integers(), st.text(max_size=10)))
    .map(lambda d: json.dumps({**TENANT, **d}).encode()),
))  # fmt: skip
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_any_input_parses_or_raises_gate_event_error(raw: bytes) -> None:
    try:
        rec = parse_gate_event(raw, estate_id="E01", secret=SECRET)
    except GateEventError:
        return
    AccessEvent.model_validate({**json.loads(rec.to_json()), "seq": 1})


def test_subscriber_stores_events_and_keeps_rejects(mqtt_url: str, tmp_path: Path) -> None:
    estate, agent = unique_ids()
    topic = f"gates/{estate}-G1/events"
    with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:
        intake = GateIntake(estate_id=estate, secret=SECRET, outbox=ob)
        sub = GateSubscriber(
            url=mqtt_url, agent_id=agent, intake=intake,
            gates=[GateConfig(device_id=f"{estate}-G1", building="1", topic=topic)],
        )  # fmt: skip

        async def scenario() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(sub.run(stop))
            await asyncio.to_thread(wait_until, lambda: sub.link.connected, 10, "gate link")
            addr = parse_broker_url(mqtt_url)
            gate = paho.Client(CallbackAPIVersion.VERSION2)
            gate.connect(addr.host, addr.port)
            gate.loop_start()
            try:
                await asyncio.sleep(0.2)  # let the subscription settle
                for raw in (json.dumps(TENANT).encode(), b"{not json", json.dumps(STRANGER).encode()):
                    gate.publish(topic, raw, qos=1).wait_for_publish(5)
                done = lambda: intake.accepted + intake.rejected == 3  # noqa: E731
                await asyncio.to_thread(wait_until, done, 10, "3 events")
            finally:
                gate.disconnect()
                stop_loop(gate)
                stop.set()
                await task

        asyncio.run(scenario())
        assert (intake.accepted, intake.rejected) == (2, 1)
        assert ob.depth() == 2
        ((source, raw, reason),) = ob.rejected()
        assert (source, raw) == (f"gate:{topic}", b"{not json") and "malformed" in reason
