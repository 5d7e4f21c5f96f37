"""The site file and unit registry of a simulated estate, and the estate simulation end to end."""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path

import yaml
from pymodbus.client import AsyncModbusTcpClient

from anju.device_sims.estate import run_estate_sim
from anju.device_sims.household import EstateModel
from anju.device_sims.site import site_config, units_registry
from anju.edge_agent.site import parse_site
from anju.services import free_port
from anju_wire import AcceleratedClock
from tests.device_sims.factories import START, private_estate_id, small_estate
from tests.device_sims.test_gates import subscriber


def _site(tmp_path: Path) -> dict[str, object]:
    spec = small_estate()
    clock = AcceleratedClock(origin_wall=1764300000.0, origin_sim=START, speed=43200)
    return site_config(spec, agent_id="E01-gw1", modbus_host="127.0.0.1", modbus_port=15020,
                       mqtt_url="mqtt://127.0.0.1:1883", outbox_path=str(tmp_path / "outbox.sqlite"),
                       clock=clock)


def test_site_config_lists_every_meter_and_gate(tmp_path: Path) -> None:
    spec = small_estate()
    site = _site(tmp_path)
    meters = site["meters"]
    assert isinstance(meters, list) and len(meters) == 3 * len(spec.units)
    first = meters[0]
    assert first == {"unit_id": spec.units[0].unit_id, "meter": "electricity", "host": "127.0.0.1",
                     "port": 15020, "device_id": 1, "register_map": "eastron_sdm120", "poll_interval_s": 3600}
    assert {m["device_id"] for m in meters} == {
        d for u in spec.units for d in (u.elec_device_id, u.water_device_id, u.gas_device_id)
    }
    assert site["gates"] == [
        {"device_id": "E01-G1", "building": "1", "source": "mqtt", "topic": "gates/E01-G1/events"},
        {"device_id": "E01-G2", "building": "2", "source": "mqtt", "topic": "gates/E01-G2/events"},
    ]
    assert site["clock"] == {"origin_wall": 1764300000.0, "origin_sim": "2026-03-01T00:00:00+08:00",
                             "speed": 43200}
    assert yaml.safe_load(yaml.safe_dump(site)) == site


def test_site_config_is_accepted_by_the_edge_agent(tmp_path: Path) -> None:
    config = parse_site(_site(tmp_path), environ={"ANJU_PSEUDONYM_SECRET": "x" * 32})
    assert len(config.meters) == 3 * len(small_estate().units)


def test_units_registry_rows() -> None:
    spec = small_estate()
    rows = units_registry(spec)
    assert [r["unit_id"] for r in rows] == [u.unit_id for u in spec.units]
    assert set(rows[0]) == {"unit_id", "estate_id", "building", "floor", "area_m2", "household_size",
                            "lease_start", "faces_enrolled"}
    assert all(r["faces_enrolled"] == r["household_size"] for r in rows)
    assert all(r["lease_start"] < START.date() for r in rows)


def test_estate_sim_serves_meters_and_gates_until_stopped(mqtt_url: str) -> None:
    spec = small_estate(days=2, estate_id=private_estate_id())
    model = EstateModel(spec)
    port = free_port()
    clock = AcceleratedClock(origin_wall=time.time() + 0.2, origin_sim=START, speed=86400)

    async def scenario() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(run_estate_sim(spec, clock, modbus_host="127.0.0.1", modbus_port=port,
                                                  mqtt_url=mqtt_url, stop=stop))
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        try:
            for _ in range(100):
                if await client.connect():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            rr = await client.read_input_registers(342, count=2, device_id=1)
            assert not rr.isError()
            value = float(struct.unpack(">f", struct.pack(">HH", *rr.registers))[0])
        finally:
            client.close()
        await asyncio.sleep(1.5)  # past the simulated period: the gate source is done, meters still up
        stop.set()
        async with asyncio.timeout(5):
            await task
        return value

    with subscriber(mqtt_url, spec.estate_id) as received:
        value = asyncio.run(scenario())
        deadline = time.time() + 3
        while len(received) < len(model.gate_events()) and time.time() < deadline:
            time.sleep(0.02)
    start_value = model.register_value(spec.units[0].unit_id, "electricity", START)
    assert start_value < value <= model.register_value(spec.units[0].unit_id, "electricity", spec.end) + 1e-3
    assert len(received) == len(model.gate_events())
