"""Property: no message stops ingest. The real consumer (real Mosquitto, real PostgreSQL) takes fuzzed
messages (arbitrary bytes, deep nesting, huge numbers, NaN, timestamps from year 1 to 9999) and then
stores the next valid reading.

``ANJU_FUZZ_EXAMPLES`` sets the number of rounds (default 60, each 1 to 8 fuzzed messages and one valid
reading); ``ANJU_FUZZ_EXAMPLES=2500`` sends over 10,000 fuzzed messages (the issue's target).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anju_wire import Topic
from tests.hub.test_ingest_consumer import agent, register, running, scalar, wait_for

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("ANJU_FUZZ_EXAMPLES", "60"))
OFFSETS = [UTC, timezone(timedelta(hours=-12)), timezone(timedelta(hours=14)), timezone(timedelta(hours=8))]

timestamps = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from(OFFSETS)
).map(lambda d: d.isoformat())
huge_numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([10**400, -(10**400), 2**63, 2**63 - 1, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
)
nesting = st.integers(min_value=50, max_value=60_000).flatmap(
    lambda n: st.sampled_from([b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b"[" * n])
)


def _reading(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "seq": 1, "unit_id": "U", "meter": "electricity", "device": "d", "ts": "2026-03-01T00:00:00+08:00",
        "value": 1.0, "quality": "ok",
    }  # fmt: skip
    return {**base, **fields}


def _shaped(estate: str, agent_id: str) -> st.SearchStrategy[bytes]:
    """Contract-shaped batches with hostile fields: NaN, huge numbers, any date, other agents."""
    reading = st.builds(
        _reading,
        seq=huge_numbers,
        unit_id=st.sampled_from([f"{estate}-1-0101", "X-1-0101", "", "a/b/#"]),
        ts=timestamps,
        value=huge_numbers,
    )
    batch = st.fixed_dictionaries(
        {
            "schema": st.just("anju.readings.v1"),
            "agent_id": st.sampled_from([agent_id, "X-gw1", "gw1"]),
            "estate_id": st.sampled_from([estate, "X"]),
            "sent_at": timestamps,
            "readings": st.lists(reading, min_size=1, max_size=4),
        }
    )
    # json.dumps writes NaN/Infinity literals and any big int: what a hostile agent can send.
    return batch.map(lambda d: json.dumps(d).encode())


def fuzz_messages(estate: str, agent_id: str) -> st.SearchStrategy[tuple[str, bytes]]:
    """One (topic, payload) of the fuzz: any of the hub's topics of this estate, any hostile payload."""
    topics = st.sampled_from(
        [str(Topic.readings(estate)), str(Topic.access(estate)), str(Topic.status(estate, agent_id))]
    )
    payloads = st.one_of(
        st.binary(max_size=400),
        nesting,
        _shaped(estate, agent_id),
        st.recursive(
            st.none() | st.booleans() | huge_numbers | st.text(max_size=20) | timestamps,
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    )
    return st.tuples(topics, payloads)


@pytest.fixture
def estate() -> str:
    return "Z" + uuid.uuid4().hex[:8]


@pytest.fixture
def schema_url(database_url: str, estate: str) -> str:
    register(database_url, estate)
    return database_url


def test_fuzzed_messages_never_stop_ingest(schema_url: str, mqtt_url: str, estate: str) -> None:
    sent = itertools.count(1)
    fuzzed = 0
    base = datetime(2026, 3, 1, tzinfo=UTC)
    with running(schema_url, mqtt_url) as service, agent(mqtt_url, estate) as a:

        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 60,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )  # fmt: skip
        @given(st.lists(fuzz_messages(estate, a.agent), min_size=1, max_size=8))
        def round_(messages: list[tuple[str, bytes]]) -> None:
            nonlocal fuzzed
            for topic, payload in messages:
                a.publish(topic, payload)
            fuzzed += len(messages)
            seq = 10**6 + next(sent)  # beyond any seq the fuzz can store, so its row is the valid one's
            valid = json.loads(a.readings([seq]))
            valid["readings"][0]["ts"] = (base + timedelta(minutes=seq - 10**6)).isoformat()
            a.publish(str(Topic.readings(estate)), json.dumps(valid).encode())
            wait_for(lambda: seq in a.acked(), timeout=30)
            query = f"SELECT count(*) FROM meter_readings WHERE seq = {seq}"
            assert scalar(schema_url, query) == 1

        round_()
        health = service.writer_part.snapshot()
        stats = service.stats()
        print(
            f"\nfuzz: {fuzzed} fuzzed messages in {EXAMPLES} rounds; ingest restarts={health.restarts} "
            f"up={health.up}; messages={stats.messages} dead_letters={stats.dead_letters} "
            f"stored_readings={stats.stored_readings}"
        )
        assert health.up and health.restarts == 0
        with psycopg.connect(schema_url) as conn:
            # Whatever the fuzz got stored lies inside the time bounds and names a registered unit.
            row = conn.execute(
                "SELECT count(*) FROM meter_readings m LEFT JOIN units u USING (unit_id)"
                " WHERE u.unit_id IS NULL OR m.ts > now() + interval '1 day'"
                " OR m.ts < now() - interval '3660 days' OR m.value = 'NaN'::float8"
            ).fetchone()
        assert row == (0,)
        assert not math.isnan(float(stats.stored_readings))
