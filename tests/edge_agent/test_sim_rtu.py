"""``anju sim meters --rtu-pty``: the agent reads the simulated SDM120s over Modbus RTU on a pty."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from anju.device_sims.fleet import fleet_energy_kwh
from anju.edge_agent.modbus import ModbusEndpointPoller
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.site import MeterConfig
from anju_wire import AcceleratedClock

START = datetime.fromisoformat("2026-03-01T00:00:00+08:00")
SPEED = 3600.0  # one simulated hour per wall second: readings move, but little within one poll


def _rtu_meter(path: str, device_id: int) -> MeterConfig:
    return MeterConfig.model_validate(
        {"unit_id": f"F-U{device_id:04d}", "meter": "electricity", "transport": "rtu", "serial_port": path,
         "baudrate": 9600, "device_id": device_id, "register_map": "eastron_sdm120", "timeout_s": 0.5}
    )  # fmt: skip


def _sim(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "anju.cli", "sim", "meters", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_agent_reads_sdm120_energy_from_the_simulator_over_an_rtu_pty(tmp_path: Path) -> None:
    origin = time.time()
    sim = _sim("--rtu-pty", "--units", "3", "--silent", "3", "--start", START.isoformat(),
               "--origin-wall", repr(origin), "--speed", repr(SPEED))  # fmt: skip
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()  # printed once the server has the line open
        found = re.search(r"agent serial_port: (/dev/\S+)$", line.strip())
        assert found, f"no path in {line!r}"
        path = found[1]
        assert os.path.exists(path)
        clock = AcceleratedClock(origin_wall=origin, origin_sim=START, speed=SPEED)

        async def poll() -> list[tuple[str, float | None, str, float]]:
            with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:
                poller = ModbusEndpointPoller(
                    meters=[_rtu_meter(path, 1), _rtu_meter(path, 2), _rtu_meter(path, 3)], clock=clock,
                    outbox=ob,
                )  # fmt: skip
                try:
                    readings = await poller.poll_round()
                finally:
                    poller.close()
            return [
                (r.unit_id, r.value, r.quality, fleet_energy_kwh(int(r.unit_id[-4:]), r.ts)) for r in readings
            ]

        got = asyncio.run(poll())
    finally:
        sim.terminate()
        _, err = sim.communicate(timeout=10)  # also closes the pipes
    assert sim.returncode == 0, err
    (u1, v1, q1, t1), (u2, v2, q2, t2), (u3, v3, q3, _) = got
    # the register holds a float32 (7 significant digits) and the meter moves between request and answer
    assert (u1, q1) == ("F-U0001", "ok") and v1 is not None and abs(v1 - t1) < 0.01
    assert (u2, q2) == ("F-U0002", "ok") and v2 is not None and abs(v2 - t2) < 0.01
    assert v1 != v2  # each device id answers with its own meter
    assert (u3, v3, q3) == ("F-U0003", None, "unavailable")  # --silent 3: nobody answers at id 3


def test_rtu_sim_refuses_more_than_one_line_holds_and_a_serial_port_that_does_not_open() -> None:
    too_many = _sim("--rtu-pty", "--units", "248")
    missing = _sim("--serial", "/dev/ttyANJU-NOPE", "--units", "2")
    _, err = too_many.communicate(timeout=30)
    assert too_many.returncode == 2 and "--units must be 1..247 on one RTU line" in err
    _, err = missing.communicate(timeout=30)
    assert missing.returncode == 1
    assert "cannot open serial port /dev/ttyANJU-NOPE: No such file or directory" in err
    assert "Traceback" not in err
