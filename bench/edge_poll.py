"""Benchmark: one edge agent polling 1,000 simulated SDM120 meters over Modbus TCP; polls/s, CPU, RSS.

Starts ``anju sim meters --units N`` (247 meters per port, so 1,000 meters are 5 endpoints), a private
Mosquitto, and ``anju agent`` as its own process, and measures only the agent process from /proc:
CPU time (user+system) over the window, and peak RSS (VmHWM). Polls are counted in the outbox (one record
per poll, answered or not). No hub acks, so the outbox grows for the whole run; ``ack_timeout_s`` is set
long so that the publisher does not resend and the figure is the polling and first-send cost.

Phase 1 (the target): every meter once per 60 s on the wall clock, for ``--window`` seconds.
Phase 2 (headroom): every meter once per ``--fast-interval`` seconds, to find the polls/s ceiling.
Run: ``.venv/bin/python bench/edge_poll.py [--meters 1000] [--window 60] [--fast-interval 1]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from anju.device_sims.fleet_meters import fleet_endpoint
from anju.services import free_port, mosquitto_broker, wait_port

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _polls(outbox: Path) -> int:
    if not outbox.exists():
        return 0
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        return int(row[0]) if row else 0
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def _site(tmp: Path, name: str, *, meters: int, base: int, interval: float, broker: str) -> Path:
    doc = {
        "agent_id": f"B01-{name}", "estate_id": "B01", "mqtt_url": broker,
        "outbox": {"path": str(tmp / f"{name}.sqlite"), "capacity": 10_000_000},
        "pseudonym_secret_env": "ANJU_BENCH_SECRET",
        "publish": {"batch_max": 500, "ack_timeout_s": 3600, "status_interval_s": 30},
        "meters": [
            {"unit_id": f"B01-U{u:04d}", "meter": "electricity", "host": "127.0.0.1",
             "port": fleet_endpoint(u, base_port=base)[0], "device_id": fleet_endpoint(u, base_port=base)[1],
             "register_map": "eastron_sdm120", "poll_interval_s": interval, "timeout_s": 2.0}
            for u in range(1, meters + 1)
        ],
    }  # fmt: skip
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _phase(
    tmp: Path, name: str, *, meters: int, base: int, interval: float, broker: str, window: float
) -> None:
    site = _site(tmp, name, meters=meters, base=base, interval=interval, broker=broker)
    outbox = tmp / f"{name}.sqlite"
    with (tmp / f"{name}.log").open("wb") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "anju.cli", "agent", "--config", str(site)], stdout=log,
            stderr=subprocess.STDOUT, env={**os.environ, "ANJU_BENCH_SECRET": "bench"},
        )  # fmt: skip
    try:
        time.sleep(min(interval, 10.0) + 3.0)  # start-up and the first staggered round are not measured
        cpu0, polls0, t0 = _cpu_seconds(agent.pid), _polls(outbox), time.monotonic()
        time.sleep(window)
        cpu1, polls1, t1 = _cpu_seconds(agent.pid), _polls(outbox), time.monotonic()
        rss, hwm = _status_kb(agent.pid, "VmRSS"), _status_kb(agent.pid, "VmHWM")
    finally:
        agent.terminate()
        agent.wait(30)
    wall = t1 - t0
    polls = polls1 - polls0
    print(f"{name}: {meters} meters every {interval:g} s, window {wall:.1f} s: {polls} polls = "
          f"{polls / wall:,.1f} polls/s (demand {meters / interval:,.1f}/s); agent CPU "
          f"{100 * (cpu1 - cpu0) / wall:.1f}% of one core; "
          f"RSS {rss / 1024:.0f} MB (peak {hwm / 1024:.0f} MB)")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meters", type=int, default=1000)
    p.add_argument("--window", type=float, default=60.0, help="measured seconds per phase")
    p.add_argument("--fast-interval", type=float, default=1.0, help="poll interval of the headroom phase")
    p.add_argument("--skip-fast", action="store_true")
    args = p.parse_args()
    base = free_port()
    with tempfile.TemporaryDirectory(prefix="anju-bench-poll-") as tmpdir, mosquitto_broker() as broker:
        tmp = Path(tmpdir)
        with (tmp / "sim.log").open("wb") as log:
            sim = subprocess.Popen(
                [sys.executable, "-m", "anju.cli", "sim", "meters", "--listen", f"127.0.0.1:{base}",
                 "--units", str(args.meters)], stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            for port in sorted({fleet_endpoint(u, base_port=base)[0] for u in range(1, args.meters + 1)}):
                wait_port("127.0.0.1", port, timeout=30)
            print(f"conditions: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}; "
                  f"simulator, Mosquitto and agent on the same machine; {args.meters} SDM120 meters on "
                  f"{-(-args.meters // 247)} Modbus TCP endpoints (one connection each); "
                  "no hub (no acks)")  # fmt: skip
            _phase(tmp, "target", meters=args.meters, base=base, interval=60.0, broker=broker.url,
                   window=args.window)  # fmt: skip
            if not args.skip_fast:
                _phase(tmp, "headroom", meters=args.meters, base=base, interval=args.fast_interval,
                       broker=broker.url, window=min(args.window, 20.0))  # fmt: skip
        finally:
            sim.terminate()
            sim.wait(10)


if __name__ == "__main__":
    main()
