"""The agent's records and batches against the wire contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from anju.edge_agent.records import RecordKind, StoredRecord, build_batch, reading_record
from anju_wire import AccessBatch, ReadingsBatch, encode
from anju_wire.examples import EXAMPLES, example_bytes

NOW = datetime(2026, 3, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_contract_examples_parse(name: str) -> None:
    _, model = EXAMPLES[name]
    model.model_validate_json(example_bytes(name))


def test_example_records_stored_without_seq_rebuild_the_example_batches() -> None:
    for name, kind, model, key in (
        ("readings_batch.json", RecordKind.READING, ReadingsBatch, "readings"),
        ("access_batch.json", RecordKind.ACCESS, AccessBatch, "events"),
    ):
        doc = json.loads(example_bytes(name))
        stored = [StoredRecord(seq=r.pop("seq"), kind=kind, payload=json.dumps(r)) for r in doc[key]]
        batch, bad = build_batch(
            kind, agent_id=doc["agent_id"], estate_id=doc["estate_id"],
            sent_at=datetime.fromisoformat(doc["sent_at"]), records=stored,
        )  # fmt: skip
        assert not bad and batch is not None
        assert model.model_validate_json(encode(batch)) == model.model_validate_json(example_bytes(name))


def test_reading_records_round_trip_and_bad_rows_are_set_apart() -> None:
    ok = reading_record(unit_id="U1", meter="gas", device="modbus-tcp://h:502/3", ts=NOW, value=12.5)  # type: ignore[arg-type]
    gone = reading_record(unit_id="U1", meter="gas", device="modbus-tcp://h:502/3", ts=NOW, value=None)  # type: ignore[arg-type]
    assert gone.quality == "unavailable" and "seq" not in json.loads(ok.to_json())
    records = [
        StoredRecord(1, RecordKind.READING, ok.to_json()),
        StoredRecord(2, RecordKind.READING, "not json"),
        StoredRecord(3, RecordKind.READING, gone.to_json()),
        StoredRecord(4, RecordKind.READING, json.dumps({**json.loads(ok.to_json()), "value": -1})),
    ]
    batch, bad = build_batch(RecordKind.READING, agent_id="A1", estate_id="E1", sent_at=NOW, records=records)
    assert isinstance(batch, ReadingsBatch)
    assert [r.seq for r in batch.readings] == [1, 3]
    assert [b.seq for b in bad] == [2, 4]
    none, bad = build_batch(RecordKind.ACCESS, agent_id="A1", estate_id="E1", sent_at=NOW, records=[])
    assert none is None and bad == []
