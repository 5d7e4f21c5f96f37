"""Benchmark: ``anju import`` of meter readings against a plain COPY of the same rows, in the same run.

Writes a scenario's ``units.csv`` and ``readings.csv`` (``device_sims.scenarios``; ``--units`` x ``--days``
hourly cumulative registers), then (1) COPYs the readings file as CSV into a bare table (typed columns,
no keys, no indexes) and (2) imports it through ``anju.hub.bulk.import_file`` into a fresh hub schema (checks,
reject file, partitions, load tables indexed and swapped in, with the real table's keys). A CHECKPOINT
before each measurement keeps either from paying the other's checkpoint debt. Prints both rates and
their ratio, and the conditions. Issue 3 sizes it at 10,000 units x 90 days (about 52M rows).

    .venv/bin/python bench/import_readings.py [--units 1000] [--days 90]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import psycopg

from anju.device_sims.scenarios import make_scenario, write_scenario
from anju.hub.bulk import RejectWriter, import_file
from anju.hub.storage import ensure_schema
from anju.hub.storage.embedded import throwaway_database
from anju_wire.clock import ESTATE_TZ

_BARE = "CREATE TABLE bare_readings (ts timestamptz, unit_id text, meter text, value float8)"


def main() -> None:
    """Generate, COPY, import, print figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--days", type=int, default=90)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        files = write_scenario(make_scenario(n_units=args.units, days=args.days, seed=7), work / "csv")
        gen = time.monotonic() - t0
        with throwaway_database(work, "bench_import") as url, psycopg.connect(url) as conn:
            ensure_schema(conn)
            conn.execute("TRUNCATE meter_readings, units CASCADE")
            conn.execute("DROP TABLE IF EXISTS bare_readings")
            conn.execute(_BARE)
            conn.commit()
            conn.execute("CHECKPOINT")
            conn.commit()
            t0 = time.monotonic()
            with conn.cursor().copy("COPY bare_readings FROM STDIN (FORMAT csv, HEADER true)") as copy, \
                    files.readings.open("rb") as fh:
                while chunk := fh.read(8 << 20):
                    copy.write(chunk)
            conn.commit()
            plain = time.monotonic() - t0
            conn.execute("DROP TABLE bare_readings")
            conn.commit()
            # Each measurement starts without the other's checkpoint debt (dirty pages, WAL to recycle).
            conn.execute("CHECKPOINT")
            conn.commit()
            with RejectWriter(work / "rejects.csv") as rejects:
                import_file(conn, "units", files.units, rejects=rejects, tz=ESTATE_TZ, progress=False)
                t0 = time.monotonic()
                res = import_file(conn, "readings", files.readings, rejects=rejects, tz=ESTATE_TZ,
                                  progress=False)
                ours = time.monotonic() - t0
    rows = files.readings_rows
    print(f"rows={rows:,} ({args.units:,} units x {args.days} days, hourly; generated in {gen:.1f} s)")
    print(f"plain_copy: {plain:.1f} s, {rows / plain:,.0f} rows/s (CSV COPY into a bare table, no keys)")
    print(f"anju_import: {ours:.1f} s, {rows / ours:,.0f} rows/s (new={res.rows_new:,} "
          f"rejected={res.rows_rejected:,})")
    print(f"ratio: {plain / ours:.2f} of the plain-COPY rate (target >= 0.50)")
    print(f"conditions: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"PostgreSQL {'ANJU_DATABASE_URL' if os.environ.get('ANJU_DATABASE_URL') else 'embedded'}, "
          "same server and run for both")


if __name__ == "__main__":
    main()
