"""The pure processor: contract examples to rows, dead letters with reasons, and idempotency."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from anju_wire import Topic
from anju_wire.examples import example_bytes
from hub.ingest.processor import AckDue, ProcessResult, process

RECEIVED = datetime(2026, 3, 1, 0, 0, 6, tzinfo=UTC)
READINGS = str(Topic.readings("E01"))
ACCESS = str(Topic.access("E01"))
STATUS = str(Topic.status("E01", "E01-gw1"))


def test_readings_example_gives_rows_and_ack() -> None:
    result = process(READINGS, example_bytes("readings_batch.json"), RECEIVED)
    assert result.dead_letter is None
    assert [(r.unit_id, r.meter, r.value, r.quality) for r in result.readings] == [
        ("E01-1-0302", "electricity", 1532.47, "ok"),
        ("E01-1-0302", "water", 87.315, "ok"),
        ("E01-1-0302", "gas", None, "unavailable"),
    ]
    assert {r.estate_id for r in result.readings} == {"E01"}
    assert result.ack == AckDue(agent_id="E01-gw1", estate_id="E01", seqs=(1041, 1042, 1043))


def test_counter_events_pass_through_to_rows() -> None:
    plain = process(READINGS, example_bytes("readings_batch.json"), RECEIVED)
    assert {r.event for r in plain.readings} == {None}
    flagged = process(READINGS, example_bytes("readings_batch_counter_events.json"), RECEIVED)
    assert [(r.meter, r.value, r.event) for r in flagged.readings] == [
        ("gas", 0.42, "rollover"),
        ("electricity", 0.8, "replaced"),
        ("water", 87.402, None),
    ]


def test_access_example_gives_rows_and_ack() -> None:
    result = process(ACCESS, example_bytes("access_batch.json"), RECEIVED)
    assert result.dead_letter is None
    assert len(result.access) == 5
    stranger = result.access[2]
    assert (stranger.person, stranger.unit_id, stranger.stranger_track) == (None, None, "E01-G1-t000412")
    assert result.access[3].floor == 3
    assert result.ack is not None and result.ack.seqs == (1044, 1045, 1046, 1047, 1048)


@pytest.mark.parametrize("name", ["agent_status_online.json", "agent_status_offline.json"])
def test_status_examples_give_a_status_row(name: str) -> None:
    result = process(STATUS, example_bytes(name), RECEIVED)
    assert result.status is not None and result.ack is None
    assert result.status.agent_id == "E01-gw1"
    assert json.loads(result.status.payload)["state"] == result.status.state
    assert result.status.updated_at == RECEIVED


@pytest.mark.parametrize(
    ("topic", "name"),
    [
        (READINGS, "readings_batch.json"),
        (READINGS, "readings_batch_counter_events.json"),
        (ACCESS, "access_batch.json"),
        (STATUS, "agent_status_online.json"),
        ("anju/v1/E01/readings", "{not json"),
    ],
)
def test_processing_twice_gives_the_same_result(topic: str, name: str) -> None:
    payload = example_bytes(name) if name.endswith(".json") else name.encode()
    first = process(topic, payload, RECEIVED)
    second = process(topic, payload, RECEIVED)
    assert first == second
    assert first.rows > 0


def dead(result: ProcessResult) -> str:
    assert result.dead_letter is not None
    assert not result.readings and not result.access and result.status is None
    return result.dead_letter.reason


def test_bad_topic_is_dead_lettered() -> None:
    result = process("anju/v9/E01/readings", example_bytes("readings_batch.json"), RECEIVED)
    assert "version" in dead(result)
    assert result.ack is None
    assert result.dead_letter is not None and result.dead_letter.payload == example_bytes(
        "readings_batch.json"
    )


def test_bad_json_is_dead_lettered_without_ack() -> None:
    result = process(READINGS, b"\xff{not json", RECEIVED)
    assert "invalid ReadingsBatch" in dead(result)
    assert result.ack is None


def test_schema_violation_is_dead_lettered_and_its_seqs_acked() -> None:
    data = json.loads(example_bytes("readings_batch.json"))
    data["readings"][0]["value"] = -5
    result = process(READINGS, json.dumps(data).encode(), RECEIVED)
    assert "readings.0.value" in dead(result)
    # The agent's outbox may move on; the raw bytes are kept as a dead letter.
    assert result.ack == AckDue(agent_id="E01-gw1", estate_id="E01", seqs=(1041, 1042, 1043))


def test_estate_in_topic_must_match_payload() -> None:
    result = process(str(Topic.readings("E02")), example_bytes("readings_batch.json"), RECEIVED)
    assert "estate 'E01' in payload, 'E02' in topic" in dead(result)


def test_status_for_another_agent_is_dead_lettered() -> None:
    result = process(str(Topic.status("E01", "E01-gw9")), example_bytes("agent_status_online.json"), RECEIVED)
    assert "in topic" in dead(result)


def test_ack_topic_is_not_consumed() -> None:
    result = process(str(Topic.ack("E01", "E01-gw1")), example_bytes("ack.json"), RECEIVED)
    assert "does not consume ack" in dead(result)


def test_nul_in_topic_or_reason_cannot_break_the_dead_letter_table() -> None:
    result = process("anju/v1/E\x0001/readings", b"{}", RECEIVED)
    assert result.dead_letter is not None
    assert "\x00" not in result.dead_letter.topic and "\x00" not in result.dead_letter.reason
