"""Benchmark: the daily features as a TimescaleDB continuous aggregate, against today's SQL refresh.

On a throwaway PostgreSQL 15 that preloads TimescaleDB (``tests.services``), a simulated estate
(``anju.device_sims.scenarios``, hourly registers) is imported; then, timed:

- ``refresh_daily_features`` over all days, and over the last two days (what the hub's pipeline runs
  every cycle: it refreshes from the last day it rolled up);
- creating the daily features as a continuous aggregate as they are computed (per-reading deltas with
  ``lag()``): TimescaleDB refuses window functions there, and the error is printed;
- what a continuous aggregate can hold instead: per unit, meter and hour the first and last register,
  count and flags (``time_bucket``), its full materialisation and a refresh of its last two days. Hourly
  registers give one row per reading, so it stores as many rows as the readings themselves.

    .venv/bin/python bench/daily_cagg.py [--units 200] [--days 90]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.services, when run as a script

from anju.device_sims.scenarios import make_scenario, write_scenario
from anju.hub.bulk import BulkImport, import_all
from anju.hub.storage import ensure_schema
from anju.hub.storage.rollups import refresh_daily_features
from anju_wire.clock import ESTATE_TZ
from tests.services import create_database, drop_database, pg15_server

# Legal SQL (a window over the grouped days), the nearest a day-level view comes to the rollup's deltas.
_DAILY_WITH_LAG = f"""
CREATE MATERIALIZED VIEW bench_meter_daily_cagg WITH (timescaledb.continuous) AS
SELECT unit_id, meter, time_bucket('1 day', ts, '{ESTATE_TZ}') AS day,
       max(value) - lag(max(value)) OVER (PARTITION BY unit_id, meter
                                          ORDER BY time_bucket('1 day', ts, '{ESTATE_TZ}')) AS consumption
FROM meter_readings WHERE quality = 'ok' AND value IS NOT NULL
GROUP BY 1, 2, 3 WITH NO DATA
"""
_VIEW = "bench_meter_hourly_cagg"
_HOURLY = f"""
CREATE MATERIALIZED VIEW {_VIEW} WITH (timescaledb.continuous) AS
SELECT unit_id, meter, time_bucket('1 hour', ts) AS hour,
       first(value, ts) AS first_value, last(value, ts) AS last_value, min(ts) AS first_ts,
       max(ts) AS last_ts, count(*) AS readings, bool_or(event IS NOT NULL) AS flagged
FROM meter_readings WHERE quality = 'ok' AND value IS NOT NULL
GROUP BY 1, 2, 3 WITH NO DATA
"""


def _timed(conn: psycopg.Connection, label: str, sql: str, params: tuple[object, ...] | None = None) -> float:
    t0 = time.monotonic()
    conn.execute(sql, params)  # type: ignore[arg-type,unused-ignore]
    spent = time.monotonic() - t0
    print(f"  {label:<58} {spent:8.2f} s", flush=True)
    return spent


def main() -> None:
    """Import once, then time the refresh and the continuous aggregates."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=200)
    ap.add_argument("--days", type=int, default=90)
    args = ap.parse_args()
    print(f"conditions: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}, Python "
          f"{platform.python_version()}, {args.units} units x {args.days} days (hourly)")  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp,
        pg15_server(preload_timescaledb=True) as admin,
    ):
        files = write_scenario(make_scenario(n_units=args.units, days=args.days, seed=7), Path(tmp) / "csv")
        url = create_database(admin)
        try:
            with psycopg.connect(url) as conn:
                assert ensure_schema(conn, prefer="timescaledb").backend == "timescaledb"
                conn.commit()
                given = BulkImport(units=files.units, readings=files.readings, access=files.access)
                import_all(conn, given, rejects_path=Path(tmp) / "rejects.csv", tz=ESTATE_TZ, progress=False)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE meter_readings")
                row = conn.execute("SELECT count(*), max(ts) FROM meter_readings").fetchone()
                assert row is not None
                readings, last = int(row[0]), row[1]
                print(f"  {readings:,} readings, the last at {last}")
                t0 = time.monotonic()
                refresh_daily_features(conn, tz=ESTATE_TZ)
                print(f"  {'refresh_daily_features, all days':<58} {time.monotonic() - t0:8.2f} s")
                since = (last - timedelta(days=1)).date()
                t0 = time.monotonic()
                refresh_daily_features(conn, tz=ESTATE_TZ, since=since)
                print(f"  {'refresh_daily_features, the last two days':<58} {time.monotonic() - t0:8.2f} s")
                try:
                    conn.execute(_DAILY_WITH_LAG)  # type: ignore[arg-type,unused-ignore]
                    print("  the daily features with lag() as a continuous aggregate: accepted")
                except psycopg.Error as err:
                    why = " ".join(x for x in (str(err).splitlines()[0], err.diag.message_detail) if x)
                    print(f"  the daily features with lag() as a continuous aggregate: refused: {why}")
                conn.execute(_HOURLY)  # type: ignore[arg-type,unused-ignore]
                _timed(conn, "hourly continuous aggregate, full materialisation",
                       f"CALL refresh_continuous_aggregate('{_VIEW}', NULL, NULL)")  # fmt: skip
                row = conn.execute(f"SELECT count(*) FROM {_VIEW}").fetchone()  # type: ignore[arg-type,unused-ignore]
                rows = int(row[0]) if row else 0
                print(f"  hourly continuous aggregate rows: {rows:,} (readings: {readings:,})")
                conn.execute(
                    "UPDATE meter_readings SET value = value WHERE ts >= %s", (last - timedelta(days=2),)
                )
                _timed(conn, "hourly continuous aggregate, refresh of the last two days",
                       f"CALL refresh_continuous_aggregate('{_VIEW}', %s::timestamptz, NULL)",
                       (last - timedelta(days=2),))  # fmt: skip
        finally:
            drop_database(admin, url)


if __name__ == "__main__":
    main()
