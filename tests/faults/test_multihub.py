"""Three hubs on one PostgreSQL and one Mosquitto while agents publish: the active pipeline hub and an
ingest hub are SIGKILLed and restarted. Nothing is lost or stored twice, nothing opened or filed twice,
and the standby pipeline takes over within one lease period.

Hubs ``a`` and ``b`` run ``--role ingest,pipeline``, hub ``c`` ``--role api,ingest``; all three share the
agents' messages (one MQTT 5 share group). The database holds a small labelled scenario (the eval's
household generator: vacant and sublet flats among normal ones), so each detection run flags the same
units, and every case is filed as it opens (``ANJU_AUTO_FILE``) to the tenancy stand-in, which here
ignores Idempotency-Key: a filing sent twice would be stored twice. Meanwhile the test, as inspectors
would through the API, opens further auto-filed cases, so filings are in flight when the holder dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from anju.hub.bulk import BulkImport, import_all
from anju.hub.cases.service import open_case
from anju.hub.storage import upsert_units
from anju.hub.storage.rollups import refresh_daily_features
from anju_wire.clock import ESTATE_TZ
from tests.faults.harness import (
    RestartableMosquitto,
    make_agents,
    meter_fleet,
    prepare_database,
    readings_in_db,
    tally,
    wait_for,
)
from tests.hub.test_tenancy import serve
from tests.services import free_port, wait_port

pytestmark = pytest.mark.integration

LEASE_S = 3.0  # the pipeline lease of the test's hubs (ANJU_PIPELINE_LEASE_S)
# What a takeover may add to the lease period: the standby's wake-up after the expiry (20 ms) and its
# UPDATE, on a loaded 2-core machine.
TAKEOVER_SLACK_S = 0.5
AUDIT_KEY = "fault-test-key-" + "f" * 40


@pytest.fixture(autouse=True)
def audit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same audit key in the test (it opens cases) and in every hub: one chain."""
    monkeypatch.setenv("ANJU_AUDIT_KEY", AUDIT_KEY)


@dataclass
class HubProcess:
    """``anju hub --role ...`` as a child process, killed and restarted under the same hub id."""

    hub_id: str
    role: str
    env: dict[str, str]
    log: Path
    http_port: int
    proc: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)

    def start(self) -> None:
        """Start (or restart) the hub."""
        assert self.proc is None or self.proc.poll() is not None
        env = {**os.environ, **self.env, "ANJU_HUB_ID": self.hub_id, "ANJU_HTTP_PORT": str(self.http_port),
               "ANJU_HOME": str(self.log.parent / f"home-{self.hub_id}")}  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "anju.cli", "hub", "--role", self.role],
                                         stdout=out, stderr=subprocess.STDOUT, env=env)  # fmt: skip
        self.starts.append(time.monotonic())

    def running(self) -> bool:
        """Whether the process runs and has said so in its log."""
        alive = self.proc is not None and self.proc.poll() is None
        return alive and b"this hub runs" in self.log.read_bytes()

    def kill(self) -> None:
        """SIGKILL: no release of the lease, no clean MQTT disconnect."""
        assert self.proc is not None and self.proc.poll() is None, self.tail()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int | None:
        """SIGTERM and wait; the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return -9

    def tail(self, lines: int = 40) -> str:
        """The end of its log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.hub_id}\n" + "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class LeaseRow:
    """The pipeline row of hub_leases."""

    holder: str | None
    epoch: int
    acquired_at: datetime | None
    renewed_at: datetime | None


def lease_row(database_url: str) -> LeaseRow | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT holder, epoch, acquired_at, renewed_at FROM hub_leases"
                           " WHERE name = 'pipeline'").fetchone()  # fmt: skip
    return LeaseRow(*row) if row else None


def seed_scenario(database_url: str, workdir: Path) -> int:
    """A labelled 90-day scenario of 16 abnormal and 16 normal flats, imported and rolled up; returns the
    number of abnormal units (the generator's truth)."""
    from anju.device_sims.scenarios import make_scenario, write_scenario

    base = make_scenario(n_units=400, days=90, seed=3)
    abnormal = [u for u in base.units if u.kind != "normal"][:16]
    normal = [u for u in base.units if u.subtype == "normal"][:16]
    scenario = replace(base, units=tuple(abnormal + normal), silent_gates={})
    directory = workdir / "scenario"
    directory.mkdir()
    files = write_scenario(scenario, directory)
    with psycopg.connect(database_url) as conn:
        import_all(conn, BulkImport(units=files.units, readings=files.readings, access=files.access),
                   rejects_path=directory / "rejects.csv", tz=ESTATE_TZ, progress=False)  # fmt: skip
        refresh_daily_features(conn, tz=ESTATE_TZ)
        conn.execute("TRUNCATE bulk_stale_days")
        conn.commit()
    return len(abnormal)


class Inspectors:
    """Opens an auto-filed case every ``every_s`` on units of its own, as confirmations through the API
    would: filings keep flowing through the kill and the takeover."""

    def __init__(self, database_url: str, estate: str, *, count: int, every_s: float) -> None:
        self._url = database_url
        self._estate = estate
        self._count = count
        self._every = every_s
        self._stop = threading.Event()
        self.opened = 0
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="inspectors", daemon=True)
        with psycopg.connect(database_url) as conn:
            upsert_units(conn, [{"unit_id": self.unit(i), "estate_id": estate} for i in range(count)])
            conn.commit()

    def unit(self, i: int) -> str:
        return f"{self._estate}-C{i:04d}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        try:
            with psycopg.connect(self._url) as conn:
                for i in range(self._count):
                    if self._stop.wait(self._every):
                        return
                    row = conn.execute(
                        "INSERT INTO alerts (unit_id, estate_id, kind, score, first_flagged, last_flagged,"
                        " rule_version, window_start, window_end) VALUES (%s, %s, 'vacancy', 0.9,"
                        " '2026-03-01', '2026-03-01', 'rules-1', '2026-02-01', '2026-03-01') RETURNING id",
                        (self.unit(i), self._estate),
                    ).fetchone()
                    assert row is not None
                    open_case(conn, alert_id=row[0], unit_id=self.unit(i), estate_id=self._estate,
                              kind="vacancy", summary=f"confirmed {i}", auto_file=True,
                              evidence={"reasons": [{"code": "inspector", "text": "seen"}], "n": i})
                    conn.commit()
                    self.opened += 1
        except (psycopg.Error, AssertionError) as err:  # reported by the test, which asserts it is None
            self.error = err


def counts(conn: psycopg.Connection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute(sql.encode()).fetchall()]


def scalar(conn: psycopg.Connection, sql: str) -> int:
    row = conn.execute(sql.encode()).fetchone()
    assert row is not None
    return int(row[0])


def test_three_hubs_survive_the_pipeline_holder_and_an_ingest_hub_being_killed(
    broker: RestartableMosquitto, database_url: str, tmp_path: Path
) -> None:
    from anju.device_sims.tenancy import create_app

    started = time.monotonic()
    estate = "FM" + uuid.uuid4().hex[:6]
    prepare_database(database_url, estate=estate, units=16)
    flagged_truth = seed_scenario(database_url, tmp_path)
    inspectors = Inspectors(database_url, estate, count=60, every_s=0.3)
    origin = time.time()
    fleet_port = free_port()
    agents = make_agents(
        estate=estate, count=2, units_each=8, broker_url=broker.url, fleet_port=fleet_port,
        origin_wall=origin, workdir=tmp_path,
    )  # fmt: skip
    with ExitStack() as stack:
        tenancy = stack.enter_context(serve(create_app(honour_keys=False)))
        env = {
            "ANJU_DATABASE_URL": database_url, "ANJU_MQTT_URL": broker.url,
            "ANJU_SHARE_GROUP": "g" + uuid.uuid4().hex[:8], "ANJU_PIPELINE_LEASE_S": str(LEASE_S),
            "ANJU_DETECT_INTERVAL_S": "5", "ANJU_FILING_INTERVAL_S": "0.2", "ANJU_TENANCY_URL": tenancy,
            "ANJU_TENANCY_TIMEOUT_S": "0.5", "ANJU_SMS_URL": f"http://127.0.0.1:{free_port()}",
            "ANJU_AUTO_FILE": "true", "ANJU_AUDIT_KEY": AUDIT_KEY,
        }  # fmt: skip
        hubs = {
            name: HubProcess(hub_id=f"hub-{name}", role=role, env=env, log=tmp_path / f"hub-{name}.log",
                             http_port=free_port())
            for name, role in (("a", "ingest,pipeline"), ("b", "ingest,pipeline"), ("c", "api,ingest"))
        }  # fmt: skip

        def logs() -> str:
            return "\n".join(h.tail() for h in hubs.values())

        for hub in hubs.values():
            hub.start()
            stack.callback(hub.terminate)
        stack.enter_context(meter_fleet(fleet_port, units=16, origin_wall=origin, workdir=tmp_path))
        wait_for(lambda: all(h.running() for h in hubs.values()), 40, "three hubs running")
        wait_port("127.0.0.1", hubs["c"].http_port, timeout=20)
        for a in agents:
            a.start()
            stack.callback(a.terminate)
        inspectors.start()
        stack.callback(inspectors.stop)
        # The first holder has run detection and filed its cases: the scenario's alerts are open.
        wait_for(lambda: readings_in_db(database_url) > 50, 30, "first readings in the database")
        with psycopg.connect(database_url, autocommit=True) as conn:
            wait_for(lambda: scalar(conn, "SELECT count(*) FROM tenancy_outbox WHERE state = 'sent'"
                                    " AND case_id IN (SELECT id FROM cases WHERE estate_id LIKE 'S%')")
                     > 0, 40, "the first holder's filings")  # fmt: skip
        time.sleep(1)
        before = lease_row(database_url)
        assert before is not None and before.holder is not None and before.epoch == 1, before
        active = next(n for n in ("a", "b") if before.holder.startswith(f"hub-{n}:"))
        standby = "b" if active == "a" else "a"

        with psycopg.connect(database_url) as conn:
            sent_before_kill = scalar(conn, "SELECT count(*) FROM tenancy_outbox WHERE state = 'sent'")
        killed_at = time.time()
        hubs[active].kill()
        hubs["c"].kill()  # the API and ingest hub: ingest now rests on the standby alone
        time.sleep(0.2)  # a renewal the dead holder had sent lands now, if at all
        last = lease_row(database_url)
        assert last is not None and last.holder == before.holder, (before, last)
        wait_for(lambda: (r := lease_row(database_url)) is not None and r.epoch == 2, 2 * LEASE_S + 5,
                 "the standby's takeover")  # fmt: skip
        taken = lease_row(database_url)
        assert taken is not None and taken.acquired_at is not None and last.renewed_at is not None
        assert taken.holder is not None and taken.holder.startswith(f"hub-{standby}:"), taken
        since_kill = taken.acquired_at.timestamp() - killed_at
        since_renewal = (taken.acquired_at - last.renewed_at).total_seconds()
        print(f"\ntakeover: {since_kill:.2f} s after the SIGKILL, {since_renewal:.2f} s after the dead "
              f"holder's last renewal (lease {LEASE_S} s)")
        time.sleep(2)  # the standby works alone for a while
        hubs[active].start()
        hubs["c"].start()
        wait_for(lambda: hubs[active].running() and hubs["c"].running(), 40, "the killed hubs back")
        wait_port("127.0.0.1", hubs["c"].http_port, timeout=20)
        assert httpx.get(f"http://127.0.0.1:{hubs['c'].http_port}/api/health").status_code in (200, 503)
        time.sleep(2)
        inspectors.stop()
        assert inspectors.error is None, inspectors.error
        for a in agents:
            a.terminate()
        for a in agents:
            a.drain(60)
        with psycopg.connect(database_url, autocommit=True) as conn:
            try:
                wait_for(lambda: scalar(conn, "SELECT count(*) FROM tenancy_outbox WHERE state <> 'sent'")
                         == 0, 60, "every filing sent")  # fmt: skip
            except AssertionError:
                print(counts(conn, "SELECT state, attempts, last_error, next_attempt_at FROM tenancy_outbox"
                                   " WHERE state <> 'sent' LIMIT 5"), logs())  # fmt: skip
                raise
        after = lease_row(database_url)
        for name in (active, "c", standby):  # the holder last: a clean stop hands the lease over
            assert hubs[name].terminate() == 0, logs()
        filings = httpx.get(f"{tenancy}/api/v1/cases").json()["cases"]

    tallies = tally(database_url, agents)
    for t in tallies:
        print("  " + t.line())
    for t in tallies:
        assert t.produced > 0 and t.waiting == 0 and t.rejected == 0, t.line()
        assert t.missing == 0 and t.unexpected == 0, t.line()
        assert t.rows == t.distinct_seqs == t.produced, t.line()
    with psycopg.connect(database_url) as conn:
        scenario_alerts = scalar(conn, "SELECT count(*) FROM alerts WHERE estate_id LIKE 'S%'")
        assert counts(conn, "SELECT unit_id, kind FROM alerts GROUP BY 1, 2 HAVING count(*) > 1") == []
        assert counts(conn, "SELECT alert_id FROM cases GROUP BY 1 HAVING count(*) > 1") == []
        opened = Counter(r[0] for r in counts(conn, "SELECT action FROM audit_log WHERE action IN"
                                              " ('alert.opened', 'case.opened')"))  # fmt: skip
        n_alerts = scalar(conn, "SELECT count(*) FROM alerts")
        n_cases = scalar(conn, "SELECT count(*) FROM cases")
        refs = {str(r[0]) for r in counts(conn, "SELECT payload->>'case_ref' FROM tenancy_outbox"
                                               " WHERE kind = 'filing'")}  # fmt: skip
        outbox = counts(conn, "SELECT state, count(*) FROM tenancy_outbox GROUP BY 1")
    by_ref = Counter(str(f["case_ref"]) for f in filings)
    print(f"  scenario: {flagged_truth} abnormal units, {scenario_alerts} alerts; inspectors opened "
          f"{inspectors.opened}; alerts={n_alerts} cases={n_cases} audit={dict(opened)}; outbox={outbox}; "
          f"filings received={len(filings)} distinct={len(by_ref)}, {sent_before_kill} before the kill; "
          f"lease after restarts: epoch {after.epoch if after else None}; "
          f"test {time.monotonic() - started:.0f} s")
    assert scenario_alerts > 0  # detection flagged the scenario's flats
    assert opened["alert.opened"] == n_alerts - inspectors.opened  # the inspectors' alerts are not audited
    assert opened["case.opened"] == n_cases
    assert [ref for ref, n in by_ref.items() if n > 1] == [], "a filing was sent twice"
    assert set(by_ref) == refs and len(filings) == n_cases, "every case filed once"
    assert n_cases > sent_before_kill, "the new holder filed too"
    # Each holder worked in its own term only: the standby never before the takeover, the restarted hub
    # not at all (it stands by: no term was taken from a live holder).
    terms = {n: [line for line in h.log.read_text().splitlines() if "pipeline active (lease epoch" in line]
             for n, h in hubs.items()}  # fmt: skip
    assert [len(terms[active]), len(terms[standby]), len(terms["c"])] == [1, 1, 0], terms
    assert "epoch 1)" in terms[active][0] and "epoch 2)" in terms[standby][0], terms
    assert after is not None and after.epoch == 2 and after.holder == taken.holder, (taken, after, logs())
    assert since_renewal <= LEASE_S + TAKEOVER_SLACK_S, logs()
    assert since_kill <= LEASE_S + TAKEOVER_SLACK_S, logs()
