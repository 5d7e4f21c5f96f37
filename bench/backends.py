"""Benchmark: the two time-series forms side by side, in one run on the same data.

``partitions``: monthly range partitions on the embedded PostgreSQL (or ``ANJU_DATABASE_URL``).
``timescaledb``: hypertables on a throwaway PostgreSQL 15 that preloads TimescaleDB (``tests.services``;
install it with ``scripts/timescaledb.sh``), or ``--timescale-url``. ``partitions-pg15``: partitions on
that same PostgreSQL 15, so that the form, not the server's version, is what differs.

For each: import a simulated estate (``anju.device_sims.scenarios``: hourly cumulative registers, gate events)
through ``anju import``'s code; bytes per reading and per access event (table and indexes) before and,
on TimescaleDB, after its compression policy ran; the daily features refresh over all days (on
TimescaleDB before and after compression); the hub's batch writer storing processed ReadingsBatch
messages of 500 (the ingest path from decoded message to committed rows, without the broker).

    .venv/bin/python bench/backends.py [--units 200] [--days 90] [--ingest 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.services, when run as a script

from anju.device_sims.scenarios import ScenarioFiles, make_scenario, write_scenario
from anju.hub.bulk import BulkImport, import_all
from anju.hub.ingest.processor import process
from anju.hub.ingest.writer import BatchWriter
from anju.hub.storage import ensure_schema
from anju.hub.storage.embedded import throwaway_database
from anju.hub.storage.rollups import refresh_daily_features
from anju.hub.storage.schema import Backend
from anju_wire import MeterKind, MeterReading, ReadingsBatch, Topic, encode
from anju_wire.clock import ESTATE_TZ
from tests.services import create_database, drop_database, pg15_server

# Bytes of a table with its indexes: the partitions' sum, or the hypertable's (compressed chunks included).
_SIZE = {
    "partitions": "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(%s::regclass)",
    "timescaledb": "SELECT hypertable_size(%s::regclass)",
}


FLUSH_MESSAGES = 10  # messages per writer flush: 5,000 readings, the hub's ingest_batch_max


@dataclass
class Figures:
    """What one backend measured."""

    label: str
    server: str = ""
    figures: dict[str, float] = field(default_factory=dict)

    def put(self, key: str, value: float) -> None:
        self.figures[key] = value
        print(f"  {self.label:<17} {key:<34} {value:,.2f}", flush=True)


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type,unused-ignore]
    return int(row[0]) if row else 0


def _bytes(conn: psycopg.Connection, backend: str, table: str) -> int:
    row = conn.execute(_SIZE[backend], (table,)).fetchone()  # type: ignore[arg-type,unused-ignore]
    return int(row[0]) if row and row[0] is not None else 0


def _timed(fn: object) -> float:
    t0 = time.monotonic()
    fn()  # type: ignore[operator]
    return time.monotonic() - t0


def _ingest_batches(estate: str, unit_ids: list[str], n: int, now: datetime) -> list[tuple[str, bytes]]:
    """``n`` recent electricity readings of an estate's registered units, 500 a batch, as published."""
    out: list[tuple[str, bytes]] = []
    rows: list[MeterReading] = []
    per_unit = max(1, n // len(unit_ids))
    for seq in range(1, n + 1):
        unit, k = divmod(seq - 1, per_unit)
        rows.append(MeterReading(seq=seq, unit_id=unit_ids[unit % len(unit_ids)], meter=MeterKind.ELECTRICITY,
                                 device=f"modbus-tcp://10.0.0.1:502/{unit % 240 + 1}",
                                 ts=now - timedelta(minutes=per_unit - k), value=1000.0 + seq * 0.01))
        if len(rows) == 500 or seq == n:
            batch = ReadingsBatch(agent_id=f"{estate}-gw1", estate_id=estate, sent_at=now, readings=rows)
            out.append((str(Topic.readings(estate)), encode(batch)))
            rows = []
    return out


def measure(
    label: str, backend: Backend, url: str, files: ScenarioFiles, work: Path, ingest_n: int
) -> Figures:
    """Everything for one backend, on a fresh database at ``url``."""
    fig = Figures(label)
    with psycopg.connect(url) as conn:
        info = ensure_schema(conn, prefer=backend)
        conn.commit()
        assert info.backend == backend, info
        fig.server = f"PostgreSQL {conn.info.server_version // 10000}" + (
            f", TimescaleDB {info.timescaledb_version}" if backend == "timescaledb" else "")
        conn.execute("CHECKPOINT")
        given = BulkImport(units=files.units, readings=files.readings, access=files.access)
        results = import_all(conn, given, rejects_path=work / f"{backend}.rejects.csv", tz=ESTATE_TZ,
                             progress=False)
        by_kind = {r.kind: r for r in results}
        fig.put("import_readings_rows_per_s", by_kind["readings"].rows_per_s)
        fig.put("import_access_rows_per_s", by_kind["access"].rows_per_s)
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("VACUUM ANALYZE meter_readings")
            other.execute("VACUUM ANALYZE access_events")
        readings, events = _count(conn, "meter_readings"), _count(conn, "access_events")
        fig.put("readings", readings)
        fig.put("bytes_per_reading", _bytes(conn, backend, "meter_readings") / readings)
        fig.put("bytes_per_access_event", _bytes(conn, backend, "access_events") / events)
        t0 = time.monotonic()
        refresh_daily_features(conn, tz=ESTATE_TZ)
        conn.commit()
        fig.put("feature_refresh_s", time.monotonic() - t0)
    if backend == "timescaledb":
        with psycopg.connect(url, autocommit=True) as conn:
            jobs = conn.execute("SELECT job_id FROM timescaledb_information.jobs "
                                "WHERE proc_name = 'policy_compression'").fetchall()
            fig.put("compress_policy_s", _timed(lambda: [conn.execute(f"CALL run_job({j})")  # type: ignore[arg-type,unused-ignore]
                                                         for (j,) in jobs]))
            before = _bytes(conn, backend, "meter_readings")
            fig.put("bytes_per_reading_compressed", before / readings)
            fig.put("compression_ratio_readings", fig.figures["bytes_per_reading"] / (before / readings))
            stats = "hypertable_compression_stats('meter_readings')"
            row = conn.execute("SELECT before_compression_total_bytes::float8 / "  # type: ignore[arg-type,unused-ignore]
                               f"after_compression_total_bytes FROM {stats}").fetchone()
            fig.put("compressed_chunks_ratio", float(row[0]) if row else 0.0)  # TimescaleDB's own count
            fig.put("bytes_per_access_event_compressed", _bytes(conn, backend, "access_events") / events)
            fig.put("feature_refresh_compressed_s",
                    _timed(lambda: refresh_daily_features(conn, tz=ESTATE_TZ)))
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT estate_id, array_agg(unit_id ORDER BY unit_id) FROM units "
                           "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()
        assert row is not None
        now = datetime.now(UTC).replace(microsecond=0)
        messages = _ingest_batches(row[0], list(row[1]), ingest_n, now)
        writer = BatchWriter(conn)
        t0 = time.monotonic()
        stored = 0
        for i in range(0, len(messages), FLUSH_MESSAGES):
            flush = [process(topic, payload, now) for topic, payload in messages[i:i + FLUSH_MESSAGES]]
            stored += writer.write(flush).stored_readings
        spent = time.monotonic() - t0
        assert stored == ingest_n, (stored, ingest_n)
        fig.put("ingest_rows_per_s", ingest_n / spent)
    return fig


@contextmanager
def _pg15(admin_url: str | None) -> Iterator[str]:
    """Admin URL of the given server, or of a throwaway PostgreSQL 15 that preloads TimescaleDB."""
    if admin_url:
        yield admin_url
        return
    with pg15_server(preload_timescaledb=True) as admin:
        yield admin


@contextmanager
def _database(admin_url: str) -> Iterator[str]:
    made = create_database(admin_url)
    try:
        yield made
    finally:
        drop_database(admin_url, made)


def main() -> None:
    """Generate the data once, measure both backends, print a JSON summary."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", type=int, default=200)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--ingest", type=int, default=100_000, help="readings through the batch writer")
    ap.add_argument("--timescale-url", help="admin URL of a PostgreSQL 15 that preloads TimescaleDB")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
        work = Path(tmp)
        files = write_scenario(make_scenario(n_units=args.units, days=args.days, seed=7), work / "csv")
        print(f"data: {args.units} units x {args.days} days, {files.readings_rows:,} readings (hourly), "
              f"{files.access_rows:,} access events, "
              f"ingest {args.ingest:,} readings in batches of 500", flush=True)
        out = []
        with throwaway_database(work, "bench_backends") as url:
            out.append(measure("partitions", "partitions", url, files, work, args.ingest))
        # Both forms on the same PostgreSQL 15 too, so the server's version is not what differs.
        with _pg15(args.timescale_url) as admin:
            with _database(admin) as url:
                out.append(measure("partitions-pg15", "partitions", url, files, work, args.ingest))
            with _database(admin) as url:
                out.append(measure("timescaledb", "timescaledb", url, files, work, args.ingest))
    print(json.dumps({f.label: {"server": f.server, **{k: round(v, 2) for k, v in f.figures.items()}}
                      for f in out}, indent=2))
    print(f"conditions: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          "one run, same data for both")


if __name__ == "__main__":
    main()
