"""End to end through real processes: simulated meters and gates -> agent -> Mosquitto -> hub -> PostgreSQL
-> detection -> case filed in the tenancy stand-in. Runs ``anju demo --headless`` at a small size."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from anju.services import free_port

pytestmark = pytest.mark.integration

SUMMARY = re.compile(
    r"^units=(\d+) readings=(\d+) events=(\d+) alerts_vacancy=(\d+) alerts_sublet=(\d+) cases_filed=(\d+)$"
)


def test_demo_pipeline_flags_the_simulated_vacant_and_sublet_units(
    database_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    from anju.device_sims.household import make_estate

    env = {
        **os.environ,
        "ANJU_DATABASE_URL": database_url,
        "ANJU_MQTT_URL": mqtt_url,
        "ANJU_HOME": str(tmp_path / "home"),
        # Leads filed as they open (a city's choice; by default only a confirmation files), so that the
        # run reaches the tenancy stand-in without an inspector.
        "ANJU_AUTO_FILE": "true",
    }
    # 100 s for 70 days (1 simulated hour = 60 ms) leaves the agent slack to poll every meter hourly
    # even on a busy 2-core machine; fewer than 12 hourly readings make a day "unknown", never "empty".
    units, days, seed = 12, 70, 11
    proc = subprocess.run(
        [sys.executable, "-m", "anju.cli", "demo", "--headless", "--estates", "1", "--units", str(units),
         "--days", str(days), "--wall-seconds", "100", "--seed", str(seed), "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=400,
    )
    logs = tmp_path / "home" / "demo" / "logs"
    detail = proc.stdout[-3000:] + proc.stderr[-3000:] + "".join(
        f"\n--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(logs.glob("*.log"))
    ) if logs.exists() else proc.stdout + proc.stderr
    assert proc.returncode == 0, detail
    last = proc.stdout.strip().splitlines()[-1]
    m = SUMMARY.match(last)
    assert m, f"last line is not the summary: {last!r}\n{detail}"
    n_units, readings, events, vacancy, sublet, filed = map(int, m.groups())
    assert n_units == units
    assert readings > units * 3 * days * 12, "most hourly polls should have been stored"
    assert events > 0

    spec = make_estate("E01", n_units=units, days=days,
                       start=datetime(2026, 3, 1, tzinfo=ZoneInfo("Asia/Shanghai")), seed=seed)
    truth = {u.unit_id: u.behaviour for u in spec.units}
    with psycopg.connect(database_url) as conn:
        flagged = conn.execute("SELECT unit_id, kind FROM alerts WHERE status = 'open'").fetchall()
        sent = conn.execute(
            "SELECT count(*) FROM tenancy_outbox WHERE state = 'sent' AND response_status IN (200, 201)"
        ).fetchone()
    vacant = {u for u, b in truth.items() if b == "vacant"}
    sublet_units = {u for u, b in truth.items() if b == "sublet"}
    assert vacant and sublet_units
    assert {u for u, k in flagged if k == "vacancy"} == vacant, detail
    assert {u for u, k in flagged if k == "sublet"} == sublet_units, detail
    assert vacancy == len(vacant) and sublet == len(sublet_units)
    assert sent is not None and sent[0] == filed == vacancy + sublet
