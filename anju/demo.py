"""``anju demo``: the whole pipeline on simulated estates, on embedded defaults, with a summary at the end.

Every part runs as its own process, talking over the real protocols: per estate a simulator (Modbus TCP
meters + face-gate events over MQTT) and an edge agent; one hub (ingest, detection, filing, inspector
page); the tenancy-system stand-in; a local broker; PostgreSQL (embedded unless ANJU_DATABASE_URL is set).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
import psycopg
import yaml

from anju.demo_camera import demo_camera
from anju.services import Broker, free_port, local_broker, wait_port
from anju_wire import AcceleratedClock
from anju_wire.clock import ESTATE_TZ

if TYPE_CHECKING:
    from anju.device_sims.household import EstateSpec

SIM_START = datetime(2026, 3, 1, tzinfo=ZoneInfo(ESTATE_TZ))
DEMO_DATABASE = "anju_demo"


@dataclass(frozen=True)
class DemoOptions:
    """What to simulate and how fast."""

    headless: bool = False
    estates: int = 2
    units: int = 40
    days: int = 90
    wall_seconds: float = 150.0
    seed: int = 7
    http_port: int = 8000


def say(msg: str) -> None:
    """Progress for the person running the demo."""
    print(f"[anju demo] {msg}", flush=True)


def _demo_database(home: Path) -> str:
    """A fresh demo database: on ANJU_DATABASE_URL's server if set, else on the embedded server."""
    from anju.db import recreate_database
    from anju.hub.storage.embedded import embedded_database_url

    configured = os.environ.get("ANJU_DATABASE_URL")
    admin_url = configured or embedded_database_url(home, database="postgres")
    if configured:
        return configured  # the operator's own database: never dropped
    return recreate_database(admin_url, DEMO_DATABASE)


class Processes:
    """Child processes with their logs; stopped in reverse order."""

    def __init__(self, logdir: Path) -> None:
        self._logdir = logdir
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``anju <args>`` as a child process logging to ``<logdir>/<name>.log``."""
        log_file = (self._logdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "anju.cli", *args],
            stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )
        log_file.close()  # the child holds its own descriptor
        self._procs.append((name, proc))
        return proc

    def check_alive(self) -> None:
        """Raise if a child died early, naming its log."""
        for name, proc in self._procs:
            if proc.poll() is not None:
                log_path = self._logdir / f"{name}.log"
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {log_path}")

    def stop(self, name: str) -> None:
        """Stop one child (SIGTERM, then SIGKILL after 15 s)."""
        for n, proc in list(self._procs):
            if n == name:
                _terminate(proc)
                self._procs.remove((n, proc))

    def wait(self, name: str, *, timeout: float) -> int:
        """Wait for a child that ends by itself; return its exit status (killed after ``timeout``)."""
        for n, proc in list(self._procs):
            if n == name:
                try:
                    code = proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    _terminate(proc)
                    code = -1
                self._procs.remove((n, proc))
                return code
        raise KeyError(name)

    def stop_all(self) -> None:
        """Stop every child, newest first."""
        for _name, proc in reversed(self._procs):
            _terminate(proc)
        self._procs.clear()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _demo_users(conn: psycopg.Connection, estate_ids: list[str]) -> list[tuple[str, str, str]]:
    """Demo logins with fresh random passwords: a supervisor of every estate, an inspector of the first."""
    from anju.hub.auth.errors import UserExists
    from anju.hub.auth.service import add_user

    wanted = [
        ("demo-supervisor", "supervisor", estate_ids, "supervisor, all estates"),
        ("demo-inspector", "inspector", estate_ids[:1], f"inspector, estate {estate_ids[0]} only"),
    ]
    logins = []
    for name, role, estates, what in wanted:
        password = secrets.token_urlsafe(9)
        try:
            with conn.transaction():
                add_user(conn, name=name, role=role, password=password, estates=estates, actor="system:demo")
        except UserExists:
            # Only on a database the operator configured (the embedded demo database is new each run).
            logins.append((name, "(unchanged: set earlier)", what))
            continue
        logins.append((name, password, what))
    return logins


def _count(conn: psycopg.Connection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    conn.commit()
    return int(row[0]) if row and row[0] is not None else 0


def _final_pass(database_url: str, tenancy_url: str, as_of: date) -> None:
    """Roll up every day, run detection as of the last simulated day, and file what it opened."""
    from anju.hub.detection.asof import detect_as_of
    from anju.hub.storage.rollups import refresh_daily_features
    from anju.hub.tenancy.client import TenancyClient
    from anju.hub.tenancy.outbox import deliver_pending

    with psycopg.connect(database_url) as conn:
        refresh_daily_features(conn, tz=ESTATE_TZ, since=None)
        detect_as_of(conn, as_of=as_of, tz=ESTATE_TZ, refresh="none")  # every day was just rolled up
        conn.commit()
        with TenancyClient(base_url=tenancy_url, token=None) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                deliver_pending(conn, client=client)
                conn.commit()
                if _count(conn, "SELECT count(*) FROM tenancy_outbox WHERE state = 'pending'") == 0:
                    break
                time.sleep(0.5)


def truth_report(database_url: str, specs: list[EstateSpec]) -> str:
    """Compare the open alerts with the simulator's ground truth: hits, misses, false alerts, delay."""
    truth = {u.unit_id: u for spec in specs for u in spec.units}
    expected = {"vacancy": "vacant", "sublet": "sublet"}
    with psycopg.connect(database_url) as conn:
        alerts = conn.execute("SELECT unit_id, kind, first_flagged FROM alerts").fetchall()
    parts = []
    for kind, behaviour in expected.items():
        actual = {u for u, b in truth.items() if b.behaviour == behaviour}
        flagged = {a[0]: a[2] for a in alerts if a[1] == kind}
        hits = actual & flagged.keys()
        delays = sorted(
            (flagged[u] - (SIM_START + timedelta(days=truth[u].onset_day or 0)).date()).days for u in hits
        )
        median = f"{delays[len(delays) // 2]} d" if delays else "n/a"
        parts.append(f"{kind}: {len(hits)}/{len(actual)} found, {len(flagged.keys() - actual)} false, "
                     f"median delay from onset {median}")
    return "; ".join(parts)


def summary_line(database_url: str) -> str:
    """The demo's last line: units, readings, events, alerts per kind, cases filed."""
    from anju.hub.cases.queries import summary_counts

    with psycopg.connect(database_url) as conn:
        c = summary_counts(conn)
    return (
        f"units={c['units']} readings={c['readings']} events={c['events']} "
        f"alerts_vacancy={c['alerts_vacancy']} alerts_sublet={c['alerts_sublet']} "
        f"cases_filed={c['cases_filed']}"
    )


def run_demo(opts: DemoOptions) -> int:
    """Run the demo; in headless mode return after printing the summary."""
    from anju.device_sims.household import make_estate
    from anju.device_sims.site import site_config, units_registry
    from anju.hub.settings import default_home
    from anju.hub.storage import ensure_schema, upsert_units

    if opts.units > 46:
        raise SystemExit("at most 46 units per estate (Modbus device ids 1..246 per simulated server)")
    wall_start = time.monotonic()
    home = default_home()
    run_dir = home / "demo"
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "logs").mkdir(parents=True)
    say(f"working directory {run_dir}")

    database_url = _demo_database(home)
    say("database ready" + (" (ANJU_DATABASE_URL)" if os.environ.get("ANJU_DATABASE_URL") else " (embedded)"))
    estate_ids = [f"E{i + 1:02d}" for i in range(opts.estates)]
    specs = [
        make_estate(e, n_units=opts.units, days=opts.days, start=SIM_START, seed=opts.seed + i)
        for i, e in enumerate(estate_ids)
    ]
    with psycopg.connect(database_url) as conn:
        ensure_schema(conn)
        for spec in specs:
            upsert_units(conn, units_registry(spec))
        logins = _demo_users(conn, estate_ids)
        conn.commit()
    (run_dir / "logins.txt").write_text("".join(f"{n} {p} ({what})\n" for n, p, what in logins))
    (run_dir / "logins.txt").chmod(0o600)

    procs = Processes(run_dir / "logs")
    with ExitStack() as stack:
        stack.callback(procs.stop_all)
        if os.environ.get("ANJU_MQTT_URL"):
            broker = Broker(os.environ["ANJU_MQTT_URL"], "external", shared_subscriptions=True)
        else:
            broker = stack.enter_context(local_broker(run_dir))
        say(f"broker: {broker.name} at {broker.url}")

        tenancy_port = free_port()
        tenancy_url = f"http://127.0.0.1:{tenancy_port}"
        procs.start("tenancy", ["sim", "tenancy", "--port", str(tenancy_port)])
        wait_port("127.0.0.1", tenancy_port, timeout=30)

        speed = opts.days * 86400 / opts.wall_seconds
        clock = AcceleratedClock(origin_wall=time.time() + 6.0, origin_sim=SIM_START, speed=speed)
        agent_env: dict[str, dict[str, str]] = {}
        for spec in specs:
            est = spec.estate_id
            modbus_port = free_port()
            procs.start(f"sim-{est}", [
                "sim", "estate", "--estate", est, "--units", str(opts.units), "--days", str(opts.days),
                "--seed", str(opts.seed + estate_ids.index(est)), "--start", SIM_START.isoformat(),
                "--modbus-port", str(modbus_port), "--mqtt-url", broker.url,
                "--origin-wall", repr(clock.origin_wall), "--speed", repr(speed),
            ])
            agent_id = f"{est}-gw1"
            agent_env[est] = {"ANJU_PSEUDONYM_SECRET": secrets.token_hex(32), "ANJU_MQTT_URL": broker.url}
            site = site_config(
                spec, agent_id=agent_id, modbus_host="127.0.0.1", modbus_port=modbus_port,
                mqtt_url=broker.url, outbox_path=str(run_dir / f"{agent_id}-outbox.sqlite"), clock=clock,
            )
            if est == estate_ids[0]:  # its building entrances also have cameras, with real faces
                site.update(demo_camera(procs, spec, seed=opts.seed, clock=clock))
            site_path = run_dir / f"site-{est}.yaml"
            site_path.write_text(yaml.safe_dump(site, sort_keys=False, allow_unicode=True))
            wait_port("127.0.0.1", modbus_port, timeout=30)
            procs.start(f"agent-{est}", ["agent", "--config", str(site_path)], env=agent_env[est])

        hub_env = {
            "ANJU_DATABASE_URL": database_url,
            "ANJU_MQTT_URL": broker.url,
            "ANJU_TENANCY_URL": tenancy_url,
            "ANJU_HTTP_PORT": str(opts.http_port),
            "ANJU_SHARE_GROUP": "anju-hub" if broker.shared_subscriptions else "",
            "ANJU_ESTATE_TZ": ESTATE_TZ,  # the simulated households live in ESTATE_TZ: the hub's days too
        }
        procs.start("hub", ["hub"], env=hub_env)
        wait_port("127.0.0.1", opts.http_port, timeout=60)
        say(f"inspector page: http://127.0.0.1:{opts.http_port}/  (API docs: /docs)")
        for name, password, what in logins:
            say(f"  log in as {name} / {password}  ({what})")
        say(f"simulating {len(specs)} estates x {opts.units} units x {opts.days} days "
            f"in about {opts.wall_seconds:.0f} s (1 s = {speed / 3600:.1f} simulated hours)")

        end_sim = SIM_START + timedelta(days=opts.days)
        with psycopg.connect(database_url, autocommit=True) as conn:
            while time.time() < clock.wall_at(end_sim):
                procs.check_alive()
                time.sleep(min(10.0, max(0.5, clock.wall_at(end_sim) - time.time())))
                now = min(clock.now(), end_sim)
                say(f"simulated {now:%Y-%m-%d %H:%M}: "
                    f"{_count(conn, 'SELECT count(*) FROM meter_readings')} readings, "
                    f"{_count(conn, 'SELECT count(*) FROM access_events')} access events stored")
            # The period is over: stop reading meters, then let each agent publish what its durable
            # outbox still holds and exit once the hub has acknowledged all of it.
            for est in estate_ids:
                procs.stop(f"agent-{est}")
                procs.stop(f"sim-{est}")
            say("simulated period over; draining the agents' outboxes")
            for est in estate_ids:
                site_path = run_dir / f"site-{est}.yaml"
                args = ["agent", "--config", str(site_path), "--drain"]
                procs.start(f"drain-{est}", args, env=agent_env[est])
            for est in estate_ids:
                code = procs.wait(f"drain-{est}", timeout=180)
                if code != 0:
                    logdir = run_dir / "logs"
                    raise RuntimeError(f"draining {est}'s outbox failed ({code}); see logs in {logdir}")
            procs.stop("hub")
            readings = _count(conn, "SELECT count(*) FROM meter_readings WHERE quality = 'ok'")
            span = conn.execute(
                "SELECT extract(epoch FROM max(received_at) - min(received_at)) FROM meter_readings"
            ).fetchone()
        say("final detection pass and filing")
        _final_pass(database_url, tenancy_url, as_of=(end_sim - timedelta(days=1)).date())
        with httpx.Client(timeout=10) as http:
            received = len(http.get(f"{tenancy_url}/api/v1/cases").json()["cases"])
        wall = time.monotonic() - wall_start
        rate = readings / float(span[0]) if span and span[0] else 0.0
        say(f"tenancy stand-in received {received} cases")
        say("against the simulated ground truth: " + truth_report(database_url, specs))
        say(f"wall time {wall:.0f} s; hub stored {readings} meter readings at {rate:.0f} readings/s")
        line = summary_line(database_url)
        if not opts.headless:
            procs.start("hub", ["hub"], env=hub_env)
            wait_port("127.0.0.1", opts.http_port, timeout=60)
            say(f"done. Inspector page: http://127.0.0.1:{opts.http_port}/  (Ctrl-C to stop); "
                f"logins in {run_dir / 'logins.txt'}")
            print(line, flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                say("stopping")
        print(line, flush=True)
    return 0
