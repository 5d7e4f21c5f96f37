"""Real processes for the fault tests: a Mosquitto that can be killed and restarted on its port, the
``anju sim meters`` fleet, edge agents as child processes, the real ingest hub, and the final tally.

"Produced" is defined at the outbox: a reading is produced when an agent's outbox has committed it.
The outbox numbers committed records 1, 2, 3, ... with SQLite AUTOINCREMENT (a rolled-back or killed
transaction takes its number back with it), so after a drain the agent produced exactly the seqs
1..``sqlite_sequence``. Polls a SIGKILL interrupted before the commit were never produced: the meter
keeps its cumulative total, so such a gap costs resolution, not consumption.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml

from anju.device_sims.fleet import fleet_energy_kwh
from anju.device_sims.fleet_meters import fleet_endpoint
from anju.device_sims.reporting_meters import ReportingMeterFleet
from anju.hub.ingest.consumer import IngestService
from anju.hub.storage import ensure_schema, upsert_units
from anju.services import mosquitto_path, wait_port

SECRET_ENV = "ANJU_FAULT_PSEUDONYM_SECRET"
SIM_START = "2026-03-01T00:00:00+08:00"
SPEED = 7200.0  # one simulated hour every half wall second
POLL_INTERVAL_S = 3600.0


class RestartableMosquitto:
    """A private Mosquitto on a fixed port, killed with SIGKILL and restarted on the same port.

    ``persistence false``: a killed broker forgets every session and queued message, the worst case.
    """

    def __init__(self, port: int, workdir: Path) -> None:
        exe = mosquitto_path()
        if exe is None:
            raise RuntimeError("mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)")
        self.exe = exe
        self.port = port
        self.workdir = workdir
        self.url = f"mqtt://127.0.0.1:{port}"
        self.conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_inflight_messages 100",
            "max_queued_messages 1000000",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        self.conf.write_text("\n".join(lines) + "\n")
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start (or restart) the broker and wait until it listens."""
        assert self._proc is None
        self.starts += 1
        with (self.workdir / f"mosquitto-{self.starts}.log").open("wb") as log:
            self._proc = subprocess.Popen(
                [self.exe, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_port("127.0.0.1", self.port, timeout=15)

    def kill(self) -> None:
        """SIGKILL: no clean disconnects, no will suppression, no saved state."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(10)

    def stop(self) -> None:
        """Terminate the broker if it runs."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            proc.wait(10)


def _anju(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    base = {k: v for k, v in os.environ.items() if k != "ANJU_MQTT_URL"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "anju.cli", *args], stdout=out, stderr=subprocess.STDOUT,
            env={**base, SECRET_ENV: "fault-test-key", **(env or {})},
        )  # fmt: skip


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"(no {path.name})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def meter_fleet(port: int, *, units: int, origin_wall: float, workdir: Path) -> Iterator[None]:
    """``anju sim meters`` in a child process, on the agents' accelerated clock."""
    log = workdir / "sim-meters.log"
    proc = _anju(
        ["sim", "meters", "--listen", f"127.0.0.1:{port}", "--units", str(units), "--start", SIM_START,
         "--origin-wall", repr(origin_wall), "--speed", repr(SPEED)],
        log,
    )  # fmt: skip
    try:
        wait_port("127.0.0.1", port, timeout=20)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class AgentProcess:
    """One edge agent run as ``anju agent --config``; restartable on the same outbox."""

    name: str
    site: Path
    outbox: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    kills: list[tuple[int, int]] = field(default_factory=list)  # (records waiting, of which sent) per kill
    log_offset: int = 0  # size of the log when the current process started

    def start(self) -> None:
        """Start the agent."""
        assert self.proc is None or self.proc.poll() is not None
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        self.proc = _anju(["agent", "--config", str(self.site)], self.log)

    def started(self) -> bool:
        """Whether the current process got as far as running (its signal handlers are in place)."""
        if not self.log.exists():
            return False
        with self.log.open("rb") as fh:
            fh.seek(self.log_offset)
            return b" for estate " in fh.read()

    def kill(self) -> None:
        """SIGKILL the agent, noting what its outbox held at that instant."""
        assert self.proc is not None and self.proc.poll() is None, _tail(self.log)
        waiting, sent = outbox_state(self.outbox)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills.append((waiting, sent))

    def terminate(self) -> None:
        """SIGTERM and wait for a clean exit (0).

        A process restarted a moment ago may still be importing on a loaded machine, before it handles
        SIGTERM at all: wait until it says it runs, so the test judges its shutdown, not its start-up.
        """
        if self.proc is not None and self.proc.poll() is None:
            deadline = time.monotonic() + 30
            while not self.started() and self.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            self.proc.terminate()
            code = self.proc.wait(20)
            assert code == 0, f"{self.name} exited {code}\n{_tail(self.log)}"

    def drain(self, timeout: float) -> None:
        """Run ``anju agent --drain`` on the same outbox until every record is acked."""
        proc = _anju(["agent", "--config", str(self.site), "--drain"], self.log)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise AssertionError(
                f"{self.name}: drain did not finish in {timeout}s\n{_tail(self.log)}"
            ) from None
        assert code == 0, f"{self.name}: drain exited {code}\n{_tail(self.log)}"

    def alive(self) -> bool:
        """Whether the agent process runs."""
        return self.proc is not None and self.proc.poll() is None


def outbox_state(path: Path) -> tuple[int, int]:
    """(records waiting, of which already sent and not yet acked), read beside the running agent (WAL)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        waiting, sent = conn.execute("SELECT count(*), count(sent_at) FROM records").fetchone()
        return int(waiting), int(sent)
    finally:
        conn.close()


def outbox_produced(path: Path) -> tuple[int, int, int]:
    """(highest seq ever committed, records still waiting, records rejected) of a stopped agent's outbox."""
    conn = sqlite3.connect(str(path))
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        waiting = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        rejected = conn.execute("SELECT count(*) FROM rejected").fetchone()[0]
        return (int(row[0]) if row else 0), int(waiting), int(rejected)
    finally:
        conn.close()


def make_agents(
    *, estate: str, count: int, units_each: int, broker_url: str, fleet_port: int, origin_wall: float,
    workdir: Path, ack_timeout_s: float = 2.0,
) -> list[AgentProcess]:  # fmt: skip
    """``count`` agents of one estate, agent i polling fleet units i*units_each+1 .. (i+1)*units_each."""
    agents = []
    for i in range(count):
        name = f"{estate}-gw{i + 1}"
        meters: list[dict[str, Any]] = []
        for u in range(i * units_each + 1, (i + 1) * units_each + 1):
            port, device_id = fleet_endpoint(u, base_port=fleet_port)
            meters.append({
                "unit_id": f"{estate}-U{u:04d}", "meter": "electricity", "host": "127.0.0.1", "port": port,
                "device_id": device_id, "register_map": "eastron_sdm120", "poll_interval_s": POLL_INTERVAL_S,
                "timeout_s": 1.0,
            })  # fmt: skip
        outbox = workdir / f"{name}.outbox.sqlite"
        site = {
            "agent_id": name, "estate_id": estate, "mqtt_url": broker_url,
            "outbox": {"path": str(outbox), "capacity": 1_000_000}, "pseudonym_secret_env": SECRET_ENV,
            "clock": {"origin_wall": origin_wall, "origin_sim": SIM_START, "speed": SPEED},
            "publish": {"batch_max": 100, "ack_timeout_s": ack_timeout_s, "status_interval_s": 2},
            "meters": meters,
        }  # fmt: skip
        path = workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(site, sort_keys=False))
        agents.append(AgentProcess(name=name, site=path, outbox=outbox, log=workdir / f"{name}.log"))
    return agents


def prepare_database(database_url: str, *, estate: str, units: int) -> None:
    """The hub's schema in a fresh database, with the fleet's units 1..``units`` registered to ``estate``
    (ingest stores readings of registered units only)."""
    with psycopg.connect(database_url) as conn:
        ensure_schema(conn)
        upsert_units(
            conn, [{"unit_id": f"{estate}-U{u:04d}", "estate_id": estate} for u in range(1, units + 1)]
        )
        conn.commit()


def start_hub(database_url: str, broker_url: str, *, group: str, flush_s: float = 0.2) -> IngestService:
    """The real ingest service with its own share group and client id."""
    hub = IngestService(
        database_url=database_url, mqtt_url=broker_url, share_group=group,
        client_id=f"hub-{group}-{uuid.uuid4().hex[:6]}", flush_s=flush_s, retry_cap_s=1.0,
    )  # fmt: skip
    hub.start()
    return hub


@dataclass(frozen=True)
class Tally:
    """What one agent produced against what the database holds."""

    agent: str
    produced: int
    rows: int
    distinct_seqs: int
    missing: int
    unexpected: int
    unavailable: int
    waiting: int
    rejected: int

    def line(self) -> str:
        """One printable line."""
        return (
            f"{self.agent}: produced={self.produced} rows={self.rows} distinct_seqs={self.distinct_seqs} "
            f"lost={self.missing} duplicated={self.rows - self.distinct_seqs} unexpected={self.unexpected} "
            f"unavailable={self.unavailable} left_in_outbox={self.waiting} rejected={self.rejected}"
        )


def tally(database_url: str, agents: list[AgentProcess]) -> list[Tally]:
    """Compare each stopped agent's outbox with the database rows it is credited with."""
    out = []
    with psycopg.connect(database_url) as conn:
        for a in agents:
            produced, waiting, rejected = outbox_produced(a.outbox)
            seqs = [int(r[0]) for r in conn.execute(
                "SELECT seq FROM meter_readings WHERE agent_id = %s", (a.name,)
            ).fetchall()]  # fmt: skip
            unavailable = conn.execute(
                "SELECT count(*) FROM meter_readings WHERE agent_id = %s AND value IS NULL", (a.name,)
            ).fetchone()
            distinct = set(seqs)
            expected = set(range(1, produced + 1))
            out.append(Tally(
                agent=a.name, produced=produced, rows=len(seqs), distinct_seqs=len(distinct),
                missing=len(expected - distinct), unexpected=len(distinct - expected),
                unavailable=int(unavailable[0]) if unavailable else 0, waiting=waiting, rejected=rejected,
            ))  # fmt: skip
    return out


def value_errors(database_url: str, *, tolerance_kwh: float = 0.5) -> list[str]:
    """Readings whose value is not the fleet meter's total at the reading's time, or that go backwards."""
    problems: list[str] = []
    last: dict[str, float] = {}
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT unit_id, ts, value FROM meter_readings WHERE value IS NOT NULL ORDER BY unit_id, ts"
        ).fetchall()
    for unit_id, ts, value in rows:
        unit = int(str(unit_id).rsplit("-U", 1)[1])
        truth = fleet_energy_kwh(unit, ts)
        if abs(truth - value) > tolerance_kwh:
            problems.append(f"{unit_id} at {ts}: {value} but the meter held {truth:.3f}")
        if value < last.get(unit_id, float("-inf")) - 1e-3:
            problems.append(f"{unit_id} at {ts}: {value} is below the previous reading {last[unit_id]}")
        last[unit_id] = value
    return problems[:10]


def wait_for(cond: Any, timeout: float, what: str) -> None:
    """Poll ``cond()`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def readings_in_db(database_url: str) -> int:
    """Rows in meter_readings now."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM meter_readings").fetchone()
    return int(row[0]) if row else 0


def make_reporting_agent(
    *, estate: str, fleet: ReportingMeterFleet, hub_url: str, estate_url: str, origin_wall: float,
    workdir: Path,
) -> AgentProcess:  # fmt: skip
    """An agent reading only ``fleet``'s self-reporting meters from the estate broker (``estate_url``)."""
    name = f"{estate}-gw1"
    meters: list[dict[str, Any]] = [
        {"unit_id": f"{estate}-U{u:04d}", "meter": "electricity", "transport": "mqtt",
         "topic": fleet.plug_topic(u), "payload_map": "tasmota_energy", "poll_interval_s": POLL_INTERVAL_S}
        for u in fleet.plugs
    ] + [
        {"unit_id": f"{estate}-U{u:04d}", "meter": "water", "transport": "mqtt", "topic": fleet.water_topic,
         "payload_map": "nbiot_water_ctwing", "payload_device": fleet.water_device(u),
         "poll_interval_s": POLL_INTERVAL_S}
        for u in fleet.water
    ]  # fmt: skip
    outbox = workdir / f"{name}.outbox.sqlite"
    site = {
        "agent_id": name, "estate_id": estate, "mqtt_url": hub_url, "local_mqtt_url": estate_url,
        "outbox": {"path": str(outbox), "capacity": 1_000_000}, "pseudonym_secret_env": SECRET_ENV,
        "clock": {"origin_wall": origin_wall, "origin_sim": SIM_START, "speed": SPEED},
        "publish": {"batch_max": 100, "ack_timeout_s": 2.0, "status_interval_s": 2},
        "meters": meters,
    }  # fmt: skip
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    return AgentProcess(name=name, site=path, outbox=outbox, log=workdir / f"{name}.log")


def outbox_readings(path: Path) -> set[tuple[str, str, datetime]]:
    """(unit, meter, ts) of the readings a running agent's outbox holds now (read beside it, WAL)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute("SELECT payload FROM records WHERE kind = 'reading'").fetchall()
    finally:
        conn.close()
    out = set()
    for (payload,) in rows:
        r = json.loads(payload)
        out.add((r["unit_id"], r["meter"], datetime.fromisoformat(r["ts"])))
    return out


DbReading = tuple[str, str, datetime, float | None, str, str | None]


def db_readings(database_url: str, estate: str) -> list[DbReading]:
    """(unit, meter, ts, value, quality, event) of every row of ``estate``'s units, in time order."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT unit_id, meter, ts, value, quality, event FROM meter_readings WHERE unit_id LIKE %s "
            "ORDER BY unit_id, meter, ts",
            (f"{estate}-U%",),
        ).fetchall()
    return [(str(u), str(m), ts, v, str(q), e) for u, m, ts, v, q, e in rows]
