"""Self-reporting MQTT meters: pure payload decoding; a running agent stores, flags and notices silence."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from anju.edge_agent.agent import run_agent
from anju.edge_agent.errors import PayloadError, SiteConfigError
from anju.edge_agent.meter_payloads import available_payload_maps, decode_payload, load_payload_map
from anju.edge_agent.mqtt_meters import MqttMeterSource
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.site import MeterConfig, parse_site
from anju_mqtt import parse_broker_url, stop_loop
from anju_wire import WallClock
from tests.edge_agent.helpers import SECRET_ENV, scrape_metrics, site_dict, unique_ids, wait_until
from tests.services import free_port

TASMOTA = {
    "Time": "2026-03-01T07:42:13",
    "ENERGY": {"TotalStartTime": "2025-11-02T10:00:00", "Total": 1532.512, "Today": 1.2, "Power": 230},
}
CTWING = {
    "messageType": "dataReport", "deviceId": "a1b2c3", "productId": "15012345", "timestamp": 1772322133000,
    "payload": {"serviceId": "WaterMeterData", "serviceData": {"totalFlow": 87250, "batteryVoltage": 3.6}},
}  # fmt: skip


def test_shipped_payload_maps_decode_their_documented_examples() -> None:
    assert available_payload_maps() == ["nbiot_water_ctwing", "tasmota_energy"]
    t = decode_payload(load_payload_map("tasmota_energy"), json.dumps(TASMOTA).encode())
    assert (t.total, t.ts and t.ts.isoformat(), t.device) == (1532.512, "2026-03-01T07:42:13+08:00", None)
    w = decode_payload(load_payload_map("nbiot_water_ctwing"), json.dumps(CTWING).encode())
    assert (w.total, w.ts and w.ts.isoformat(), w.device) == (87.25, "2026-02-28T23:42:13+00:00", "a1b2c3")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (json.dumps({"Time": "2026-03-01T07:42:13", "ENERGY": {}}).encode(), "missing field ENERGY.Total"),
        (json.dumps({**TASMOTA, "ENERGY": {"Total": -1}}).encode(), "not a cumulative total"),
        (json.dumps({**TASMOTA, "ENERGY": {"Total": "NaN"}}).encode(), "not finite"),
        (json.dumps({**TASMOTA, "Time": "yesterday"}).encode(), "Time is not an ISO 8601 time"),
    ],
)
def test_malformed_messages_say_what_is_wrong(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_payload(load_payload_map("tasmota_energy"), raw)


@given(st.one_of(st.binary(max_size=100), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
        st.sampled_from(["deviceId", "timestamp", "payload", "serviceData", "totalFlow"]), kids, max_size=4),
    max_leaves=12).map(lambda d: json.dumps(d).encode())))  # fmt: skip
def test_any_message_decodes_or_raises_payload_error(raw: bytes) -> None:
    try:
        r = decode_payload(load_payload_map("nbiot_water_ctwing"), raw)
    except PayloadError:
        return
    assert r.total >= 0 and r.ts is not None and r.device


def test_mqtt_meter_site_fields_are_checked() -> None:
    base = site_dict(
        estate="E01", agent="E01-gw1", mqtt_url="mqtt://127.0.0.1:1", outbox_path="/tmp/x.sqlite"
    )
    meter: dict[str, Any] = {"unit_id": "U1", "meter": "water", "transport": "mqtt", "topic": "nb/water"}
    cases = [
        (meter, "needs topic and payload_map"),
        ({**meter, "payload_map": "tasmota_energy"}, "payload map 'tasmota_energy' is for electricity"),
        ({**meter, "payload_map": "nope"}, "unknown payload map 'nope'"),
        ({**meter, "payload_map": "nbiot_water_ctwing", "topic": "nb/+"}, "concrete"),
        ({**meter, "payload_map": "nbiot_water_ctwing", "register_map": "tuf_2000m"}, "for Modbus meters"),
        ({"unit_id": "U1", "meter": "water", "host": "h", "register_map": "tuf_2000m", "topic": "t"},
         "for transport: mqtt"),
    ]  # fmt: skip
    for doc, reason in cases:
        with pytest.raises(SiteConfigError, match=reason):
            parse_site({**base, "meters": [doc]}, environ={SECRET_ENV: "k"})


def test_agent_stores_mqtt_readings_flags_replacement_and_notices_silence(
    mqtt_url: str, tmp_path: Path
) -> None:
    estate, agent = unique_ids()
    plug_topic, nb_topic = f"tele/{estate}-plug/SENSOR", f"nbiot/{estate}/water"
    metrics_port = free_port()
    meters = [
        {"unit_id": "U-0101", "meter": "electricity", "transport": "mqtt", "topic": plug_topic,
         "payload_map": "tasmota_energy", "poll_interval_s": 3600, "silence_intervals": 2},
        {"unit_id": "U-0101", "meter": "water", "transport": "mqtt", "topic": nb_topic,
         "payload_map": "nbiot_water_ctwing", "payload_device": "a1b2c3", "poll_interval_s": 3600},
        {"unit_id": "U-0102", "meter": "water", "transport": "mqtt", "topic": nb_topic,
         "payload_map": "nbiot_water_ctwing", "payload_device": "ffff01", "poll_interval_s": 3600},
    ]  # fmt: skip
    doc = site_dict(
        estate=estate,
        agent=agent,
        mqtt_url=mqtt_url,
        outbox_path=str(tmp_path / "o.sqlite"),
        meters=meters,
        metrics={"host": "127.0.0.1", "port": metrics_port},
        clock={"origin_wall": time.time(), "origin_sim": "2026-03-01T00:00:00+08:00", "speed": 7200},
    )  # fmt: skip  (one expected interval = 0.5 s wall; silent after 1 s)
    config = parse_site(doc, environ={SECRET_ENV: "k"})
    plug = f"mqtt://{plug_topic}"

    def publish_and_check() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        addr = parse_broker_url(mqtt_url)
        dev = paho.Client(CallbackAPIVersion.VERSION2)
        dev.connect(addr.host, addr.port)
        dev.loop_start()
        try:
            wait_until(lambda: _up(metrics_port), 10, "metrics")
            time.sleep(0.3)  # the agent's subscription settles
            msgs = [
                (plug_topic, TASMOTA),
                (plug_topic, {**TASMOTA, "Time": "2026-03-01T08:42:13", "ENERGY": {"Total": 1533.0}}),
                (
                    plug_topic,
                    {**TASMOTA, "Time": "2026-03-01T09:42:13", "ENERGY": {"Total": 0.4}},
                ),  # new plug
                (plug_topic, {"Time": "2026-03-01T10:42:13"}),  # malformed
                (nb_topic, CTWING),
                (nb_topic, {**CTWING, "deviceId": "not-ours"}),
            ]
            for topic, body in msgs:
                dev.publish(topic, json.dumps(body).encode(), qos=1).wait_for_publish(5)
            # the plug now falls silent: after 2 intervals (1 s) it is unavailable
            gone = ("anju_edge_device_available", (("device", plug),))
            wait_until(lambda: scrape_metrics(metrics_port).get(gone) == 0.0, 10, "plug unavailable")
            return scrape_metrics(metrics_port)
        finally:
            dev.disconnect()
            stop_loop(dev)

    async def scenario() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        stop = asyncio.Event()
        task = asyncio.create_task(run_agent(config, stop=stop))
        try:
            return await asyncio.to_thread(publish_and_check)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    scraped = asyncio.run(scenario())
    assert scraped[("anju_edge_counter_events_total", (("device", plug), ("event", "replaced")))] == 1
    assert scraped[("anju_edge_meter_messages_total", (("device", plug),))] == 3
    assert scraped[("anju_edge_meter_messages_rejected_total", ())] == 1
    assert scraped[("anju_edge_meter_silent_intervals_total", (("device", plug),))] >= 1
    with Outbox(tmp_path / "o.sqlite", capacity=1000) as ob:
        readings = [json.loads(r.payload) for r in ob.next_batch("reading", 1000, 1e12)]
        ((source, _, reason),) = ob.rejected()
    ok = [(r["unit_id"], r["meter"], r["value"], r.get("event")) for r in readings if r["quality"] == "ok"]
    assert ok == [
        ("U-0101", "electricity", 1532.512, None),
        ("U-0101", "electricity", 1533.0, None),
        ("U-0101", "electricity", 0.4, "replaced"),
        ("U-0101", "water", 87.25, None),
    ]
    assert readings[0]["ts"] == "2026-03-01T07:42:13+08:00"
    gaps = {(r["unit_id"], r["meter"]) for r in readings if r["quality"] == "unavailable"}
    assert ("U-0101", "electricity") in gaps
    assert (source, reason) == (f"meter:{plug_topic}", "missing field ENERGY.Total")


def _up(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def _plug_source(outbox: Outbox, topic: str) -> MqttMeterSource:
    meter = MeterConfig.model_validate(
        {"unit_id": "U-0101", "meter": "electricity", "transport": "mqtt", "topic": topic,
         "payload_map": "tasmota_energy", "poll_interval_s": 3600}
    )  # fmt: skip
    return MqttMeterSource(
        url="mqtt://127.0.0.1:1", agent_id="E01-gw1", meters=[meter], clock=WallClock(), outbox=outbox
    )


def test_a_redelivered_message_is_stored_once_even_across_a_restart_and_a_late_one_flags_nothing(
    tmp_path: Path,
) -> None:
    topic = "tele/plug/SENSOR"

    def msg(time_: str, total: float) -> bytes:
        return json.dumps({"Time": time_, "ENERGY": {"Total": total}}).encode()

    seven, eight, nine = (
        msg("2026-03-01T07:00:00", 10.0),
        msg("2026-03-01T08:00:00", 10.5),
        msg("2026-03-01T09:00:00", 11.0),
    )
    with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:
        first = _plug_source(ob, topic)
        try:
            for raw in (seven, eight, eight):  # the broker delivers 08:00 again (our PUBACK was lost)
                first.handle(topic, raw)
        finally:
            stop_loop(first.link.client)
        # the agent was SIGKILLed after storing 08:00; the broker redelivers 07:00 and 08:00, then 09:00
        again = _plug_source(ob, topic)
        try:
            for raw in (seven, eight, nine):
                again.handle(topic, raw)
        finally:
            stop_loop(again.link.client)
        stored = [json.loads(r.payload) for r in ob.next_batch("reading", 100, 1e12)]
        last = ob.last_totals()[("U-0101", "electricity")]
    assert (first.stats.redelivered, again.stats.redelivered, again.stats.late) == (1, 1, 1)
    # 07:00 came late the second time: stored (the hub keeps one row per time), with no 'replaced' flag
    assert [(r["ts"][11:16], r["value"], r.get("event")) for r in stored] == [
        ("07:00", 10.0, None), ("08:00", 10.5, None), ("07:00", 10.0, None), ("09:00", 11.0, None),
    ]  # fmt: skip
    assert again.meters[0].replacements == 0 and again.meters[0].rollovers == 0
    assert (last.total, last.ts) == (11.0, "2026-03-01T09:00:00+08:00")
