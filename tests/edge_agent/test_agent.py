"""The whole agent against a real broker, a real Modbus server and a hub stand-in that acks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from anju.edge_agent.agent import main, run_agent
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.registers import encode_total, load_map
from anju.edge_agent.site import parse_site
from anju_mqtt import parse_broker_url, stop_loop
from anju_wire import AgentStatus, decode
from tests.edge_agent.helpers import SECRET_ENV, hub_stand_in, meter_server, site_dict, unique_ids, wait_until

GATE_EVENT = {
    "eventType": "AccessControllerEvent", "serialNo": 1, "dateTime": "2026-03-01T07:42:13+08:00",
    "deviceID": "G1", "building": "1", "floor": None, "verifyMode": "card",
    "employeeNo": "T-1", "roomNo": "U-0101", "strangerTrack": None,
}  # fmt: skip


def _meters(port: int) -> list[dict[str, object]]:
    return [
        {"unit_id": "U-0101", "meter": "electricity", "host": "127.0.0.1", "port": port, "device_id": 1,
         "register_map": "eastron_sdm120", "poll_interval_s": 3600, "timeout_s": 0.5},
        {"unit_id": "U-0101", "meter": "water", "host": "127.0.0.1", "port": port, "device_id": 2,
         "register_map": "tuf_2000m", "poll_interval_s": 3600, "timeout_s": 0.5},
    ]  # fmt: skip


def _clock() -> dict[str, object]:
    return {
        "origin_wall": time.time(),
        "origin_sim": "2026-03-01T00:00:00+08:00",
        "speed": 7200,
    }  # 0.5 s per hour


def _stored_seqs(path: Path) -> set[int]:
    with Outbox(path, capacity=1_000_000) as ob:
        return {r.seq for k in ("reading", "access") for r in ob.next_batch(k, 100_000, time.time() + 10)}


def test_records_leave_the_outbox_only_after_the_hub_acks_them(mqtt_url: str, tmp_path: Path) -> None:
    estate, agent = unique_ids()
    outbox_path = tmp_path / "outbox.sqlite"
    elec = dict(zip((342, 343), encode_total(load_map("eastron_sdm120"), 1532.5), strict=True))
    water = dict(zip(range(8, 12), encode_total(load_map("tuf_2000m"), 87.25), strict=True))
    gate_topic = f"gates/{estate}-G1/events"

    async def scenario() -> None:
        async with meter_server({1: elec, 2: water}) as port:
            doc = site_dict(
                estate=estate, agent=agent, mqtt_url=mqtt_url, outbox_path=str(outbox_path),
                meters=_meters(port), clock=_clock(),
                gates=[{"device_id": f"{estate}-G1", "building": "1", "topic": gate_topic}],
            )  # fmt: skip
            config = parse_site(doc, environ={SECRET_ENV: "k"})
            stop = asyncio.Event()
            task = asyncio.create_task(run_agent(config, stop=stop))
            try:
                await asyncio.to_thread(phase_checks)
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)

    def phase_checks() -> None:
        # 1. the hub receives batches but does not ack: nothing is deleted, records are sent again
        hub.acking = False
        wait_until(lambda: len(hub.readings) >= 2, 10, "reading batches")
        gate = paho.Client(CallbackAPIVersion.VERSION2)
        addr = parse_broker_url(mqtt_url)
        gate.connect(addr.host, addr.port)
        gate.loop_start()
        try:
            gate.publish(gate_topic, json.dumps(GATE_EVENT).encode(), qos=1).wait_for_publish(5)
        finally:
            gate.disconnect()
            stop_loop(gate)
        wait_until(lambda: len(hub.access) >= 1, 10, "an access batch")
        first_seen = set(hub.seqs_seen())
        wait_until(lambda: len(hub.seqs_seen()) > len(set(hub.seqs_seen())), 10, "a re-send")
        assert first_seen <= _stored_seqs(outbox_path)  # unacked records are all still there
        # 2. the hub acks: everything sent so far leaves the outbox
        hub.acking = True
        wait_until(lambda: not (first_seen & _stored_seqs(outbox_path)), 10, "acked records deleted")
        status = [decode(AgentStatus, s) for s in hub.status]
        assert any(s.state == "online" and s.devices and s.outbox_capacity == 1000 for s in status)

    with hub_stand_in(mqtt_url, estate=estate, agent=agent) as hub:
        asyncio.run(scenario())
        wait_until(lambda: decode(AgentStatus, hub.status[-1]).state == "offline", 5, "offline status")
        elec_values = {r.value for b in hub.readings for r in b.readings if r.meter == "electricity"}
        water_values = {r.value for b in hub.readings for r in b.readings if r.meter == "water"}
        assert elec_values == {1532.5}
        assert len(water_values) == 1 and water_values.pop() == pytest.approx(87.25)
        events = [e for b in hub.access for e in b.events]
        assert events[0].unit_id == "U-0101" and events[0].person and events[0].person.startswith("p-")
        assert all(b.agent_id == agent and b.estate_id == estate for b in hub.readings + hub.access)


def test_main_rejects_a_bad_site_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("agent_id: x\n")
    assert main(["--config", str(path)]) == 2
    assert "bad site file" in capsys.readouterr().err


def test_main_stops_cleanly_on_sigterm(mqtt_url: str, tmp_path: Path) -> None:
    estate, agent = unique_ids()
    path = tmp_path / "site.yaml"
    path.write_text(
        yaml.safe_dump(site_dict(estate=estate, agent=agent, mqtt_url=mqtt_url, outbox_path="o.sqlite"))
    )
    env = {**os.environ, SECRET_ENV: "k"}
    code = "import sys; from anju.edge_agent.agent import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "--config", str(path)]
    with (
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc,
        hub_stand_in(mqtt_url, estate=estate, agent=agent) as hub,
    ):
        wait_until(lambda: bool(hub.status), 10, "online status")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    assert (tmp_path / "o.sqlite").exists()
