"""Versioned migrations: each runs once and is recorded; a current schema makes a hub start run no DDL."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import psycopg
import pytest

from anju.hub.settings import HubSettings
from anju.hub.storage import StorageInfo, ensure_partitions, ensure_schema, upsert_units
from anju.hub.storage.schema import sql_files
from anju.hub.storage.timeseries import TimescalePolicy, plain_sql, timescale_sql

TODAY = date(2026, 3, 15)
NOTE_DDL = """
CREATE TABLE ddl_seen (tag text NOT NULL);
CREATE FUNCTION note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO ddl_seen VALUES (tg_tag); END $$;
CREATE EVENT TRIGGER note_ddl ON ddl_command_start EXECUTE FUNCTION note_ddl();
"""


@pytest.fixture
def database_url(database_url_each_backend: str) -> str:
    return database_url_each_backend


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as c:
        yield c


def recorded(conn: psycopg.Connection) -> dict[str, str]:
    return {str(n): str(c) for n, c in conn.execute("SELECT name, checksum FROM schema_migrations")}


def test_a_hub_start_on_a_current_schema_runs_no_ddl(conn: psycopg.Connection, storage_backend: str) -> None:
    policy = HubSettings(retention_days=400).timescale_policy()  # what run_hub passes
    first = ensure_schema(conn, policy=policy, today=TODAY)
    conn.commit()
    assert first.backend == storage_backend
    names = set(recorded(conn))
    assert {f"timeseries.{storage_backend}", *(p.name for p in sql_files())} <= names
    assert ("timescaledb.policies" in names) == (storage_backend == "timescaledb")
    conn.execute(NOTE_DDL)
    conn.commit()
    again = ensure_schema(conn, policy=policy, today=TODAY)
    conn.commit()
    assert conn.execute("SELECT tag FROM ddl_seen").fetchall() == []
    assert (again.backend, again.sql_files, again.partitions_created) == (storage_backend, (), ())
    assert recorded(conn).keys() == names
    # A command that does not manage the policies (anju import, eval, ...) runs none either.
    ensure_schema(conn, today=TODAY)
    conn.commit()
    assert conn.execute("SELECT tag FROM ddl_seen").fetchall() == []


def test_a_database_from_before_versioning_keeps_its_data_and_is_recorded(
    conn: psycopg.Connection, storage_backend: str
) -> None:
    # What the previous release did at every start: the time-series DDL, partitions, every file.
    if storage_backend == "partitions":
        for stmt in plain_sql():
            conn.execute(stmt.encode())
        ensure_partitions(conn, start=date(2026, 2, 1), months_ahead=4)
    else:  # its hypertables also had TimescaleDB's own ts index, and an hourly view materialized only
        for stmt in timescale_sql(TimescalePolicy()):
            conn.execute(stmt.encode())
        conn.execute("CREATE INDEX meter_readings_ts_idx ON meter_readings (ts DESC)")
        conn.execute("ALTER MATERIALIZED VIEW meter_hourly SET (timescaledb.materialized_only = true)")
    for path in sql_files():
        conn.execute(path.read_text().encode())
    upsert_units(conn, [{"unit_id": f"E01-1-01{i:02d}", "estate_id": "E01"} for i in range(5)])
    conn.execute("INSERT INTO meter_readings (ts, unit_id, meter, value) SELECT %s::timestamptz + h * "
                 "interval '1 hour', 'E01-1-0100', 'water', h FROM generate_series(0, 99) AS h",
                 (datetime(2026, 3, 1, tzinfo=UTC),))
    conn.execute("INSERT INTO access_events (ts, estate_id, event_id, method, unit_id) VALUES "
                 "('2026-03-02T08:00:00Z', 'E01', 'ev1', 'card', 'E01-1-0101')")
    conn.commit()
    counts = "SELECT (SELECT count(*) FROM units), (SELECT count(*) FROM meter_readings), " \
             "(SELECT count(*) FROM access_events)"
    before = conn.execute(counts).fetchone()
    info = ensure_schema(conn, today=TODAY)
    conn.commit()
    assert isinstance(info, StorageInfo) and info.backend == storage_backend
    assert info.sql_files == tuple(p.name for p in sql_files())  # each recorded by running it once more
    assert conn.execute(counts).fetchone() == before == (5, 100, 1)
    assert ensure_schema(conn, today=TODAY).sql_files == ()
    indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'meter_readings' ORDER BY 1")
    assert indexes.fetchall() == [("meter_readings_pkey",), ("meter_readings_ts",)]
    hourly = conn.execute("SELECT count(*) FROM meter_hourly").fetchone()
    assert hourly == (100,)  # the newest rows too, on either form


@pytest.mark.parametrize("storage_backend", ["partitions"])
def test_a_changed_migration_runs_again_and_only_it(conn: psycopg.Connection) -> None:
    ensure_schema(conn, today=TODAY)
    conn.execute("UPDATE schema_migrations SET checksum = 'older' WHERE name = '70_activity.sql'")
    conn.commit()
    assert ensure_schema(conn, today=TODAY).sql_files == ("70_activity.sql",)
    conn.commit()
    assert "older" not in recorded(conn).values()


@pytest.mark.parametrize("storage_backend", ["partitions"])
def test_hubs_starting_together_run_each_migration_once(database_url: str) -> None:
    def start(autocommit: bool) -> StorageInfo:
        with psycopg.connect(database_url, autocommit=autocommit) as c:
            info = ensure_schema(c, today=TODAY)
            c.commit()
            return info

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = [f.result(timeout=120) for f in [pool.submit(start, a) for a in (True, False, True)]]
    ran = [name for r in results for name in r.sql_files]
    assert sorted(ran) == sorted(p.name for p in sql_files())  # all of them, each by one hub
