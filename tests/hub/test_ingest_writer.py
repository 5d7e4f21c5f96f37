"""The batch writer on a real PostgreSQL: examples stored once, only registered units, dead letters kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from anju.hub.ingest.errors import WriterError
from anju.hub.ingest.processor import AckDue, ProcessResult, process
from anju.hub.ingest.writer import BatchWriter
from anju.hub.storage import ensure_schema, list_partitions, upsert_units
from anju_wire import TimeBounds, Topic
from anju_wire.examples import example_bytes

RECEIVED = datetime(2026, 3, 1, 0, 0, 6, tzinfo=UTC)
WIDE = TimeBounds(max_future=timedelta(days=20 * 366))  # for partitions years ahead
EXAMPLE_UNITS = ("E01-1-0104", "E01-1-0302", "E01-1-0501")


@pytest.fixture
def database_url(database_url_each_backend: str) -> str:
    """Every test here runs on monthly partitions and on TimescaleDB (PostgreSQL 15)."""
    return database_url_each_backend


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """A schema with the examples' units in the registry (ingest stores registered units only)."""
    with psycopg.connect(database_url, autocommit=True) as c:
        ensure_schema(c)
        upsert_units(c, [{"unit_id": u, "estate_id": "E01"} for u in EXAMPLE_UNITS])
        yield c


def examples() -> list[ProcessResult]:
    return [
        process(str(Topic.readings("E01")), example_bytes("readings_batch.json"), RECEIVED),
        process(str(Topic.access("E01")), example_bytes("access_batch.json"), RECEIVED),
        process(str(Topic.status("E01", "E01-gw1")), example_bytes("agent_status_online.json"), RECEIVED),
    ]


def count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type,unused-ignore]
    assert row is not None
    return int(row[0])


def test_contract_examples_are_stored(conn: psycopg.Connection, storage_backend: str) -> None:
    result = BatchWriter(conn).write(examples())
    assert (result.stored_readings, result.stored_events, result.statuses, result.duplicates) == (3, 5, 1, 0)
    assert result.acks == (AckDue(agent_id="E01-gw1", estate_id="E01", seqs=tuple(range(1041, 1049))),)
    gas = conn.execute(
        "SELECT value, quality, device, agent_id, seq FROM meter_readings WHERE meter = 'gas'"
    ).fetchone()
    assert gas == (None, "unavailable", "modbus-tcp://10.0.3.2:502/207", "E01-gw1", 1043)
    stranger = conn.execute(
        "SELECT person, unit_id, method FROM access_events WHERE stranger_track = 'E01-G1-t000412'"
    ).fetchone()
    assert stranger == (None, None, "face")
    status = conn.execute("SELECT estate_id, state, payload->>'outbox_depth' FROM agent_status").fetchone()
    assert status == ("E01", "online", "12")
    # The registry is unchanged: ingest never creates or moves a unit.
    units = conn.execute("SELECT unit_id, estate_id FROM units ORDER BY unit_id").fetchall()
    assert units == [(u, "E01") for u in EXAMPLE_UNITS]
    if storage_backend == "partitions":
        assert count(conn, "meter_readings_default") == 0  # March 2026 got its own partition on demand
        assert "meter_readings_p2026_02" in list_partitions(conn, "meter_readings")


def test_duplicates_are_stored_once_and_still_acked(conn: psycopg.Connection) -> None:
    writer = BatchWriter(conn)
    writer.write(examples())
    again = writer.write(examples() + examples())
    assert (again.stored_readings, again.stored_events, again.duplicates) == (0, 0, 16)
    assert again.acks[0].seqs == tuple(range(1041, 1049))
    assert count(conn, "meter_readings") == 3
    assert count(conn, "access_events") == 5


def test_known_unit_keeps_its_registry_row(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE units SET building = '1', area_m2 = 55 WHERE unit_id = 'E01-1-0302'")
    BatchWriter(conn).write(examples()[:1])
    assert conn.execute("SELECT building, area_m2 FROM units WHERE unit_id = 'E01-1-0302'").fetchone() == (
        "1",
        55,
    )


def test_dead_letters_keep_raw_bytes_and_reason(conn: psycopg.Connection) -> None:
    raw = b'{"schema": "anju.readings.v1", broken'
    result = BatchWriter(conn).write([process(str(Topic.readings("E01")), raw, RECEIVED)])
    assert result.dead_letters == 1 and result.acks == ()
    row = conn.execute("SELECT topic, payload, reason, received_at FROM dead_letters").fetchone()
    assert row is not None
    assert (row[0], bytes(row[1]), row[3]) == ("anju/v1/E01/readings", raw, RECEIVED)
    assert "invalid ReadingsBatch" in row[2]


@pytest.mark.parametrize("storage_backend", ["partitions"])  # hypertables make their chunks themselves
def test_far_future_reading_lands_in_its_own_partition(conn: psycopg.Connection) -> None:
    data = json.loads(example_bytes("readings_batch.json"))
    for r in data["readings"]:
        r["ts"] = "2033-07-04T10:00:00+08:00"
    BatchWriter(conn).write(
        [process(str(Topic.readings("E01")), json.dumps(data).encode(), RECEIVED, bounds=WIDE)]
    )
    rows = conn.execute("SELECT DISTINCT tableoid::regclass::text FROM meter_readings").fetchall()
    assert rows == [("meter_readings_p2033_07",)]


def test_older_status_does_not_overwrite_newer(conn: psycopg.Connection) -> None:
    topic = str(Topic.status("E01", "E01-gw1"))
    writer = BatchWriter(conn)
    writer.write([process(topic, example_bytes("agent_status_offline.json"), RECEIVED)])
    earlier = datetime(2026, 2, 28, tzinfo=UTC)
    writer.write([process(topic, example_bytes("agent_status_online.json"), earlier)])
    assert conn.execute("SELECT state FROM agent_status").fetchone() == ("offline",)


def test_failed_batch_leaves_nothing_behind(conn: psycopg.Connection) -> None:
    good = examples()
    data = json.loads(example_bytes("readings_batch.json"))
    data["readings"][0]["device"] = "bad\u0000device"  # valid JSON and contract, refused by PostgreSQL
    bad = process(str(Topic.readings("E01")), json.dumps(data).encode(), RECEIVED)
    assert bad.dead_letter is None
    writer = BatchWriter(conn)
    with pytest.raises(psycopg.errors.DataError):
        writer.write([*good, bad])
    assert count(conn, "meter_readings") + count(conn, "access_events") + count(conn, "dead_letters") == 0
    assert writer.write(good).stored_readings == 3  # the connection is usable afterwards


def test_writer_needs_autocommit_and_schema(database_url: str) -> None:
    with psycopg.connect(database_url) as c, pytest.raises(WriterError, match="autocommit"):
        BatchWriter(c)
    with (
        psycopg.connect(database_url, autocommit=True) as c,
        pytest.raises(WriterError, match="ensure_schema"),
    ):
        BatchWriter(c)


def test_counter_events_are_stored_in_every_partition(conn: psycopg.Connection, storage_backend: str) -> None:
    ensure_schema(conn)  # 50_edge.sql runs again without complaint
    partitioned = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'meter_readings'").fetchone()
    assert partitioned == (("p",) if storage_backend == "partitions" else ("r",))  # a hypertable: chunks
    flagged = json.loads(example_bytes("readings_batch_counter_events.json"))
    future = json.loads(example_bytes("readings_batch_counter_events.json"))
    for r in future["readings"]:
        r["ts"] = "2034-01-02T10:00:00+08:00"  # a partition made after the column was added
        r["seq"] += 100
    writer = BatchWriter(conn)
    writer.write(examples()[:1])
    stored = writer.write(
        [
            process(str(Topic.readings("E01")), json.dumps(d).encode(), RECEIVED, bounds=WIDE)
            for d in (flagged, future)
        ]
    )
    assert stored.stored_readings == 6
    rows = conn.execute(
        "SELECT extract(year FROM ts)::int, meter, event FROM meter_readings "
        "WHERE event IS NOT NULL ORDER BY ts, meter"
    ).fetchall()
    assert rows == [(2026, "electricity", "replaced"), (2026, "gas", "rollover"),
                    (2034, "electricity", "replaced"), (2034, "gas", "rollover")]  # fmt: skip
    assert count(conn, "meter_readings") == 9


def _dead(conn: psycopg.Connection) -> list[tuple[str, str, str | None]]:
    return [(str(c), str(e), r) for c, e, r in conn.execute(
        "SELECT code, estate_id, reason FROM dead_letters ORDER BY id").fetchall()]  # fmt: skip


def test_readings_of_another_estates_unit_are_refused(conn: psycopg.Connection) -> None:
    upsert_units(conn, [{"unit_id": "E02-1-0101", "estate_id": "E02"}])
    data = json.loads(example_bytes("readings_batch.json"))
    data["readings"][1]["unit_id"] = "E02-1-0101"  # E01's gateway writing for a flat of E02
    result = BatchWriter(conn).write(
        [process(str(Topic.readings("E01")), json.dumps(data).encode(), RECEIVED)]
    )
    assert (result.stored_readings, result.dead_letters) == (0, 1)
    assert count(conn, "meter_readings") == 0
    [(code, estate, reason)] = _dead(conn)
    assert (code, estate) == ("unit_other_estate", "E01") and "'E02'" in str(reason)


def test_access_event_for_another_estates_unit_is_refused(conn: psycopg.Connection) -> None:
    upsert_units(conn, [{"unit_id": "E02-1-0101", "estate_id": "E02"}])
    data = json.loads(example_bytes("access_batch.json"))
    data["events"][0]["unit_id"] = "E02-1-0101"  # fake presence to hide a vacancy in E02
    result = BatchWriter(conn).write([process(str(Topic.access("E01")), json.dumps(data).encode(), RECEIVED)])
    assert (result.stored_events, result.dead_letters) == (0, 1)
    assert count(conn, "access_events") == 0
    assert _dead(conn)[0][:2] == ("unit_other_estate", "E01")


def test_a_new_unit_id_is_refused_and_not_registered(conn: psycopg.Connection) -> None:
    data = json.loads(example_bytes("readings_batch.json"))
    for r in data["readings"]:
        r["unit_id"] = "E01-9-9999"
    result = BatchWriter(conn).write(
        [process(str(Topic.readings("E01")), json.dumps(data).encode(), RECEIVED)]
    )
    assert (result.stored_readings, result.dead_letters) == (0, 1)
    assert result.acks == (AckDue(agent_id="E01-gw1", estate_id="E01", seqs=(1041, 1042, 1043)),)
    assert conn.execute("SELECT count(*) FROM units WHERE unit_id = 'E01-9-9999'").fetchone() == (0,)
    assert _dead(conn)[0][:2] == ("unit_unregistered", "E01")


def test_status_never_moves_an_agent_to_another_estate(conn: psycopg.Connection) -> None:
    writer = BatchWriter(conn)
    status = json.loads(example_bytes("agent_status_online.json"))
    status["estate_id"], status["agent_id"] = "E02", "E02-gw1"
    writer.write([process(str(Topic.status("E02", "E02-gw1")), json.dumps(status).encode(), RECEIVED)])
    status["estate_id"], status["state"] = "E01", "offline"
    later = RECEIVED + timedelta(minutes=1)
    result = writer.write([process(str(Topic.status("E01", "E02-gw1")), json.dumps(status).encode(), later)])
    assert (result.statuses, result.dead_letters) == (0, 1)
    row = conn.execute("SELECT estate_id, state FROM agent_status WHERE agent_id = 'E02-gw1'").fetchone()
    assert row == ("E02", "online")
    assert _dead(conn)[0][:2] == ("agent_other_estate", "E01")


def _readings_at(hour: int, seq: int) -> ProcessResult:
    """The example batch moved to ``hour`` (UTC) with seqs from ``seq``: three new readings."""
    data = json.loads(example_bytes("readings_batch.json"))
    for i, r in enumerate(data["readings"]):
        r["ts"] = f"2026-03-01T{hour:02d}:00:0{i}+00:00"
        r["seq"] = seq + i
    return process(str(Topic.readings("E01")), json.dumps(data).encode(), RECEIVED, bounds=WIDE)


def test_resent_readings_mixed_with_new_ones_are_stored_once(conn: psycopg.Connection) -> None:
    """The plain COPY refuses a flush holding a stored reading; the merge stores only the new ones, and
    the flushes after it, merged or copied, store every new reading exactly once."""
    writer = BatchWriter(conn)
    assert writer.write([_readings_at(1, 1)]).stored_readings == 3  # plain COPY
    mixed = writer.write([_readings_at(2, 4), _readings_at(1, 1), _readings_at(3, 7)])
    assert (mixed.stored_readings, mixed.duplicates) == (6, 3)
    assert mixed.acks[0].seqs == tuple(range(1, 10))  # the resent ones are acked again
    fresh = [writer.write([_readings_at(h, 3 * h + 1)]) for h in (4, 5)]  # merged, then copied again
    assert [(f.stored_readings, f.duplicates) for f in fresh] == [(3, 0), (3, 0)]
    again = writer.write([_readings_at(5, 16), _readings_at(5, 16)])  # resent twice in one flush
    assert (again.stored_readings, again.duplicates) == (0, 6)
    assert count(conn, "meter_readings") == 15
    stored = conn.execute(
        "SELECT count(DISTINCT (unit_id, meter, ts)), count(DISTINCT seq) FROM meter_readings"
    )
    assert stored.fetchone() == (15, 15)


def _census(census: dict[str, int] | None, at: datetime, *, estate: str = "E01") -> ProcessResult:
    """The example status of ``estate``'s gateway with ``census`` as its faces_enrolled, received ``at``."""
    status = json.loads(example_bytes("agent_status_online.json"))
    status["estate_id"], status["agent_id"] = estate, f"{estate}-gw1"
    status["faces_enrolled"] = census
    return process(str(Topic.status(estate, f"{estate}-gw1")), json.dumps(status).encode(), at)


def _faces(conn: psycopg.Connection) -> dict[str, int | None]:
    return dict(conn.execute("SELECT unit_id, faces_enrolled FROM units").fetchall())


def test_a_census_sets_only_its_own_estates_registered_units(conn: psycopg.Connection) -> None:
    upsert_units(conn, [{"unit_id": "E02-1-0101", "estate_id": "E02", "faces_enrolled": 3}])
    writer = BatchWriter(conn)
    census = {"E01-1-0104": 0, "E01-1-0302": 2, "E02-1-0101": 0, "E01-9-9999": 1}
    result = writer.write([_census(census, RECEIVED)])
    assert (result.statuses, result.dead_letters, result.census_changed) == (1, 0, 2)
    assert result.census_skipped == (("E01", "E01-gw1", 2),)  # E02's unit and an unregistered one
    assert _faces(conn) == {"E01-1-0104": 0, "E01-1-0302": 2, "E01-1-0501": None, "E02-1-0101": 3}
    assert count(conn, "units") == 4  # the unknown unit is not created
    stored = conn.execute("SELECT payload FROM agent_status").fetchone()
    assert stored is not None and "faces_enrolled" not in stored[0]  # the census lives in the registry

    # Only changed values are written; the same census again changes nothing.
    again = writer.write([_census(census, RECEIVED + timedelta(seconds=30))])
    assert again.census_changed == 0
    # A forget brings the unit back to 0.
    forgot = writer.write([_census({**census, "E01-1-0302": 0}, RECEIVED + timedelta(minutes=1))])
    assert forgot.census_changed == 1
    assert _faces(conn)["E01-1-0302"] == 0


def test_an_older_status_does_not_put_back_older_counts(conn: psycopg.Connection) -> None:
    writer = BatchWriter(conn)
    writer.write([_census({"E01-1-0302": 1}, RECEIVED + timedelta(minutes=5))])
    late = writer.write([_census({"E01-1-0302": 4}, RECEIVED)])  # e.g. a retained status handed over late
    assert (late.census_changed, late.census_skipped) == (0, ())
    assert _faces(conn)["E01-1-0302"] == 1
    # A status without a census (an agent that does not report it, or its last will) leaves the counts.
    plain = json.loads(example_bytes("agent_status_offline.json"))
    writer.write([process(str(Topic.status("E01", "E01-gw1")), json.dumps(plain).encode(),
                          RECEIVED + timedelta(minutes=6))])  # fmt: skip
    assert _faces(conn)["E01-1-0302"] == 1
    assert conn.execute("SELECT state FROM agent_status").fetchone() == ("offline",)


def test_an_agent_of_another_estate_cannot_write_this_estates_units(conn: psycopg.Connection) -> None:
    writer = BatchWriter(conn)
    result = writer.write([_census({"E01-1-0302": 7}, RECEIVED, estate="E02")])
    assert (result.statuses, result.census_changed) == (1, 0)
    assert result.census_skipped == (("E02", "E02-gw1", 1),)
    assert _faces(conn)["E01-1-0302"] is None
