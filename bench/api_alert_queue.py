"""Benchmark: alert-queue latency of the inspector API (and the alert list page) at 100,000 alerts.

Seeds units, alerts (with reasons and four weeks of evidence each), cases and their tenancy filings with
COPY into PostgreSQL (embedded unless ANJU_DATABASE_URL is set), serves the hub's app with uvicorn in a
separate process (one worker), signs in an inspector (one estate) and a supervisor (a district of five
estates), then sends sequential requests from one client on loopback with the filters inspectors use:
estate, kind, status, age (days since first flagged), and the three orders (risk, oldest, newest).
Alerts are first flagged between about 10 and 330 days before today, so that the age filters select.
Prints p50/p99 per request kind and overall, and the conditions.

    .venv/bin/python bench/api_alert_queue.py [--alerts 100000] [--requests 5100] [--estates 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import psycopg

from anju.hub.auth.service import add_user
from anju.hub.storage import ensure_schema
from anju.hub.storage.embedded import throwaway_database

PASSWORD = secrets.token_urlsafe(16)  # the throwaway bench users' password, fresh each run
STREETS = ("和平路", "幸福街", "建设大道", "人民路", "解放街", "光明巷", "新华路")
ADDRESS_Q = "%E5%92%8C%E5%B9%B3%E8%B7%AF%2012"  # "和平路 12": part of some units' addresses


def address(n: int) -> str:
    """A street address for the n-th unit."""
    return f"{STREETS[n % len(STREETS)]} {n % 400 + 1} 号 {n % 7 + 1} 单元 {n % 30 + 1:02d}01"


def _evidence(rng: random.Random, start: date) -> str:
    """Four weeks of daily series, as the detectors freeze them into an alert."""
    days = [(start + timedelta(days=i)).isoformat() for i in range(28)]
    return json.dumps({
        "days": days,
        "electricity": [round(rng.uniform(0.2, 8.0), 2) for _ in days],
        "water": [round(rng.uniform(0.0, 0.4), 3) for _ in days],
        "gas": [round(rng.uniform(0.0, 0.6), 3) for _ in days],
        "tenant_entries": [rng.randint(0, 4) for _ in days],
        "strangers": [rng.randint(0, 2) for _ in days],
    })


def seed(conn: psycopg.Connection, *, alerts: int, estates: int, seed_value: int = 7) -> dict[str, int]:
    """Units (one per two alerts), alerts (a vacancy and a sublet per unit, about a third open), a case
    for one alert in five with its filing; all with COPY. Returns the row counts."""
    rng = random.Random(seed_value)
    start = date.today() - timedelta(days=320)  # ages relative to the server's today, as the queue's are
    n_units = alerts // 2
    reasons = json.dumps([
        {"code": "electricity_base_load", "text": "median electricity over the last 21 days is at base load",
         "value": 0.3, "baseline": 6.1, "unit": "kWh/day"},
        {"code": "no_tenant_entries", "text": "no registered tenant entry for 21 days", "value": 0,
         "baseline": 3.0, "unit": "entries/day"},
    ])
    evidences = [_evidence(rng, start) for _ in range(64)]  # reused: the size matters, not the values
    units = [(f"E{u % estates + 1:02d}-{u // 1000 % 10}-{u:06d}", f"E{u % estates + 1:02d}")
             for u in range(n_units)]
    with conn.cursor() as cur:
        with cur.copy("COPY units (unit_id, estate_id, building, floor, area_m2, household_size, lease_start,"
                      " address) FROM STDIN") as cp:
            for n, (unit_id, estate) in enumerate(units):
                cp.write_row((unit_id, estate, str(rng.randint(1, 9)), rng.randint(1, 30), 45.0, 2,
                              start - timedelta(days=rng.randint(30, 2000)),
                              address(n)))
        alert_rows = 0
        with cur.copy("COPY alerts (unit_id, estate_id, kind, status, score, first_flagged, last_flagged,"
                      " reasons, evidence, rule_version, window_start, window_end) FROM STDIN") as cp:
            for unit_id, estate in units:
                for kind in ("vacancy", "sublet"):
                    last = start + timedelta(days=rng.randint(0, 300))
                    cp.write_row((unit_id, estate, kind, "open" if rng.random() < 0.35 else "closed",
                                  round(rng.random(), 4), last - timedelta(days=rng.randint(0, 20)), last,
                                  reasons, rng.choice(evidences), "rules-1", last - timedelta(days=27), last))
                    alert_rows += 1
        cur.execute("ANALYZE alerts")
        # A case for one alert in five; open alerts get an active case, closed ones a closed case.
        cur.execute(
            "INSERT INTO cases (unit_id, estate_id, kind, alert_id, status, opened_at, evidence,"
            " evidence_sha256, alert_ids, filed_at)"
            " SELECT unit_id, estate_id, kind, id, CASE WHEN status = 'open' THEN 'open' ELSE 'closed' END,"
            "        last_flagged::timestamptz, '{}'::jsonb, repeat('ab', 32), ARRAY[id],"
            "        CASE WHEN status = 'closed' THEN last_flagged::timestamptz END"
            " FROM alerts WHERE id % 5 = 0"
        )
        cases = cur.rowcount
        # Half the active cases assigned to one of two inspectors, a third of those with a visit day
        # gone by (overdue).
        cur.execute(
            "UPDATE cases SET status = 'assigned', assignee = CASE WHEN hashtext(unit_id) & 3 = 0"
            " THEN 'bench-insp' ELSE 'bench-insp2' END, visit_on = CASE WHEN hashtext(unit_id || 'v') % 3 = 0"
            " THEN current_date - 5 END WHERE status = 'open' AND hashtext(kind || unit_id) & 1 = 0"
        )
        cur.execute(
            "INSERT INTO tenancy_outbox (case_id, idempotency_key, payload, state, attempts, sent_at,"
            " response_status)"
            " SELECT id, 'anju-case-' || id, '{}'::jsonb, CASE WHEN id % 50 = 0 THEN 'dead' ELSE 'sent' END,"
            "        1, now(), 201 FROM cases"
        )
    conn.commit()
    return {"units": n_units, "alerts": alert_rows, "cases": cases}


def serve(url: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The hub's app under uvicorn (one worker) in its own process, so the client does not share its GIL."""
    code = (
        "import sys, uvicorn\n"
        "from anju.hub.api.app import create_app\n"
        "uvicorn.run(create_app(database_url=sys.argv[1]), host='127.0.0.1', port=int(sys.argv[2]),"
        " log_level='warning')\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, url, str(port)], env=env)


def wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    """Until the app answers its health check."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not start in 60 s")


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] * 1000


def main() -> None:
    """Seed, serve, measure, print."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--alerts", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=8100)  # 300 of each of the 27 kinds
    ap.add_argument("--estates", type=int, default=20)
    ap.add_argument("--page-requests", type=int, default=900)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp, \
            throwaway_database(Path(tmp), "bench") as url:
        env = {**os.environ, "ANJU_HOME": tmp, "ANJU_AUDIT_KEY": "bench-audit-key-" + "b" * 32}
        os.environ.update({k: env[k] for k in ("ANJU_HOME", "ANJU_AUDIT_KEY")})
        with psycopg.connect(url) as conn:
            ensure_schema(conn)
            conn.commit()
            t0 = time.perf_counter()
            counts = seed(conn, alerts=args.alerts, estates=args.estates)
            seed_s = time.perf_counter() - t0
            district = [f"E{i:02d}" for i in range(1, 6)]
            add_user(conn, name="bench-insp", role="inspector", password=PASSWORD, estates=["E01"])
            add_user(conn, name="bench-insp2", role="inspector", password=PASSWORD, estates=district)
            add_user(conn, name="bench-sup", role="supervisor", password=PASSWORD, estates=district)
            add_user(conn, name="bench-adm", role="admin", password=PASSWORD)
            conn.commit()
            # As autovacuum would soon after a bulk load: statistics and the visibility map, without
            # which no index-only scan avoids the heap.
            conn.autocommit = True
            for table in ("units", "alerts", "cases", "tenancy_outbox"):
                conn.execute(f"VACUUM ANALYZE {table}")
            pg_version = conn.execute("SHOW server_version").fetchone()
        print(f"seeded {counts} in {seed_s:.1f} s (COPY for units and alerts), then VACUUM ANALYZE")

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = serve(url, port, env)
        try:
            wait_up(base, proc)
            results = measure(base, requests=args.requests, page_requests=args.page_requests,
                              district=district)
        finally:
            proc.terminate()
            proc.wait(10)

    print(f"\nalert queue at {counts['alerts']:,} alerts ({counts['units']:,} units,"
          f" {counts['cases']:,} cases, {args.estates} estates)")
    print(f"{'request':58s} {'n':>5s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}")
    everything: list[float] = []
    api_only: list[float] = []
    for label, times in results.items():
        everything += times
        if label.startswith("api"):
            api_only += times
        print(f"{label:58s} {len(times):5d} {pct(times, 50):8.1f} {pct(times, 99):8.1f}"
              f" {max(times) * 1000:8.1f}")
    print(f"{'all API requests':58s} {len(api_only):5d} {pct(api_only, 50):8.1f} {pct(api_only, 99):8.1f}"
          f" {max(api_only) * 1000:8.1f}")
    verdict = "meets" if pct(api_only, 99) < 100 else "MISSES"
    print(f"API p99 {pct(api_only, 99):.1f} ms {verdict} the 100 ms target; mean"
          f" {statistics.fmean(api_only) * 1000:.1f} ms")
    database = "ANJU_DATABASE_URL" if os.environ.get("ANJU_DATABASE_URL") else "embedded"
    print(f"conditions: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()},"
          f" PostgreSQL {pg_version[0] if pg_version else '?'} ({database}),"
          " uvicorn 1 worker in its own process, one sequential httpx client on loopback, keep-alive,"
          " 50 alerts per page, requests shuffled with a fixed seed after 50 warm-up requests")


def queue_kinds(base: str, tokens: dict[str, str]) -> list[tuple[str, str, str]]:
    """The issue-14 queue requests: keyset pages (cursors taken from a first walk), the case filters
    (assignee, state, overdue) and the address search."""
    def cursor(user: str, path: str) -> int:
        r = httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {tokens[user]}"}, timeout=30)
        r.raise_for_status()
        items = r.json()["items"] or [{"id": 1}]  # a small run (--alerts) has no row 5000
        return int(items[-1]["id"])

    deep = cursor("bench-sup", "/api/alerts?status=closed&offset=4950&limit=50")
    deep_old = cursor("bench-sup", "/api/alerts?sort=oldest&offset=4950&limit=50")
    second = cursor("bench-insp", "/api/alerts?status=open")
    return [
        ("api inspector: open alerts, keyset page 2", "bench-insp",
         f"/api/alerts?status=open&after={second}"),
        ("api inspector: open alerts, keyset back to page 1", "bench-insp",
         f"/api/alerts?status=open&before={second}"),
        ("api supervisor: closed, keyset after row 5000", "bench-sup",
         f"/api/alerts?status=closed&after={deep}"),
        ("api supervisor: all, oldest first, keyset after row 5000", "bench-sup",
         f"/api/alerts?sort=oldest&after={deep_old}"),
        ("api supervisor: cases of one inspector", "bench-sup", "/api/alerts?assignee=bench-insp2"),
        ("api supervisor: assigned and overdue", "bench-sup", "/api/alerts?state=assigned&overdue=true"),
        ("api inspector: my cases, oldest first", "bench-insp", "/api/alerts?mine=true&sort=oldest"),
        ("api admin: open, case state open, by risk", "bench-adm", "/api/alerts?status=open&state=open"),
        ("api inspector: search by unit id", "bench-insp", "/api/alerts?status=all&unit=0012"),
        ("api supervisor: search by address", "bench-sup", f"/api/alerts?unit={ADDRESS_Q}"),
    ]


def measure(base: str, *, requests: int, page_requests: int, district: list[str]) -> dict[str, list[float]]:
    """Sequential timed requests, kinds interleaved at random; returns seconds per request kind."""
    tokens = {}
    for name in ("bench-insp", "bench-insp2", "bench-sup", "bench-adm"):
        r = httpx.post(f"{base}/api/auth/login", json={"name": name, "password": PASSWORD}, timeout=30)
        r.raise_for_status()
        tokens[name] = r.json()["token"]
    kinds: list[tuple[str, str, str]] = [
        ("api inspector: open alerts (default queue)", "bench-insp", "/api/alerts?status=open"),
        ("api inspector: open sublet alerts", "bench-insp", "/api/alerts?status=open&kind=sublet"),
        ("api inspector: all alerts, page 3", "bench-insp", "/api/alerts?offset=100"),
        ("api inspector: own estate, closed vacancy", "bench-insp",
         "/api/alerts?estate=E01&status=closed&kind=vacancy"),
        ("api supervisor: open alerts of the district", "bench-sup", "/api/alerts?status=open"),
        ("api supervisor: one estate, open vacancy", "bench-sup",
         f"/api/alerts?estate={district[2]}&status=open&kind=vacancy"),
        ("api supervisor: all alerts, 200 per page", "bench-sup", "/api/alerts?limit=200"),
        ("api supervisor: deep page (offset 5000)", "bench-sup", "/api/alerts?status=closed&offset=5000"),
        # Age: filtered on days since first flagged, and sorted by it.
        ("api inspector: open alerts older than 90 days", "bench-insp",
         "/api/alerts?status=open&min_age_days=90"),
        ("api inspector: open alerts, oldest first", "bench-insp", "/api/alerts?status=open&sort=oldest"),
        ("api supervisor: open, last 30 days, newest first", "bench-sup",
         "/api/alerts?status=open&max_age_days=30&sort=newest"),
        ("api supervisor: all alerts 60 to 120 days old, by risk", "bench-sup",
         "/api/alerts?min_age_days=60&max_age_days=120"),
        ("api supervisor: all alerts, oldest first", "bench-sup", "/api/alerts?sort=oldest"),
        ("api supervisor: closed, newest first, offset 5000", "bench-sup",
         "/api/alerts?status=closed&sort=newest&offset=5000"),
        ("api admin: open alerts, oldest first (all estates)", "bench-adm",
         "/api/alerts?status=open&sort=oldest"),
        ("api admin: open, older than 180 days, by risk", "bench-adm",
         "/api/alerts?status=open&min_age_days=180"),
        ("api admin: open sublet, last 60 days, newest first", "bench-adm",
         "/api/alerts?status=open&kind=sublet&max_age_days=60&sort=newest"),
    ]
    kinds += queue_kinds(base, tokens)
    plan = [k for k in kinds for _ in range(requests // len(kinds))]
    pages = [("page inspector: alert list (HTML)", "bench-insp", "/"),
             ("page supervisor: alert list (HTML)", "bench-sup", "/?status=all"),
             ("page inspector: older than 90 days, oldest first (HTML)", "bench-insp",
              "/?min_age_days=90&sort=oldest"),
             ("page supervisor: English, last 30 days, newest (HTML)", "bench-sup",
              "/?status=all&max_age_days=30&sort=newest&lang=en"),
             ("page supervisor: overdue, assigned, by inspector (HTML)", "bench-sup",
              "/?status=all&state=assigned&overdue=1&assignee=bench-insp2"),
             ("page inspector: my cases, oldest first (HTML)", "bench-insp", "/?mine=1&sort=oldest"),
             ("page inspector: address search (HTML)", "bench-insp", f"/?status=all&q={ADDRESS_Q}"),
             ("page inspector: visit list, 10 sheets (HTML)", "bench-insp",
              "/visits?mine=1&sort=oldest&sheets=1"),
             ("page supervisor: visit list CSV, 500 rows", "bench-sup", "/visits.csv?status=all")]
    plan += [p for p in pages for _ in range(page_requests // len(pages))]
    random.Random(1).shuffle(plan)
    results: dict[str, list[float]] = {label: [] for label, _, _ in kinds + pages}
    with httpx.Client(base_url=base, timeout=30) as client:
        for _label, user, path in plan[:50]:  # warm-up: pool connections, plans, caches
            client.get(path, headers={"Authorization": f"Bearer {tokens[user]}"}).raise_for_status()
        for label, user, path in plan:
            headers = {"Authorization": f"Bearer {tokens[user]}"}
            if label.startswith("page"):
                headers = {"Cookie": f"anju_session={tokens[user]}"}
            t = time.perf_counter()
            r = client.get(path, headers=headers)
            elapsed = time.perf_counter() - t
            if r.status_code != 200:
                raise SystemExit(f"{path} as {user}: HTTP {r.status_code} {r.text[:200]}")
            results[label].append(elapsed)
    return results


if __name__ == "__main__":
    main()
