"""Benchmark: one edge agent polling 1,000 simulated DL/T 645-2007 meters on one RS-485 bus (a pty pair);
CPU % of one core, RSS, polls.

Starts ``anju sim meters --protocol dlt645 --rtu-pty --units N``, a private Mosquitto, and ``anju agent``
as its own process (``--python`` picks the interpreter: e.g. a fresh venv with only ``anju[agent]``), and
measures only the agent process from /proc, as ``bench/edge_poll.py`` does for Modbus. A pty carries bytes
at any speed; a real 2400-baud bus needs about 0.1 s per meter, so 1,000 meters are several buses there.
Run: ``.venv/bin/python -m bench.edge_poll_dlt645 [--meters 1000] [--window 60] [--python PATH]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from anju.services import mosquitto_broker
from bench.edge_poll import _cpu_seconds, _polls, _status_kb


def _site(tmp: Path, *, meters: int, bus: str, interval: float, broker: str) -> Path:
    doc = {
        "agent_id": "B01-dlt", "estate_id": "B01", "mqtt_url": broker,
        "outbox": {"path": str(tmp / "dlt.sqlite"), "capacity": 10_000_000},
        "pseudonym_secret_env": "ANJU_BENCH_SECRET",
        "publish": {"batch_max": 500, "ack_timeout_s": 3600, "status_interval_s": 30},
        "meters": [
            {"unit_id": f"B01-U{u:04d}", "meter": "electricity", "protocol": "dlt645", "transport": "rtu",
             "serial_port": bus, "baudrate": 2400, "parity": "E", "address": f"{u:012d}",
             "poll_interval_s": interval, "timeout_s": 1.0}
            for u in range(1, meters + 1)
        ],
    }  # fmt: skip
    path = tmp / "dlt.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meters", type=int, default=1000, help="meters on the bus")
    p.add_argument("--window", type=float, default=60.0, help="measured seconds")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between two polls of one meter")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs the agent")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="anju-bench-dlt-") as tmpdir, mosquitto_broker() as broker:
        tmp = Path(tmpdir)
        sim = subprocess.Popen(
            [sys.executable, "-m", "anju.cli", "sim", "meters", "--protocol", "dlt645", "--rtu-pty",
             "--units", str(args.meters)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert sim.stdout is not None
            bus = sim.stdout.readline().rsplit("agent serial_port: ", 1)[1].strip()
            site = _site(tmp, meters=args.meters, bus=bus, interval=args.interval, broker=broker.url)
            print(f"conditions: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}; "
                  f"simulator, Mosquitto and agent on the same machine; {args.meters} DL/T 645 meters on one "
                  f"pty bus; agent interpreter {args.python}; no hub (no acks)")  # fmt: skip
            with (tmp / "agent.log").open("wb") as log:
                agent = subprocess.Popen(
                    [args.python, "-m", "anju.cli", "agent", "--config", str(site)], stdout=log,
                    stderr=subprocess.STDOUT, env={**os.environ, "ANJU_BENCH_SECRET": "bench"},
                )  # fmt: skip
            try:
                time.sleep(3.0)  # start-up is not measured
                cpu0, polls0, t0 = _cpu_seconds(agent.pid), _polls(tmp / "dlt.sqlite"), time.monotonic()
                time.sleep(args.window)
                cpu1, polls1, t1 = _cpu_seconds(agent.pid), _polls(tmp / "dlt.sqlite"), time.monotonic()
                rss, hwm = _status_kb(agent.pid, "VmRSS"), _status_kb(agent.pid, "VmHWM")
            finally:
                agent.terminate()
                agent.wait(30)
            gone = sum("unavailable" in line for line in (tmp / "agent.log").read_text().splitlines())
            wall, polls = t1 - t0, polls1 - polls0
            print(f"dlt645: {args.meters} meters every {args.interval:g} s, window {wall:.1f} s: "
                  f"{polls} polls ({polls / wall:,.1f}/s, demand {args.meters / args.interval:,.1f}/s); "
                  f"agent CPU {100 * (cpu1 - cpu0) / wall:.1f}% of one core; RSS {rss / 1024:.0f} MB "
                  f"(peak {hwm / 1024:.0f} MB); unavailable-meter log lines: {gone}")  # fmt: skip
        finally:
            sim.terminate()
            sim.wait(10)
            if sim.stdout is not None:
                sim.stdout.close()


if __name__ == "__main__":
    main()
