"""``anju sim meters``: Debian's mbpoll, an independent Modbus client, reads what the agent reports."""

from __future__ import annotations

import asyncio
import re
import shutil
import struct
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from anju.device_sims.fleet_meters import FleetMeterServer, fleet_endpoint
from anju.edge_agent.modbus import ModbusEndpointPoller
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.site import MeterConfig
from anju.services import wait_port
from tests.services import free_port

MBPOLL = shutil.which("mbpoll")
needs_mbpoll = pytest.mark.skipif(
    MBPOLL is None, reason="Debian's mbpoll is not installed and could not be (apt-get install mbpoll)"
)


class FrozenClock:
    """A clock standing still, so that two clients reading one after the other see the same total."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def wall_seconds(self, clock_seconds: float) -> float:
        return clock_seconds


async def _mbpoll(port: int, device_id: int, *args: str) -> str:
    assert MBPOLL is not None
    proc = await asyncio.create_subprocess_exec(
        MBPOLL, "-m", "tcp", "-a", str(device_id), *args, "-1", "-p", str(port),
        "127.0.0.1", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 15)
    return out.decode()


def _meter(port: int, device_id: int, unit: int) -> MeterConfig:
    return MeterConfig(
        unit_id=f"F-U{unit:04d}", meter="electricity", host="127.0.0.1", port=port, device_id=device_id,
        register_map="eastron_sdm120", timeout_s=0.5,
    )  # fmt: skip


@needs_mbpoll
def test_mbpoll_reads_the_sdm120_total_the_agent_reports() -> None:
    base = free_port()
    clock = FrozenClock(datetime(2026, 3, 9, 19, 30, tzinfo=UTC))

    async def scenario() -> None:
        async with FleetMeterServer(clock, units=5, port=base, failing={4}, silent={5}) as fleet:
            meters = [_meter(base, u, u) for u in range(1, 6)]
            with Outbox(":memory:", capacity=100) as outbox:
                poller = ModbusEndpointPoller(
                    host="127.0.0.1", port=base, meters=meters, clock=clock, outbox=outbox
                )
                try:
                    readings = [await poller.poll(s) for s in poller.meters]
                finally:
                    poller.close()
            for unit in (1, 3):
                agent_value = readings[unit - 1].value
                assert agent_value is not None
                # 30343 is one-based: mbpoll -r 343 is PDU address 342; -B: high word first
                shown = await _mbpoll(base, unit, "-t", "3:float", "-B", "-r", "343", "-c", "1")
                m = re.search(r"\[343\]:\s*(\S+)", shown)
                assert m, shown
                assert abs(float(m.group(1)) - agent_value) <= 0.05, (shown, agent_value)
                # and bit for bit: the two raw words decode to exactly the agent's float
                words = await _mbpoll(base, unit, "-t", "3:hex", "-r", "343", "-c", "2")
                hi, lo = (int(w, 16) for w in re.findall(r"\[34[34]\]:\s*0x([0-9A-Fa-f]{4})", words))
                assert struct.unpack(">f", struct.pack(">HH", hi, lo))[0] == agent_value, words
                assert abs(agent_value - fleet.value(unit)) < 1e-3 * agent_value
            assert readings[3].value is None and poller.stats.device_errors == 1  # exception response
            assert readings[4].value is None and poller.stats.transport_errors == 1  # silent: timeout
            failing = await _mbpoll(base, 4, "-t", "3:float", "-B", "-r", "343", "-c", "1")
            assert "failure" in failing.lower(), failing

    asyncio.run(scenario())


@needs_mbpoll
def test_agent_and_mbpoll_read_a_simulated_chint_ddsu666_alike() -> None:
    from anju.device_sims.registers import load_map as sim_map  # the simulator's own, independent map reader

    base = free_port()
    clock = FrozenClock(datetime(2026, 3, 9, 19, 30, tzinfo=UTC))

    async def scenario() -> None:
        async with FleetMeterServer(clock, units=2, port=base, reg_map=sim_map("chint_ddsu666")) as fleet:
            meters = [_meter(base, u, u).model_copy(update={"register_map": "chint_ddsu666"}) for u in (1, 2)]
            with Outbox(":memory:", capacity=100) as outbox:
                poller = ModbusEndpointPoller(
                    host="127.0.0.1", port=base, meters=meters, clock=clock, outbox=outbox
                )
                try:
                    readings = await poller.poll_round()
                finally:
                    poller.close()
            for unit, reading in zip((1, 2), readings, strict=True):
                assert reading.value is not None
                assert abs(reading.value - fleet.value(unit)) < 1e-3 * reading.value
                # 0x4000 is PDU address 16384, one-based register 16385 for mbpoll; FC04 is table 3
                shown = await _mbpoll(base, unit, "-t", "3:hex", "-r", "16385", "-c", "2")
                hi, lo = (int(w, 16) for w in re.findall(r"\[1638[56]\]:\s*0x([0-9A-Fa-f]{4})", shown))
                assert struct.unpack(">f", struct.pack(">HH", hi, lo))[0] == reading.value, shown

    asyncio.run(scenario())


def test_fleet_beyond_247_units_takes_the_next_port() -> None:
    assert fleet_endpoint(1, base_port=5020) == (5020, 1)
    assert fleet_endpoint(247, base_port=5020) == (5020, 247)
    assert fleet_endpoint(248, base_port=5020) == (5021, 1)
    assert fleet_endpoint(1000, base_port=5020) == (5024, 12)


@needs_mbpoll
def test_anju_sim_meters_command_serves_advancing_values() -> None:
    base = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "anju.cli", "sim", "meters", "--listen", f"127.0.0.1:{base}", "--units", "250",
         "--start", "2026-03-01T00:00:00+08:00", "--speed", "36000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port("127.0.0.1", base, timeout=20)
        wait_port("127.0.0.1", base + 1, timeout=20)

        def read(port: int, unit: int) -> float:
            out = asyncio.run(_mbpoll(port, unit, "-t", "3:float", "-B", "-r", "343", "-c", "1"))
            m = re.search(r"\[343\]:\s*(\S+)", out)
            assert m, out
            return float(m.group(1))

        first = read(base, 1)
        time.sleep(1.0)  # ten simulated hours
        assert read(base, 1) > first
        assert read(base + 1, 3) > 0  # unit 250 is device 3 on the second port
    finally:
        proc.terminate()
        proc.wait(10)
