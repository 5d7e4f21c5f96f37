"""Modbus RTU over a pseudo-terminal pair: pymodbus serial server at one end, the agent at the other."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from anju.device_sims.serial_pair import pty_pair
from anju.edge_agent.agent import build_pollers
from anju.edge_agent.errors import SiteConfigError
from anju.edge_agent.modbus import ModbusEndpointPoller
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.site import MeterConfig, parse_site
from anju_wire import MeterReading
from tests.edge_agent.test_modbus import _fast_clock


def _device(dev_id: int, words: dict[int, int]) -> SimDevice:
    async def fill(
        function_code: int, start_address: int, address: int, count: int,
        current_registers: list[int], set_values: list[int] | list[bool] | None,
    ) -> None:  # fmt: skip
        for i in range(len(current_registers)):
            current_registers[i] = words.get(start_address + i, 0)

    return SimDevice(
        id=dev_id, simdata=[SimData(0, count=1000, values=0, datatype=DataType.REGISTERS)], action=fill
    )


def _silent(dev_id: int) -> SimDevice:
    """A meter that never answers, as a dead one on an RS-485 bus (the server drops the request)."""

    async def drop(
        function_code: int, start_address: int, address: int, count: int,
        current_registers: list[int], set_values: list[int] | list[bool] | None,
    ) -> None:  # fmt: skip
        raise NoSuchIdException(f"device {dev_id} is silent")

    return SimDevice(
        id=dev_id, simdata=[SimData(0, count=1000, values=0, datatype=DataType.REGISTERS)], action=drop
    )


def _float_words(value: float) -> dict[int, int]:
    return dict(zip((342, 343), struct.unpack(">HH", struct.pack(">f", value)), strict=True))


def _rtu_meter(port: str, device_id: int, unit: str, **kw: Any) -> MeterConfig:
    return MeterConfig.model_validate(
        {"unit_id": unit, "meter": "electricity", "transport": "rtu", "serial_port": port, "baudrate": 9600,
         "device_id": device_id, "register_map": "eastron_sdm120", "poll_interval_s": 3600, "timeout_s": 0.3,
         **kw}
    )  # fmt: skip


def test_meters_on_one_rtu_bus_are_read_in_turn(tmp_path: Path) -> None:
    async def scenario() -> tuple[ModbusEndpointPoller, list[MeterReading]]:
        async with pty_pair() as (server_end, agent_end):
            server = ModbusSerialServer(
                [_device(1, _float_words(101.5)), _device(2, _float_words(2.25)), _silent(7)],
                port=server_end, baudrate=9600, ignore_missing_devices=True,
            )  # fmt: skip
            await server.serve_forever(background=True)
            try:
                meters = [
                    _rtu_meter(agent_end, 1, "E01-1-0101"),
                    _rtu_meter(agent_end, 2, "E01-1-0102"),
                    _rtu_meter(agent_end, 7, "E01-1-0103"),  # nobody answers at 7
                ]
                with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:
                    poller = ModbusEndpointPoller(meters=meters, clock=_fast_clock(), outbox=ob)
                    try:
                        first = await poller.poll_round()
                        second = await poller.poll_round()  # the bus recovers after the silent meter
                    finally:
                        poller.close()
                    stored = [
                        MeterReading.model_validate({**json.loads(r.payload), "seq": r.seq})
                        for r in ob.next_batch("reading", 100, time.time() + 1)
                    ]
            finally:
                await server.shutdown()
        assert [r.value for r in first] == [r.value for r in second]
        return poller, stored

    poller, stored = asyncio.run(scenario())
    assert [(r.unit_id, r.value, r.quality) for r in stored[:3]] == [
        ("E01-1-0101", 101.5, "ok"), ("E01-1-0102", 2.25, "ok"), ("E01-1-0103", None, "unavailable"),
    ]  # fmt: skip
    assert len(stored) == 6
    assert stored[0].device.startswith("modbus-rtu:///dev/pts/") and stored[0].device.endswith("/1")
    assert poller.name.startswith("/dev/pts/")
    assert poller.stats.transport_errors == 2 and poller.stats.device_errors == 0


def _site(meters: list[dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    return {"agent_id": "E01-gw1", "estate_id": "E01", "mqtt_url": "mqtt://127.0.0.1:1883",
            "outbox": {"path": str(tmp_path / "o.sqlite")}, "pseudonym_secret_env": "S",
            "meters": meters}  # fmt: skip


def _m(unit: str, **kw: Any) -> dict[str, Any]:
    return {"unit_id": unit, "meter": "electricity", "register_map": "chint_ddsu666", **kw}


def test_site_file_groups_meters_by_bus_and_checks_rtu_fields(tmp_path: Path) -> None:
    env = {"S": "secret"}
    site = parse_site(
        _site([_m("U1", transport="rtu", serial_port="/dev/ttyUSB0", device_id=1),
               _m("U2", transport="rtu", serial_port="/dev/ttyUSB0", device_id=2),
               _m("U3", transport="rtu", serial_port="/dev/ttyUSB1", device_id=1, baudrate=19200, parity="E"),
               _m("U4", host="10.0.3.2", device_id=1)], tmp_path),
        environ=env,
    )  # fmt: skip

    async def grouped() -> list[tuple[str, int]]:  # a serial client needs a running loop
        with Outbox(tmp_path / "o.sqlite", capacity=10) as ob:
            pollers = build_pollers(site, ob)
            for p in pollers:
                p.close()
            return sorted((p.name, len(p.meters)) for p in pollers)

    assert asyncio.run(grouped()) == [("/dev/ttyUSB0", 2), ("/dev/ttyUSB1", 1), ("10.0.3.2:502", 1)]
    bad = [
        ([_m("U1", transport="rtu", device_id=1)], "needs serial_port"),
        ([_m("U1", transport="rtu", serial_port="/dev/ttyUSB0", host="h")], "host is for transport: tcp"),
        ([_m("U1", transport="rtu", serial_port="/dev/ttyUSB0", device_id=0)], "1..247"),
        ([_m("U1", transport="rtu", serial_port="/dev/ttyUSB0", baudrate=1234)], "baudrate"),
        ([_m("U1")], "needs host"),
        ([_m("U1", transport="rtu", serial_port="/dev/ttyUSB0", device_id=1),
          _m("U2", transport="rtu", serial_port="/dev/ttyUSB0", device_id=1)], "share device_id 1"),
        ([_m("U1", transport="rtu", serial_port="/dev/ttyUSB0", device_id=1),
          _m("U2", transport="rtu", serial_port="/dev/ttyUSB0", device_id=2, baudrate=19200)], "disagree"),
    ]  # fmt: skip
    for meters, fragment in bad:
        with pytest.raises(SiteConfigError, match=fragment):
            parse_site(_site(meters, tmp_path), environ=env)
