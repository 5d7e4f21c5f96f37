"""The fast readings path (``decode_readings``) keeps exactly the rules of ``decode(ReadingsBatch, ...)``.

Generated batches mix valid and broken fields (types, patterns, lengths, NaN, naive times, the rules
between value, quality and event, missing and extra keys, the schema's alias and name); both paths must
accept the same payloads, give the same values, and refuse with the same reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anju_wire import ContractError, ReadingsBatch, decode
from anju_wire.examples import example_bytes
from anju_wire.payloads import IDENT_PATTERN, MAX_SEQ, ReadingsBatchData, _readings_data, decode_readings

ABSENT = object()

idents = st.one_of(st.from_regex(IDENT_PATTERN, fullmatch=True), st.text(max_size=70), st.integers(0, 9))
numbers = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([MAX_SEQ, MAX_SEQ + 1, 2**64, True, False, "1", "1.5", 1.0, -0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
)
stamps = st.sampled_from([
    "2026-03-01T00:00:00+08:00", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00", "2026-03-01",
    "9999-12-31T23:59:59-12:00", "2026-02-30T00:00:00Z", 1_772_000_000, "", None, "now",
])  # fmt: skip


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(ABSENT), strategy)


def _mostly_valid(
    valid: dict[str, st.SearchStrategy[Any]], broken: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """A valid object, or one with one of its fields (or an extra key) replaced by a broken value."""
    good = st.fixed_dictionaries(valid)
    return st.one_of(
        good,
        st.tuples(good, st.sampled_from(sorted(broken)).flatmap(lambda k: st.tuples(st.just(k), broken[k]))
                  ).map(lambda pair: {**pair[0], pair[1][0]: pair[1][1]}),
    )  # fmt: skip


reading = _mostly_valid(
    {
        "seq": st.integers(1, MAX_SEQ),
        "unit_id": st.from_regex(IDENT_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 64),
        "meter": st.sampled_from(["electricity", "water", "gas"]),
        "device": st.text(min_size=1, max_size=200),
        "ts": st.sampled_from(
            ["2026-03-01T00:00:00+08:00", "2026-03-01T00:00:00Z", "2026-03-01T01:02:03.5-05:00"]
        ),
        "value": st.one_of(st.floats(0, 1e12), st.integers(0, 10**9)),
        "quality": _maybe(st.just("ok")),
        "event": _maybe(st.sampled_from(["rollover", "replaced", None])),
    },
    {
        "seq": numbers,
        "unit_id": idents,
        "meter": st.sampled_from(["steam", "GAS", 1, None]),
        "device": st.one_of(st.just(""), st.text(min_size=199, max_size=202), st.none(), st.integers()),
        "ts": stamps,
        "value": st.one_of(numbers, st.none()),
        "quality": st.sampled_from(["unavailable", "bad", None, ABSENT]),
        "event": st.sampled_from(["reset", 1, ABSENT]),
        "extra": st.integers(),
    },
)
batch = _mostly_valid(
    {
        "schema": _maybe(st.just("anju.readings.v1")),
        "agent_id": st.just("E01-gw1"),
        "estate_id": st.just("E01"),
        "sent_at": st.just("2026-03-01T00:00:05+08:00"),
        "readings": st.lists(reading, min_size=1, max_size=3),
    },
    {
        "schema": st.sampled_from(["anju.readings.v2", None]),
        "schema_id": st.sampled_from(["anju.readings.v1", "x"]),
        "agent_id": idents,
        "estate_id": st.one_of(idents, st.just(ABSENT)),
        "sent_at": stamps,
        "readings": st.one_of(st.lists(reading, max_size=0), st.just({}), st.none()),
        "extra": st.none(),
    },
)


def _drop_absent(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_absent(v) for k, v in value.items() if v is not ABSENT}
    if isinstance(value, list):
        return [_drop_absent(v) for v in value]
    return value


def _fields(data: ReadingsBatchData) -> tuple[Any, ...]:
    """Every field of the fast path's data, the model's defaults filled in."""
    readings = [
        (r["seq"], r["unit_id"], r["meter"], r["device"], r["ts"], r["value"], r.get("quality", "ok"),
         r.get("event"))
        for r in data["readings"]
    ]  # fmt: skip
    return (data.get("schema_id", "anju.readings.v1"), data["agent_id"], data["estate_id"], data["sent_at"],
            readings)  # fmt: skip


def _model_fields(batch: ReadingsBatch) -> tuple[Any, ...]:
    readings = [
        (r.seq, r.unit_id, r.meter, r.device, r.ts, r.value, r.quality, r.event) for r in batch.readings
    ]
    return (batch.schema_id, batch.agent_id, batch.estate_id, batch.sent_at, readings)


def _model(raw: bytes) -> tuple[ReadingsBatch | None, str | None]:
    try:
        return decode(ReadingsBatch, raw), None
    except ContractError as err:
        return None, str(err)


def check_same(raw: bytes) -> bool:
    """Assert both paths agree on ``raw``; True when it is accepted."""
    model, reason = _model(raw)
    fast = _readings_data(raw)
    assert (fast is not None) == (model is not None), (raw, reason)
    if model is None:
        with pytest.raises(ContractError) as refused:
            decode_readings(raw)
        assert str(refused.value) == reason
        return False
    assert fast is not None
    got, expected = _fields(fast), _model_fields(model)
    assert got == expected
    assert repr(got) == repr(expected)  # the same types and offsets too, not only equal values
    assert decode_readings(raw) == fast
    return True


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch)
def test_generated_batches_are_judged_alike(doc: dict[str, Any]) -> None:
    check_same(json.dumps(_drop_absent(doc), allow_nan=True).encode())


@pytest.mark.parametrize(
    "raw",
    [
        example_bytes("readings_batch.json"),
        b"{not json",
        b"[]",
        b'{"schema": "anju.readings.v1", "schema": "x"}',
        b"\xff\xfe",
    ],
)
def test_examples_and_garbage(raw: bytes) -> None:
    check_same(raw)


def test_both_rules_between_fields_are_kept() -> None:
    doc = json.loads(example_bytes("readings_batch.json"))
    first = doc["readings"][0]
    accepted = [check_same(json.dumps({**doc, "readings": [r]}).encode()) for r in (
        {**first, "quality": "unavailable"},  # a value that is unavailable
        {**first, "value": None},  # no value, yet ok
        {**first, "value": None, "quality": "unavailable", "event": "rollover"},  # an event without value
        {**first, "value": None, "quality": "unavailable"},
        {**first, "event": "replaced"},
    )]  # fmt: skip
    assert accepted == [False, False, False, True, True]
