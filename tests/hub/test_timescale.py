"""TimescaleDB itself, on a PostgreSQL 15 that preloads it: hypertables, compression and retention run as
their policies' jobs, and a server with the extension installed but not preloaded falls back to partitions.

The tests' server runs no background jobs (``tests/services.pg15_server``): each policy is run here with
``run_job``, the same code the scheduler would run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from anju.cli import main
from anju.hub.storage import SchemaError, TimescalePolicy, ensure_schema
from anju_wire.clock import ESTATE_TZ
from tests.hub.test_import import write
from tests.services import create_database, drop_database

# 20 units x 2 meters, every 15 minutes for 90 days: cumulative registers that rise by a few tenths
# an hour, some hours not at all (as a household's meters do), to the meter's 0.01 resolution.
FILL = """
INSERT INTO meter_readings (ts, unit_id, meter, value, quality, agent_id, seq)
SELECT g.ts, 'E01-1-' || lpad(u::text, 4, '0'), m,
       round((sum(CASE WHEN random() < 0.3 THEN 0 ELSE random() * 0.2 END)
              OVER (PARTITION BY u, m ORDER BY g.ts))::numeric, 2)::float8,
       'ok', 'E01-gw1', row_number() OVER (ORDER BY g.ts, u, m)
FROM generate_series(now() - interval '90 days', now(), interval '15 minutes') AS g(ts),
     generate_series(1, 20) AS u, unnest(ARRAY['electricity', 'water']) AS m
"""


@pytest.fixture
def url(timescale_admin_url: str) -> Iterator[str]:
    made = create_database(timescale_admin_url)
    try:
        yield made
    finally:
        drop_database(timescale_admin_url, made)


@pytest.fixture
def conn(url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(url, autocommit=True) as c:
        yield c


def run_policy(conn: psycopg.Connection, proc: str, table: str) -> None:
    row = conn.execute("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s "
                       "AND hypertable_name = %s", (proc, table)).fetchone()
    assert row is not None, f"no {proc} job on {table}"
    conn.execute(f"CALL run_job({int(row[0])})")  # type: ignore[arg-type,unused-ignore]


def test_hypertables_with_chunk_intervals_compression_by_unit_and_one_time_index(
    conn: psycopg.Connection,
) -> None:
    info = ensure_schema(conn, policy=TimescalePolicy(chunk_days=7, access_chunk_days=28))
    assert info.backend == "timescaledb" and info.timescaledb_version == "2.28.3"
    dims: dict[str, int] = dict(conn.execute("SELECT hypertable_name, extract(day FROM time_interval)::int "
                             "FROM timescaledb_information.dimensions WHERE column_name = 'ts'").fetchall())
    assert dims == {"meter_readings": 7, "access_events": 28}
    segments = conn.execute("SELECT hypertable_name, attname "
                            "FROM timescaledb_information.compression_settings "
                            "WHERE segmentby_column_index IS NOT NULL ORDER BY 1, segmentby_column_index")
    assert segments.fetchall() == [("access_events", "estate_id"), ("access_events", "building"),
                                   ("meter_readings", "unit_id"), ("meter_readings", "meter")]
    jobs = conn.execute("SELECT hypertable_name, config->>'compress_after' FROM timescaledb_information.jobs "
                        "WHERE proc_name = 'policy_compression' ORDER BY 1").fetchall()
    assert jobs == [("access_events", "30 days"), ("meter_readings", "30 days")]
    # TimescaleDB's own default index on ts is not made beside the schema's.
    indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'meter_readings' ORDER BY 1")
    assert indexes.fetchall() == [("meter_readings_pkey",), ("meter_readings_ts",)]


def test_compression_policy_shrinks_old_chunks_and_their_rows_stay_readable_and_writable(
    conn: psycopg.Connection,
) -> None:
    ensure_schema(conn)
    conn.execute("SELECT setseed(0.18)")
    conn.execute(FILL)
    before = conn.execute("SELECT count(*), sum(value::numeric) FROM meter_readings").fetchone()
    hourly = conn.execute("SELECT count(*) FROM meter_hourly").fetchone()
    run_policy(conn, "policy_compression", "meter_readings")
    chunks = conn.execute("SELECT count(*) FILTER (WHERE is_compressed), count(*) FILTER (WHERE range_end < "
                          "now() - interval '30 days') FROM timescaledb_information.chunks "
                          "WHERE hypertable_name = 'meter_readings'").fetchone()
    assert chunks is not None and chunks[0] > 0 and chunks[0] == chunks[1]  # every chunk past the age
    stats = conn.execute("SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes) "
                         "FROM chunk_compression_stats('meter_readings') "
                         "WHERE compression_status = 'Compressed'").fetchone()
    assert stats is not None and stats[0] / stats[1] >= 10, stats
    assert conn.execute("SELECT count(*), sum(value::numeric) FROM meter_readings").fetchone() == before
    assert conn.execute("SELECT count(*) FROM meter_hourly").fetchone() == hourly
    # A late reading (an agent's outbox replay) into a compressed chunk: stored once, never twice.
    late = ("INSERT INTO meter_readings (ts, unit_id, meter, value) VALUES "
            "(date_trunc('hour', now() - interval '80 days') + interval '7 minutes', "
            "'E01-1-0001', 'water', 1) "
            "ON CONFLICT (unit_id, meter, ts) DO NOTHING")
    assert conn.execute(late).rowcount == 1
    assert conn.execute(late).rowcount == 0
    old = conn.execute("SELECT ts FROM meter_readings WHERE ts < now() - interval '80 days' LIMIT 1"
                       ).fetchone()
    assert old is not None
    dup = conn.execute("INSERT INTO meter_readings (ts, unit_id, meter, value) VALUES (%s, 'E01-1-0002', "
                       "'electricity', 5) ON CONFLICT DO NOTHING", (old[0],))
    assert dup.rowcount == 0
    assert conn.execute("SELECT count(*) FROM meter_readings").fetchone() == (before[0] + 1,)  # type: ignore[index]


def test_retention_policy_drops_chunks_past_its_horizon_and_is_replaced_not_doubled(
    conn: psycopg.Connection,
) -> None:
    ensure_schema(conn, policy=TimescalePolicy(retention_days=60))
    ensure_schema(conn)  # a command that does not manage retention leaves it as it is
    conn.execute("INSERT INTO meter_readings (ts, unit_id, meter, value) "
                 "SELECT now() - d * interval '1 day', 'E01-1-0001', 'water', d "
                 "FROM generate_series(0, 120) AS d")
    conn.execute("INSERT INTO access_events (ts, estate_id, event_id, method) SELECT now() - d * interval "
                 "'1 day', 'E01', 'e' || d, 'card' FROM generate_series(0, 120) AS d")
    for table in ("meter_readings", "access_events"):
        run_policy(conn, "policy_retention", table)
        oldest = conn.execute(f"SELECT max(now() - ts) FROM {table}").fetchone()  # type: ignore[arg-type,unused-ignore]
        assert oldest is not None
        # Whole chunks go: nothing is older than the horizon plus one chunk's span.
        assert 53 <= oldest[0].days < 60 + (7 if table == "meter_readings" else 28), (table, oldest)
    ensure_schema(conn, policy=TimescalePolicy(retention_days=90))
    jobs = conn.execute("SELECT hypertable_name, config->>'drop_after' FROM timescaledb_information.jobs "
                        "WHERE proc_name = 'policy_retention' ORDER BY 1").fetchall()
    assert jobs == [("access_events", "90 days"), ("meter_readings", "90 days")]


def test_installed_but_not_preloaded_falls_back_to_partitions_and_import_works(
    pg15_not_preloaded_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, CREATE EXTENSION there ended the session: `anju import` died, "the connection is closed"."""
    url = create_database(pg15_not_preloaded_url)
    try:
        with psycopg.connect(url) as c:
            with pytest.raises(SchemaError, match="not in shared_preload_libraries"):
                ensure_schema(c, prefer="timescaledb")
            c.rollback()
            info = ensure_schema(c)
            c.commit()
            assert info.backend == "partitions"
            assert info.reason == "TimescaleDB 2.28.3 installed but not in shared_preload_libraries"
        files = write(tmp_path)
        argv = ["import", "--units", str(files.units), "--readings", str(files.readings), "--access",
                str(files.access), "--rejects", str(tmp_path / "rej.csv"), "--database-url", url]
        assert main(argv) == 0
        out, _ = capsys.readouterr()
        assert "readings: read=11 new=4 already_present=0 rejected=7" in out
        with psycopg.connect(url) as c:
            kind = c.execute("SELECT relkind FROM pg_class WHERE relname = 'meter_readings'").fetchone()
            assert kind == ("p",)
    finally:
        drop_database(pg15_not_preloaded_url, url)


def test_an_imported_month_is_attached_compressed_and_imported_again_unchanged(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A month with no chunk takes the import's load table as its chunk; once the compression policy has
    compressed it, importing the same file again finds every row there and adds none."""
    from anju.hub.bulk import RejectWriter, import_file
    from tests.hub.test_import import _import_readings, _readings, _units_file

    ensure_schema(conn)
    units = ["E01-1-0101", "E01-1-0102"]
    with RejectWriter(tmp_path / "u.rejects.csv") as rejects:
        import_file(conn, "units", _units_file(tmp_path, units), rejects=rejects, tz=ESTATE_TZ,
                    progress=False)
    lines = _readings(units, range(24, 24 * 20))  # 2026-01-02 to 01-20, local time: January only
    first, refused = _import_readings(conn, tmp_path, "r1.csv", lines)
    assert refused == [] and first.rows_new == len(lines)
    chunks = "SELECT chunk_name, is_compressed FROM timescaledb_information.chunks " \
             "WHERE hypertable_name = 'meter_readings'"
    assert conn.execute(chunks).fetchall() == [("meter_readings_m2026_01", False)]
    run_policy(conn, "policy_compression", "meter_readings")
    assert conn.execute(chunks).fetchall() == [("meter_readings_m2026_01", True)]
    again, refused = _import_readings(conn, tmp_path, "r2.csv", lines)
    assert refused == [] and (again.rows_new, again.rows_known) == (0, len(lines))
    assert conn.execute("SELECT count(*) FROM meter_readings").fetchone() == (len(lines),)


def test_an_outbox_replay_into_a_compressed_chunk_is_stored_once(conn: psycopg.Connection) -> None:
    """An agent back after weeks offline sends readings whose chunk is compressed by now."""
    import json
    from datetime import UTC, datetime

    from anju.hub.ingest.processor import process
    from anju.hub.ingest.writer import BatchWriter
    from anju.hub.storage import upsert_units
    from anju_wire import Topic
    from anju_wire.examples import example_bytes

    received = datetime(2026, 3, 1, 0, 0, 6, tzinfo=UTC)
    ensure_schema(conn)
    upsert_units(conn, [{"unit_id": "E01-1-0302", "estate_id": "E01"}])
    data = json.loads(example_bytes("readings_batch.json"))
    first = process(str(Topic.readings("E01")), json.dumps(data).encode(), received)
    writer = BatchWriter(conn)
    assert writer.write([first]).stored_readings == 3
    conn.execute("SELECT compress_chunk(c) FROM show_chunks('meter_readings') AS c")
    compressed = "SELECT bool_and(is_compressed) FROM timescaledb_information.chunks " \
                 "WHERE hypertable_name = 'meter_readings'"
    assert conn.execute(compressed).fetchone() == (True,)
    sent = data["readings"]  # the replay: the same three again, and three an hour later
    data["readings"] = sent + [dict(r, seq=r["seq"] + 100, ts=r["ts"].replace("T08:", "T09:")) for r in sent]
    replay = process(str(Topic.readings("E01")), json.dumps(data).encode(), received)
    result = writer.write([replay])
    assert (result.stored_readings, result.duplicates) == (3, 3)
    assert conn.execute("SELECT count(*) FROM meter_readings").fetchone() == (6,)
