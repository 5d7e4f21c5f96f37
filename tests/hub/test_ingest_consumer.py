"""The ingest service end to end: a real Mosquitto, a real PostgreSQL, acks only after commit."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from anju.hub.ingest.consumer import IngestService
from anju.hub.storage import ensure_schema, upsert_units
from anju_mqtt import parse_broker_url, stop_loop
from anju_wire import Ack, TimeBounds, Topic, decode
from anju_wire.examples import example_bytes
from tests.services import create_database, drop_database, mosquitto_broker

pytestmark = pytest.mark.integration


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


class Agent:
    """A stand-in edge agent: publishes batches and collects the hub's acks."""

    def __init__(self, mqtt_url: str, estate: str, agent: str | None = None) -> None:
        self.estate, self.agent = estate, agent or f"{estate}-gw1"  # agent ids are "{estate}-<name>"
        self.acks: list[Ack] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        address = parse_broker_url(mqtt_url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect(address.host, address.port)
        self.client.subscribe(str(Topic.ack(estate, self.agent)), qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(5)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.acks.append(decode(Ack, bytes(msg.payload)))

    def acked(self) -> set[int]:
        with self._lock:
            return {s for a in self.acks for s in a.seqs()}

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def readings(self, seqs: list[int], *, hour: int = 8) -> bytes:
        data = json.loads(example_bytes("readings_batch.json"))
        data["estate_id"], data["agent_id"] = self.estate, self.agent
        proto = data["readings"][0]
        data["readings"] = [
            {
                **proto,
                "seq": s,
                "unit_id": f"{self.estate}-1-0101",
                "ts": f"2026-03-01T{hour:02d}:{i:02d}:00+08:00",
            }
            for i, s in enumerate(seqs)
        ]
        return json.dumps(data).encode()

    def access(self, seqs: list[int]) -> bytes:
        data = json.loads(example_bytes("access_batch.json"))
        data["estate_id"], data["agent_id"] = self.estate, self.agent
        data["events"] = [
            {**e, "seq": s, **({"unit_id": f"{self.estate}-1-0101"} if e.get("unit_id") else {})}
            for e, s in zip(data["events"], seqs, strict=False)
        ]
        return json.dumps(data).encode()

    def close(self) -> None:
        self.client.disconnect()
        stop_loop(self.client)


@pytest.fixture
def estate() -> str:
    return "T" + uuid.uuid4().hex[:8]


def register(url: str, *estates: str) -> None:
    """The schema, with unit ``{estate}-1-0101`` of each estate in the registry."""
    with psycopg.connect(url) as conn:
        ensure_schema(conn)
        upsert_units(conn, [{"unit_id": f"{e}-1-0101", "estate_id": e} for e in estates])
        conn.commit()


@pytest.fixture
def database_url(database_url_each_backend: str) -> str:
    """Storing and acking run on monthly partitions and on TimescaleDB; the rest on partitions only."""
    return database_url_each_backend


partitions_only = pytest.mark.parametrize("storage_backend", ["partitions"])


@pytest.fixture
def schema_url(database_url: str, estate: str) -> str:
    register(database_url, estate)
    return database_url


@contextmanager
def running(database_url: str, mqtt_url: str, **kw: Any) -> Iterator[IngestService]:
    group = "g" + uuid.uuid4().hex[:8]  # its own share group, so no other test's hub takes our messages
    service = IngestService(
        database_url=database_url,
        mqtt_url=mqtt_url,
        share_group=group,
        client_id=f"hub-{group}",
        flush_s=0.05,
        retry_cap_s=0.5,
        **kw,
    )
    service.start()
    try:
        assert service.wait_ready(10)
        yield service
    finally:
        service.stop()


@contextmanager
def agent(mqtt_url: str, estate: str) -> Iterator[Agent]:
    a = Agent(mqtt_url, estate)
    try:
        yield a
    finally:
        a.close()


def scalar(url: str, query: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()  # type: ignore[arg-type,unused-ignore]
        return row[0] if row else None


def test_malformed_messages_are_dead_lettered_and_valid_ones_around_them_stored(
    schema_url: str, mqtt_url: str, estate: str
) -> None:
    with running(schema_url, mqtt_url) as service, agent(mqtt_url, estate) as a:
        bad_schema = json.loads(a.readings([20]))
        bad_schema["readings"][0]["meter"] = "steam"
        a.publish(str(Topic.readings(estate)), a.readings([1, 2, 3]))
        a.publish(str(Topic.readings(estate)), b"{this is not json")
        a.publish(str(Topic.access(estate)), a.access([4, 5, 6, 7, 8]))
        a.publish(str(Topic.readings(estate)), json.dumps(bad_schema).encode())
        a.publish(str(Topic.readings(estate)), a.readings([9], hour=9))
        wait_for(lambda: a.acked() >= {1, 2, 3, 4, 5, 6, 7, 8, 9, 20})
        assert a.acked() == {1, 2, 3, 4, 5, 6, 7, 8, 9, 20}
        rows = scalar(schema_url, "SELECT array_agg(seq ORDER BY seq) FROM meter_readings")
        assert rows == [1, 2, 3, 9]
        assert scalar(schema_url, "SELECT count(*) FROM access_events") == 5
        with psycopg.connect(schema_url) as conn:
            dead = conn.execute("SELECT topic, payload, reason FROM dead_letters ORDER BY id").fetchall()
        assert [(t, bytes(p)) for t, p, _ in dead] == [
            (f"anju/v1/{estate}/readings", b"{this is not json"),
            (f"anju/v1/{estate}/readings", json.dumps(bad_schema).encode()),
        ]
        assert "invalid ReadingsBatch" in dead[0][2]
        assert "readings.0.meter" in dead[1][2]
        wait_for(lambda: service.stats().dead_letters == 2)
        stats = service.stats()
        assert (stats.stored_readings, stats.stored_events, stats.duplicates) == (4, 5, 0)


def test_ack_carries_the_seq_ranges_and_duplicates_are_stored_once(
    schema_url: str, mqtt_url: str, estate: str
) -> None:
    with running(schema_url, mqtt_url, batch_max=10_000) as service, agent(mqtt_url, estate) as a:
        payload = a.readings([1041, 1042, 1043, 1045])
        a.publish(str(Topic.readings(estate)), payload)
        wait_for(lambda: len(a.acks) == 1)
        ack = a.acks[0]
        assert (ack.agent_id, ack.estate_id) == (f"{estate}-gw1", estate)
        assert [(r.first, r.last) for r in ack.ranges] == [(1041, 1043), (1045, 1045)]
        a.publish(str(Topic.readings(estate)), payload)  # the agent resends: stored once, acked again
        wait_for(lambda: len(a.acks) == 2)
        assert a.acks[1].seqs() == [1041, 1042, 1043, 1045]
        assert scalar(schema_url, "SELECT count(*) FROM meter_readings") == 4
        wait_for(lambda: service.stats().duplicates == 4)  # counted just after the acks go out
        assert scalar(schema_url, f"SELECT estate_id FROM units WHERE unit_id = '{estate}-1-0101'") == estate


@partitions_only
def test_status_is_upserted(schema_url: str, mqtt_url: str, estate: str) -> None:
    with running(schema_url, mqtt_url) as service, agent(mqtt_url, estate) as a:
        status = json.loads(example_bytes("agent_status_online.json"))
        status["estate_id"], status["agent_id"] = estate, a.agent
        a.publish(str(Topic.status(estate, a.agent)), json.dumps(status).encode())
        # Other tests' agents leave retained statuses on the shared broker: look for this estate's row.
        query = f"SELECT state FROM agent_status WHERE agent_id = '{a.agent}' AND estate_id = '{estate}'"
        wait_for(lambda: scalar(schema_url, query) == "online")
        # Counted after the flush commits and sends its acks: the row can be read a moment before.
        wait_for(lambda: service.stats().statuses >= 1)


def test_database_outage_acks_nothing_until_the_rows_are_committed(
    pg_admin_url: str, mqtt_url: str, estate: str
) -> None:
    # The service points at a database that does not exist yet: every flush fails.
    staged = create_database(pg_admin_url)
    register(staged, estate)
    missing = "t_" + uuid.uuid4().hex[:12]
    staged_name = psycopg.conninfo.conninfo_to_dict(staged)["dbname"]
    target = psycopg.conninfo.make_conninfo(staged, dbname=missing)
    try:
        with running(target, mqtt_url) as service, agent(mqtt_url, estate) as a:
            a.publish(str(Topic.readings(estate)), a.readings([1, 2]))
            wait_for(lambda: service.stats().flush_failures >= 2)
            assert a.acked() == set()
            # The database comes back (renamed into place, schema and all).
            with psycopg.connect(pg_admin_url, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{staged_name}" RENAME TO "{missing}"')  # type: ignore[arg-type,unused-ignore]
            wait_for(lambda: a.acked() == {1, 2})
            assert scalar(target, "SELECT count(*) FROM meter_readings") == 2
    finally:
        drop_database(pg_admin_url, target)
        drop_database(pg_admin_url, staged)


@partitions_only
def test_stop_without_start_and_stats_dict(schema_url: str, mqtt_url: str) -> None:
    service = IngestService(database_url=schema_url, mqtt_url=mqtt_url, share_group="", client_id="idle-hub")
    assert service.subscriptions() == ["anju/v1/+/readings", "anju/v1/+/access", "anju/v1/+/status/+"]
    assert service.stats_dict()["messages"] == 0
    service.stop()  # never started: nothing to join, nothing to disconnect


@partitions_only
def test_deep_nesting_and_year_9999_readings_do_not_stop_ingest(
    schema_url: str, mqtt_url: str, estate: str
) -> None:
    with running(schema_url, mqtt_url) as service, agent(mqtt_url, estate) as a:
        a.publish(str(Topic.readings(estate)), b"[" * 100_000 + b"]" * 100_000)
        far = json.loads(a.readings([2]))
        far["readings"][0]["ts"] = "9999-12-15T10:00:00+08:00"
        a.publish(str(Topic.readings(estate)), json.dumps(far).encode())
        a.publish(str(Topic.readings(estate)), a.readings([3], hour=9))
        wait_for(lambda: a.acked() == {2, 3})
        assert scalar(schema_url, "SELECT array_agg(seq) FROM meter_readings") == [3]
        codes = scalar(schema_url, "SELECT array_agg(code ORDER BY id) FROM dead_letters")
        assert codes == ["contract", "ts_future"]
        wait_for(lambda: service.dead_letters_by_estate() == {estate: {"contract": 1, "ts_future": 1}})
        assert service.writer_part.snapshot().up and service.writer_part.snapshot().restarts == 0


@partitions_only
def test_a_batch_the_writer_refuses_is_split_down_to_the_bad_message(
    schema_url: str, mqtt_url: str, estate: str
) -> None:
    # Bounds wide open, so the year-9999 reading reaches the writer, whose partition for 9999-12 cannot
    # be made (its upper bound is year 10000): a ValueError, not a database error, which used to end the
    # writer thread. It is retried, then the batch is halved until that message alone is dead-lettered.
    wide = TimeBounds(max_future=timedelta(days=10**7), max_age=timedelta(days=10**7))
    with (
        running(schema_url, mqtt_url, bounds=wide, batch_max=10_000) as service,
        agent(mqtt_url, estate) as a,
    ):
        service_flush_together = [a.readings([1, 2]), a.readings([3], hour=9), a.readings([4], hour=10)]
        far = json.loads(service_flush_together[1])
        far["readings"][0]["ts"] = "9999-12-15T10:00:00+08:00"
        service_flush_together[1] = json.dumps(far).encode()
        for payload in service_flush_together:
            a.publish(str(Topic.readings(estate)), payload)
        wait_for(lambda: a.acked() == {1, 2, 3, 4})
        assert scalar(schema_url, "SELECT array_agg(seq ORDER BY seq) FROM meter_readings") == [1, 2, 4]
        row = scalar(schema_url, "SELECT code || ': ' || reason FROM dead_letters")
        assert row.startswith("db_refused: refused by the database: ValueError")
        assert service.writer_part.snapshot().restarts == 0


@partitions_only
def test_cross_estate_writes_are_refused_and_acked_to_nobody_else(
    database_url: str, mqtt_url: str, estate: str
) -> None:
    other = "U" + uuid.uuid4().hex[:8]
    register(database_url, estate, other)
    with (
        running(database_url, mqtt_url) as service,
        agent(mqtt_url, estate) as a,
        agent(mqtt_url, other) as b,
    ):
        status = json.loads(example_bytes("agent_status_online.json"))
        status["estate_id"], status["agent_id"] = other, b.agent
        b.publish(str(Topic.status(other, b.agent)), json.dumps(status).encode())
        query = f"SELECT estate_id || '/' || state FROM agent_status WHERE agent_id = '{b.agent}'"
        wait_for(lambda: scalar(database_url, query) == f"{other}/online")

        topic = str(Topic.readings(estate))
        theirs = json.loads(a.readings([1]))
        theirs["readings"][0]["unit_id"] = f"{other}-1-0101"  # estate's gateway writes other's flat
        a.publish(topic, json.dumps(theirs).encode())
        new_unit = json.loads(a.readings([2], hour=9))
        new_unit["readings"][0]["unit_id"] = f"{estate}-9-9999"  # a unit not in the registry
        a.publish(topic, json.dumps(new_unit).encode())
        event = json.loads(a.access([3]))
        event["events"] = [e for e in event["events"] if e.get("unit_id")][:1]
        event["events"][0]["unit_id"] = f"{other}-1-0101"
        a.publish(str(Topic.access(estate)), json.dumps(event).encode())
        # Junk and a reading naming the other estate's agent and its seqs, on this estate's topics.
        a.publish(topic, json.dumps({"agent_id": b.agent, "readings": [{"seq": 7}]}).encode())
        a.publish(topic, b.readings([8]).replace(f'"{other}"'.encode(), f'"{estate}"'.encode()))
        status["estate_id"], status["state"] = estate, "offline"
        a.publish(str(Topic.status(estate, b.agent)), json.dumps(status).encode())
        a.publish(topic, a.readings([9], hour=10))  # and one good reading after all that

        wait_for(lambda: 9 in a.acked())
        wait_for(lambda: scalar(database_url, "SELECT count(*) FROM dead_letters") == 6)
        assert a.acked() == {1, 2, 3, 9}  # its own seqs, dead letters included, on its own topic
        time.sleep(0.3)
        assert b.acked() == set()  # nothing acked to the other estate's agent
        assert scalar(database_url, "SELECT array_agg(seq) FROM meter_readings") == [9]
        assert scalar(database_url, "SELECT count(*) FROM access_events") == 0
        assert scalar(database_url, f"SELECT count(*) FROM units WHERE unit_id = '{estate}-9-9999'") == 0
        assert scalar(database_url, query) == f"{other}/online"  # the other agent did not move
        codes = scalar(database_url, "SELECT array_agg(code ORDER BY code) FROM dead_letters")
        assert codes == ["agent_other_estate", "agent_other_estate", "contract", "unit_other_estate",
                         "unit_other_estate", "unit_unregistered"]  # fmt: skip
        wait_for(lambda: sum(service.dead_letters_by_estate().get(estate, {}).values()) == 6)


@partitions_only
def test_while_a_batch_is_written_the_next_is_processed_and_nothing_is_acked_early(
    schema_url: str, estate: str
) -> None:
    """The flusher writes one batch at a time. Held by a lock, it acks nothing, and the lag counts its
    batch; the writer meanwhile takes the next message off the queue. Once the lock goes, each batch is
    committed and acked, once.

    On a broker of its own: it counts every message the hub takes, and on the session's broker other
    tests' agents publish too (the hub subscribes to every estate's readings)."""
    topic = str(Topic.readings(estate))
    with (
        mosquitto_broker() as mqtt_url,
        running(schema_url, mqtt_url) as service,
        agent(mqtt_url, estate) as a,
    ):
        a.publish(topic, a.readings([1, 2]))
        wait_for(lambda: a.acked() == {1, 2})  # the flusher's connection is open
        with psycopg.connect(schema_url) as blocker:
            blocker.execute("LOCK TABLE meter_readings IN ACCESS EXCLUSIVE MODE")
            a.publish(topic, a.readings([3, 4], hour=9))
            wait_for(lambda: (service.writer_part.snapshot().lag_s or 0.0) > 0.3)  # its batch is held
            a.publish(topic, a.readings([5], hour=10))
            wait_for(lambda: service.queue_depth() == 0 and service.stats().messages == 3)
            time.sleep(0.3)
            assert a.acked() == {1, 2}
            assert service.stats().flushes == 1
        wait_for(lambda: a.acked() == {1, 2, 3, 4, 5})
        wait_for(lambda: service.stats().flushes == 3)  # counted just after its acks go out
    assert scalar(schema_url, "SELECT count(*) FROM meter_readings") == 5


@partitions_only
def test_a_gateways_census_sets_faces_enrolled_of_its_estate_and_no_other(
    schema_url: str, estate: str
) -> None:
    """The census of a status over the broker: this estate's units take it, another estate's unit named
    in it is untouched, an unknown one is not created; both are counted, and the status is stored.

    On a broker of its own: the counts are exact only without other tests' retained statuses."""
    other = "U" + uuid.uuid4().hex[:8]
    register(schema_url, other)
    with psycopg.connect(schema_url) as conn:
        upsert_units(conn, [{"unit_id": f"{estate}-1-0102", "estate_id": estate, "faces_enrolled": 4},
                            {"unit_id": f"{other}-1-0101", "estate_id": other, "faces_enrolled": 3}])
        conn.commit()  # fmt: skip
    faces = "SELECT faces_enrolled FROM units WHERE unit_id = '{}'"
    with (
        mosquitto_broker() as mqtt_url,
        running(schema_url, mqtt_url) as service,
        agent(mqtt_url, estate) as a,
    ):
        status = json.loads(example_bytes("agent_status_online.json"))
        status["estate_id"], status["agent_id"] = estate, a.agent
        status["faces_enrolled"] = {f"{estate}-1-0101": 2, f"{estate}-1-0102": 0, f"{other}-1-0101": 0,
                                    f"{estate}-9-9999": 1}  # fmt: skip
        a.publish(str(Topic.status(estate, a.agent)), json.dumps(status).encode())
        wait_for(lambda: scalar(schema_url, faces.format(f"{estate}-1-0101")) == 2)
        assert scalar(schema_url, faces.format(f"{estate}-1-0102")) == 0
        assert scalar(schema_url, faces.format(f"{other}-1-0101")) == 3  # another estate's registry
        assert scalar(schema_url, f"SELECT count(*) FROM units WHERE unit_id = '{estate}-9-9999'") == 0
        assert scalar(schema_url, f"SELECT state FROM agent_status WHERE agent_id = '{a.agent}'") == "online"
        assert scalar(schema_url, "SELECT count(*) FROM dead_letters") == 0
        wait_for(lambda: service.stats().census_units_changed == 2)  # counted just after the commit
        assert service.stats().census_units_skipped == 2

        status["faces_enrolled"][f"{estate}-1-0101"] = 0  # the household's people were forgotten
        a.publish(str(Topic.status(estate, a.agent)), json.dumps(status).encode())
        wait_for(lambda: scalar(schema_url, faces.format(f"{estate}-1-0101")) == 0)
        assert scalar(schema_url, faces.format(f"{other}-1-0101")) == 3
