"""Wire contract v1: topics as value objects, every example payload valid, bad payloads named clearly."""

from __future__ import annotations

import json

import pytest

from anju_wire import (
    AccessBatch,
    Ack,
    AgentStatus,
    ContractError,
    ReadingsBatch,
    Topic,
    TopicKind,
    decode,
    encode,
)
from anju_wire.examples import EXAMPLES, example_bytes
from anju_wire.payloads import MAX_CENSUS_UNITS, MAX_ENROLLED, ranges_of
from anju_wire.topics import subscription


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_validates_and_round_trips(name: str) -> None:
    _kind, model = EXAMPLES[name]
    parsed = decode(model, example_bytes(name))
    assert decode(model, encode(parsed)) == parsed


def test_examples_cover_every_topic_kind() -> None:
    assert {kind for kind, _ in EXAMPLES.values()} == set(TopicKind)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("anju/v1/E01/readings", Topic(TopicKind.READINGS, "E01")),
        ("anju/v1/E01/access", Topic(TopicKind.ACCESS, "E01")),
        ("anju/v1/E01/status/E01-gw1", Topic(TopicKind.STATUS, "E01", "E01-gw1")),
        ("anju/v1/E01/ack/E01-gw1", Topic(TopicKind.ACK, "E01", "E01-gw1")),
    ],
)
def test_topics_parse_and_format(topic: str, expected: Topic) -> None:
    assert Topic.parse(topic) == expected
    assert str(expected) == topic


@pytest.mark.parametrize(
    "topic",
    ["anju/v2/E01/readings", "other/v1/E01/readings", "anju/v1/E01/bogus", "anju/v1/E01/readings/x",
     "anju/v1/E01/ack", "anju/v1/+/readings", "anju/v1//readings"],
)
def test_bad_topics_are_refused(topic: str) -> None:
    with pytest.raises(ContractError):
        Topic.parse(topic)


def test_wildcards_cannot_hide_in_ids() -> None:
    with pytest.raises(ContractError):
        Topic.readings("E01/#")


def test_shared_subscription_filter() -> None:
    assert subscription(TopicKind.READINGS, share_group="hub") == "$share/hub/anju/v1/+/readings"
    assert subscription(TopicKind.ACK, estate="E01") == "anju/v1/E01/ack/+"


def _readings_doc() -> dict:
    return json.loads(example_bytes("readings_batch.json"))


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["readings"][0].update(value=-1), "readings.0.value"),
        (lambda d: d["readings"][0].update(value=None), "null exactly when"),
        (lambda d: d["readings"][0].update(ts="2026-03-01T08:00:00"), "readings.0.ts"),
        (lambda d: d["readings"][0].update(meter="steam"), "readings.0.meter"),
        (lambda d: d["readings"][0].update(seq=0), "readings.0.seq"),
        (lambda d: d.update(readings=[]), "readings"),
        (lambda d: d.update(extra_field=1), "extra_field"),
        (lambda d: d.update(schema="anju.readings.v2"), "schema"),
    ],
)
def test_invalid_readings_name_the_problem(mutate, fragment: str) -> None:  # type: ignore[no-untyped-def]
    doc = _readings_doc()
    mutate(doc)
    with pytest.raises(ContractError, match=fragment.replace(".", r"\.")):
        decode(ReadingsBatch, json.dumps(doc).encode())


def test_not_json_is_a_contract_error() -> None:
    with pytest.raises(ContractError):
        decode(ReadingsBatch, b"\xff\x00not json")


@pytest.mark.parametrize(
    "event",
    [
        {"person": "p-0123456789abcdef"},  # registered person without a unit
        {"stranger_track": "t1", "unit_id": "E01-1-0101"},  # stranger attributed to a unit
        {"stranger_track": "t1", "method": "card"},  # a card is never a stranger
        {"person": "p-0123456789abcdef", "unit_id": "u", "stranger_track": "t1"},  # both
        {},  # neither
        {"person": "Zhang San", "unit_id": "u"},  # a real name is not a pseudonym
    ],
)
def test_access_event_identity_rules(event: dict) -> None:
    base = {"seq": 1, "event_id": "g:1", "ts": "2026-03-01T07:42:13+08:00", "device_id": "g",
            "building": "1", "method": "face"}
    doc = {"agent_id": "a", "estate_id": "E01", "sent_at": "2026-03-01T08:00:00+08:00",
           "events": [{**base, **event}]}
    with pytest.raises(ContractError):
        decode(AccessBatch, json.dumps(doc).encode())


def test_ack_ranges_compress_and_expand() -> None:
    seqs = [5, 1, 2, 3, 9, 10, 7]
    ranges = ranges_of(seqs)
    assert [(r.first, r.last) for r in ranges] == [(1, 3), (5, 5), (7, 7), (9, 10)]
    ack = Ack(agent_id="a", estate_id="E01", ts="2026-03-01T08:00:00+08:00", ranges=ranges)  # type: ignore[arg-type]
    assert ack.seqs() == sorted(seqs)


def test_counter_events_are_optional_and_left_out_when_absent() -> None:
    plain = decode(ReadingsBatch, example_bytes("readings_batch.json"))
    assert all(r.event is None for r in plain.readings)
    assert b'"event"' not in encode(plain)  # a reader of the first v1 sees the bytes it knows
    flagged = decode(ReadingsBatch, example_bytes("readings_batch_counter_events.json"))
    assert [r.event for r in flagged.readings] == ["rollover", "replaced", None]
    wire = json.loads(encode(flagged))
    assert [r.get("event") for r in wire["readings"]] == ["rollover", "replaced", None]
    assert "event" not in wire["readings"][2]


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"event": "reset"}, "readings.0.event"),
        ({"event": "rollover", "value": None, "quality": "unavailable"}, "an event needs the value"),
    ],
)
def test_bad_counter_events_are_refused(patch: dict, fragment: str) -> None:
    doc = _readings_doc()
    doc["readings"][0].update(patch)
    with pytest.raises(ContractError, match=fragment.replace(".", r"\.")):
        decode(ReadingsBatch, json.dumps(doc).encode())


def _status_doc() -> dict:
    return json.loads(example_bytes("agent_status_online.json"))


def test_face_census_is_optional_and_left_out_when_absent() -> None:
    doc = _status_doc()
    assert decode(AgentStatus, json.dumps(doc).encode()).faces_enrolled == {
        "E01-1-0104": 0, "E01-1-0302": 2, "E01-1-0501": 1,
    }  # fmt: skip
    del doc["faces_enrolled"]
    plain = decode(AgentStatus, json.dumps(doc).encode())
    assert plain.faces_enrolled is None
    assert b"faces_enrolled" not in encode(plain)  # an older hub reads the bytes it knows
    assert b"faces_enrolled" not in example_bytes("agent_status_offline.json")
    assert decode(AgentStatus, encode(AgentStatus(agent_id="a", estate_id="E01", state="online",
                                                  faces_enrolled={}))).faces_enrolled == {}  # fmt: skip


@pytest.mark.parametrize(
    ("census", "fragment"),
    [
        ({"E01-1-0101": -1}, "greater than or equal to 0"),
        ({"E01-1-0101": MAX_ENROLLED + 1}, "less than or equal to"),
        ({"E01-1-0101": 1.5}, "valid integer"),
        ({"E01/1/0101": 1}, "pattern"),  # a unit id the contract's Ident does not allow
        ({"": 1}, "at least 1 character"),
        ({"u" * 65: 1}, "at most 64 characters"),
        ({f"E01-{i}": 0 for i in range(MAX_CENSUS_UNITS + 1)}, "at most 100000 items"),
        ([["E01-1-0101", 1]], "should be an object"),
        ({"E01-1-0101": {"person": "p-0123456789abcdef"}}, "valid integer"),  # no person ever rides along
    ],
)
def test_bad_face_census_is_refused(census: object, fragment: str) -> None:
    doc = _status_doc()
    doc["faces_enrolled"] = census
    with pytest.raises(ContractError, match=fragment):
        decode(AgentStatus, json.dumps(doc).encode())
