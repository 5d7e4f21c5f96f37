"""Modbus poller against a real pymodbus server: totals, device exceptions, outages, availability."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from anju.edge_agent.modbus import ModbusEndpointPoller
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.registers import encode_total, load_map
from anju.edge_agent.site import MeterConfig
from anju_wire import AcceleratedClock, MeterReading
from tests.edge_agent.helpers import meter_server
from tests.services import free_port


def _meter(port: int, device_id: int, unit: str = "E01-1-0101", **kw: object) -> MeterConfig:
    return MeterConfig.model_validate(
        {"unit_id": unit, "meter": "electricity", "host": "127.0.0.1", "port": port, "device_id": device_id,
         "register_map": "eastron_sdm120", "poll_interval_s": 3600, "timeout_s": 0.5, **kw}
    )  # fmt: skip


def _fast_clock() -> AcceleratedClock:
    # 3600 simulated seconds pass in 0.1 wall seconds
    return AcceleratedClock(origin_wall=time.time(), origin_sim=datetime(2026, 3, 1, tzinfo=UTC), speed=36000)


def _readings(ob: Outbox) -> list[MeterReading]:
    return [
        MeterReading.model_validate({**json.loads(r.payload), "seq": r.seq})
        for r in ob.next_batch("reading", 10_000, time.time() + 1)
    ]


def test_poller_reads_totals_and_marks_a_faulty_meter_unavailable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    words = {1: dict(zip((342, 343), struct.unpack(">HH", struct.pack(">f", 1532.5)), strict=True))}

    async def scenario() -> ModbusEndpointPoller:
        async with meter_server(words) as port:
            ob = outbox
            poller = ModbusEndpointPoller(
                host="127.0.0.1", port=port, meters=[_meter(port, 1), _meter(port, 9, unit="E01-1-0102")],
                clock=_fast_clock(), outbox=ob,
            )  # fmt: skip
            stop = asyncio.Event()
            task = asyncio.create_task(poller.run(stop))
            await asyncio.sleep(0.45)
            stop.set()
            await task
            return poller

    with (
        caplog.at_level(logging.INFO, logger="anju.edge_agent"),
        Outbox(tmp_path / "o.sqlite", capacity=1000) as outbox,
    ):
        poller = asyncio.run(scenario())
        readings = _readings(outbox)
    good = [r for r in readings if r.unit_id == "E01-1-0101"]
    bad = [r for r in readings if r.unit_id == "E01-1-0102"]
    assert len(good) >= 3 and len(bad) >= 3
    assert all(r.value == 1532.5 and r.quality == "ok" for r in good)
    assert all(r.device == f"modbus-tcp://127.0.0.1:{poller.port}/1" for r in good)
    assert all(r.value is None and r.quality == "unavailable" for r in bad)
    assert good[0].ts.year == 2026  # clock time, not wall time
    assert poller.stats.device_errors == len(bad) and poller.stats.transport_errors == 0
    # logged once when it went away, not on every poll
    assert sum("unavailable" in m for m in caplog.messages) == 1
    avail = {d.device.rsplit("/", 1)[1]: d.available for d in poller.availability()}
    assert avail == {"1": True, "9": False}


def test_outage_is_unavailable_then_recovers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    m = load_map("eastron_sdm120")
    regs = dict(zip((342, 343), encode_total(m, 10.0), strict=True))

    async def scenario() -> ModbusEndpointPoller:
        poller = ModbusEndpointPoller(
            host="127.0.0.1", port=port, meters=[_meter(port, 1)], clock=_fast_clock(), outbox=outbox
        )
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await asyncio.sleep(0.35)  # nothing listens yet
        async with meter_server({1: regs}, port=port) as served:
            assert served
            await asyncio.sleep(0.5)
        stop.set()
        await task
        return poller

    with (
        caplog.at_level(logging.INFO, logger="anju.edge_agent"),
        Outbox(tmp_path / "o.sqlite", capacity=1000) as outbox,
    ):
        poller = asyncio.run(scenario())
        readings = _readings(outbox)
    qualities = [r.quality for r in readings]
    assert qualities[0] == "unavailable" and qualities[-1] == "ok"
    assert poller.stats.transport_errors >= 1
    assert any("available again" in msg for msg in caplog.messages)
