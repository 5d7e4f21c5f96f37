"""Benchmark: detection for many units from daily rollups (``unit_daily``): wall time and peak memory.

Fills a fresh database with ``--units`` units x ``--days`` days of daily features (generated in SQL: lived-in
flats with their activity signatures, 3% vacant for the last 40 days, 2% with a meter outage, 20% of
households entering by card only, a working building gate), then runs
``run_detection`` once for the last day, as the hub does daily: load the window and baseline days, judge
every unit with both rules, open alerts and cases for what is flagged. Prints the phases' wall times, the
detector process's peak RSS and the conditions. PostgreSQL's own memory is not counted.

    .venv/bin/python bench/detect_scale.py [--units 100000] [--days 180]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

from anju.hub.detection.load import load_series
from anju.hub.detection.service import run_detection
from anju.hub.storage import ensure_schema
from anju.hub.storage.embedded import throwaway_database
from anju.models.rules import Policy

_UNITS = """
INSERT INTO units (unit_id, estate_id, building, floor, area_m2, household_size, lease_start)
SELECT 'B' || lpad(i::text, 7, '0'), 'E' || lpad((i / 400)::text, 4, '0'), ((i / 40) %% 10)::text,
       (i %% 40) / 4 + 1, 50, 1 + i %% 4, date '2020-01-01'
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
      FROM units) u
CROSS JOIN LATERAL (
    SELECT g::date AS day,
           u.is_vacant AND g::date > %(last)s::date - 40 AS vacant,
           u.has_outage AND g::date BETWEEN %(last)s::date - 30 AND %(last)s::date - 20 AS outage
    FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') g
) d
) x
"""


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Fill, detect, print figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=180)
    args = ap.parse_args()
    last = date(2026, 6, 29)
    first = last - timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp, \
            throwaway_database(Path(tmp), "bench_detect") as url, psycopg.connect(url) as conn:
        ensure_schema(conn)
        conn.execute("TRUNCATE units, unit_daily, alerts CASCADE")
        conn.execute("SELECT setseed(0.42)")
        t0 = time.monotonic()
        conn.execute(_UNITS, {"n": args.units})
        conn.execute(_DAILY, {"first": first, "last": last})
        conn.execute("ANALYZE units")
        conn.execute("ANALYZE unit_daily")
        conn.commit()
        fill = time.monotonic() - t0
        rows = conn.execute("SELECT count(*) FROM unit_daily").fetchone()
        policy = Policy.load()
        rss_before = _rss_mib()
        t0 = time.monotonic()
        series, _, _ = load_series(conn, as_of=last, policy=policy)
        load = time.monotonic() - t0
        n_series = len(series)
        del series
        conn.rollback()
        t0 = time.monotonic()
        result = run_detection(conn, as_of=last, policy=policy)
        conn.commit()
        detect = time.monotonic() - t0
    db = "ANJU_DATABASE_URL" if os.environ.get("ANJU_DATABASE_URL") else "embedded"
    days_each = f"up to {max(policy.history_days, policy.window_days + policy.baseline_days)}"
    print(f"units={args.units:,} days={args.days} unit_daily_rows={rows[0] if rows else 0:,} "
          f"fill_s={fill:.1f} (SQL generate_series, not part of the figure)")
    print(f"load_only_s={load:.1f} ({n_series:,} unit series: {days_each} days for units the rules could "
          f"flag, the {policy.window_days}-day window for the rest)")
    print(f"detection_s={detect:.1f} (load + both rules + alerts/cases) "
          f"flagged_vacancy={result.flagged_vacancy} flagged_sublet={result.flagged_sublet} "
          f"no_verdict={result.no_verdict} alerts_opened={result.alerts_opened}")
    print(f"peak_rss_mib={_rss_mib():.0f} (detector process; {rss_before:.0f} before detection; "
          "PostgreSQL not counted)")
    print(f"conditions: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"PostgreSQL {db}, one process, one connection")

if __name__ == "__main__":
    main()
