"""The pure processor: contract examples to rows, dead letters with reasons, and idempotency."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from anju.hub.ingest.processor import AckDue, ProcessResult, process
from anju_wire import Topic
from anju_wire.examples import example_bytes

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


# Trust boundaries (issue 13): no message raises out of process(); time bounds; estate binding.


def _readings_at(ts: str, *, estate: str = "E01", agent: str = "E01-gw1") -> bytes:
    data = json.loads(example_bytes("readings_batch.json"))
    data["estate_id"], data["agent_id"] = estate, agent
    for r in data["readings"]:
        r["ts"] = ts
    return json.dumps(data).encode()


def test_deeply_nested_json_is_a_dead_letter_not_a_recursion_error() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000  # 200 KB: json.loads in the ack salvage hit RecursionError
    result = process(READINGS, deep, RECEIVED)
    assert result.dead_letter is not None and result.ack is None
    assert result.dead_letter.estate_id == "E01"


def test_any_exception_while_processing_becomes_a_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    import anju.hub.ingest.processor as processor

    def boom(*_a: object) -> None:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(processor, "_readings", boom)
    result = process(READINGS, example_bytes("readings_batch.json"), RECEIVED)
    assert result.dead_letter is not None
    assert (result.dead_letter.code, result.dead_letter.reason) == (
        "unexpected",
        "OverflowError: date value out of range",
    )


@pytest.mark.parametrize(
    ("ts", "code"),
    [
        ("9999-12-15T10:00:00+08:00", "ts_future"),
        ("9999-12-31T23:59:59-12:00", "ts_future"),
        ("2999-01-01T00:00:00+08:00", "ts_future"),
        ("2026-03-02T00:00:07+00:00", "ts_future"),  # a day and a second ahead of the hub's clock
        ("1901-06-01T00:00:00+08:00", "ts_too_old"),
        ("0001-01-01T00:00:00+00:00", "ts_too_old"),
    ],
)
def test_readings_outside_the_time_bounds_are_dead_letters_with_their_reason(ts: str, code: str) -> None:
    result = process(READINGS, _readings_at(ts), RECEIVED)
    assert result.readings == () and result.dead_letter is not None
    assert result.dead_letter.code == code and "readings.0.ts" in result.dead_letter.reason
    # The agent of this estate is still acknowledged: its outbox moves on, the bytes stay in dead_letters.
    assert result.ack == AckDue(agent_id="E01-gw1", estate_id="E01", seqs=(1041, 1042, 1043))


def test_time_bounds_are_configurable() -> None:
    from datetime import timedelta

    from anju_wire import TimeBounds

    far = _readings_at("2030-03-01T00:00:00+08:00")
    assert process(READINGS, far, RECEIVED).dead_letter is not None
    wide = TimeBounds(max_future=timedelta(days=5 * 366))
    assert process(READINGS, far, RECEIVED, bounds=wide).dead_letter is None


def test_access_event_outside_the_time_bounds_is_a_dead_letter() -> None:
    data = json.loads(example_bytes("access_batch.json"))
    data["events"][3]["ts"] = "2999-12-15T10:00:00+08:00"
    result = process(ACCESS, json.dumps(data).encode(), RECEIVED)
    assert result.dead_letter is not None and result.dead_letter.code == "ts_future"
    assert "events.3.ts" in result.dead_letter.reason


def test_readings_of_another_estates_agent_are_refused_and_not_acked() -> None:
    result = process(READINGS, _readings_at("2026-03-01T08:00:00+08:00", agent="E02-gw1"), RECEIVED)
    assert result.dead_letter is not None and result.dead_letter.code == "agent_other_estate"
    assert result.ack is None


def test_status_for_another_estates_agent_on_this_estates_topic_is_refused() -> None:
    status = json.loads(example_bytes("agent_status_online.json"))
    status["estate_id"], status["agent_id"] = "E01", "E02-gw1"
    result = process(str(Topic.status("E01", "E02-gw1")), json.dumps(status).encode(), RECEIVED)
    assert result.status is None and result.dead_letter is not None
    assert (result.dead_letter.code, result.dead_letter.estate_id) == ("agent_other_estate", "E01")


def test_junk_naming_another_agents_id_and_seqs_is_not_acked() -> None:
    junk = json.dumps({"agent_id": "E02-gw1", "readings": [{"seq": 5}, {"seq": 6}]}).encode()
    result = process(READINGS, junk, RECEIVED)
    assert result.dead_letter is not None and result.ack is None
    own = json.dumps({"agent_id": "E01-gw1", "readings": [{"seq": 5}]}).encode()
    assert process(READINGS, own, RECEIVED).ack == AckDue(agent_id="E01-gw1", estate_id="E01", seqs=(5,))


def test_bind_units_refuses_unregistered_and_other_estates_units() -> None:
    from anju.hub.ingest.processor import bind_units, units_named

    result = process(READINGS, example_bytes("readings_batch.json"), RECEIVED)
    assert units_named(result) == {"E01-1-0302"}
    assert bind_units(result, {"E01-1-0302": "E01"}) is result
    unknown = bind_units(result, {})
    assert unknown.readings == () and unknown.dead_letter is not None
    assert unknown.dead_letter.code == "unit_unregistered"
    assert unknown.dead_letter.payload == example_bytes("readings_batch.json")
    assert unknown.ack == result.ack  # sent by this estate's agent on its topic: acked, kept as a dead letter
    other = bind_units(result, {"E01-1-0302": "E02"})
    assert other.dead_letter is not None and other.dead_letter.code == "unit_other_estate"
    assert "'E02'" in other.dead_letter.reason

    events = process(ACCESS, example_bytes("access_batch.json"), RECEIVED)
    units = units_named(events)
    assert bind_units(events, dict.fromkeys(units, "E01")) is events
    assert (
        bind_units(events, {**dict.fromkeys(units, "E01"), sorted(units)[0]: "E02"}).dead_letter is not None
    )


def test_salvaged_ack_leaves_out_seqs_no_ack_can_carry() -> None:
    # Found by the fuzz test: a seq of 2**64 in a rejected batch made the ack itself fail after commit.
    junk = json.dumps({"agent_id": "E01-gw1", "readings": [{"seq": 2**64}, {"seq": 5}]}).encode()
    assert process(READINGS, junk, RECEIVED).ack == AckDue(agent_id="E01-gw1", estate_id="E01", seqs=(5,))


def test_a_status_census_goes_to_its_row_sorted_and_not_into_the_stored_payload() -> None:
    result = process(STATUS, example_bytes("agent_status_online.json"), RECEIVED)
    assert result.status is not None
    assert result.status.faces_enrolled == (("E01-1-0104", 0), ("E01-1-0302", 2), ("E01-1-0501", 1))
    assert "faces_enrolled" not in json.loads(result.status.payload)
    offline = process(STATUS, example_bytes("agent_status_offline.json"), RECEIVED)
    assert offline.status is not None and offline.status.faces_enrolled is None
