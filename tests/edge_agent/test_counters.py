"""Counter rollover and meter replacement: pure rules, kept totals across restarts, flags from a real poll."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anju.edge_agent.counters import LastTotal, classify, rollover_max
from anju.edge_agent.errors import OutboxFull
from anju.edge_agent.modbus import ModbusEndpointPoller
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.registers import encode_total, load_map, parse_map
from anju.edge_agent.site import MeterConfig
from anju_wire import MeterReading
from tests.edge_agent.helpers import meter_server
from tests.edge_agent.test_modbus import _fast_clock

ADAM_MAX = (2**32 - 1) * 0.01


def test_wrap_point_follows_the_map() -> None:
    assert rollover_max(load_map("advantech_adam6051_counter")) == pytest.approx(ADAM_MAX)
    assert rollover_max(load_map("tuf_2000m")) == 2**31 - 1  # the float fraction does not widen it
    assert rollover_max(load_map("eastron_sdm120")) is None  # a float32 total does not wrap by itself
    stated = parse_map(
        "model: m\nmeter: electricity\nunit: kWh\nsource: s\nfunction: input\nrollover_at: 99999.99\n"
        "total: [{address: 0, type: float32}]\n",
        name="display_limited",
    )
    assert rollover_max(stated) == 99999.99


@pytest.mark.parametrize(
    ("previous", "current", "maximum", "expected"),
    [
        (None, 5.0, ADAM_MAX, None),  # nothing known yet
        (10.0, 10.0, ADAM_MAX, None),
        (10.0, 11.5, ADAM_MAX, None),
        (10.0, None, ADAM_MAX, None),  # unavailable says nothing
        (ADAM_MAX - 0.5, 0.3, ADAM_MAX, "rollover"),
        (ADAM_MAX * 0.95, ADAM_MAX * 0.05, ADAM_MAX, "rollover"),
        (ADAM_MAX - 0.5, ADAM_MAX * 0.5, ADAM_MAX, "replaced"),  # not near zero
        (1532.5, 0.8, ADAM_MAX, "replaced"),  # far from the maximum: a new meter
        (1532.5, 0.8, None, "replaced"),  # cannot wrap at all
        (1532.5, 1532.4, None, "replaced"),  # any drop is flagged
    ],
)
def test_classify(
    previous: float | None, current: float | None, maximum: float | None, expected: str | None
) -> None:
    assert classify(previous, current, maximum) == expected


@given(st.floats(0, 1e9), st.floats(0, 1e9), st.one_of(st.none(), st.floats(1, 1e10)))
def test_a_counter_that_does_not_fall_is_never_flagged(a: float, b: float, maximum: float | None) -> None:
    low, high = sorted((a, b))
    assert classify(low, high, maximum) is None
    if high > low:
        assert classify(high, low, maximum) in ("rollover", "replaced")


def _total(unit: str, value: float) -> LastTotal:
    return LastTotal(unit_id=unit, meter="gas", device="d", total=value, ts="2026-03-01T00:00:00+00:00")


def test_last_totals_persist_with_their_readings_and_not_without(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path, capacity=3) as ob:
        ob.put_many("reading", ["{}", "{}"], totals=[_total("U1", 5.0), _total("U2", 7.0)])
        ob.put_many("reading", ["{}"], totals=[_total("U1", 6.0)])
        with pytest.raises(OutboxFull):
            ob.put_many("reading", ["{}"], totals=[_total("U1", 99.0)])
    with Outbox(path, capacity=3) as ob:
        kept = ob.last_totals()
    assert {k: t.total for k, t in kept.items()} == {("U1", "gas"): 6.0, ("U2", "gas"): 7.0}


def _gas_meter(port: int) -> MeterConfig:
    return MeterConfig.model_validate(
        {"unit_id": "E01-1-0101", "meter": "gas", "host": "127.0.0.1", "port": port, "device_id": 3,
         "register_map": "advantech_adam6051_counter", "timeout_s": 0.5}
    )  # fmt: skip


def test_poller_flags_rollover_and_replacement_across_a_restart(tmp_path: Path) -> None:
    m = load_map("advantech_adam6051_counter")
    words: dict[int, int] = {}

    def show(total: float) -> None:
        words.update(enumerate(encode_total(m, total)))

    async def scenario() -> list[str | None]:
        events: list[str | None] = []
        async with meter_server({3: words}) as port:
            for restart, totals in enumerate(([ADAM_MAX - 1.0, ADAM_MAX - 0.2, 0.35], [0.9, 0.25, 0.3])):
                with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:
                    poller = ModbusEndpointPoller(
                        host="127.0.0.1", port=port, meters=[_gas_meter(port)], clock=_fast_clock(), outbox=ob
                    )
                    try:
                        for total in totals:
                            show(total)
                            (record,) = await poller.poll_round()
                            events.append(record.event)
                    finally:
                        poller.close()
                    assert poller.stats.rollovers == (1 if restart == 0 else 0)
        return events

    events = asyncio.run(scenario())
    # after the restart, 0.9 > 0.35 (kept in the outbox) is normal; 0.25 < 0.9 is a replaced meter
    assert events == [None, None, "rollover", None, "replaced", None]
    with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:
        stored = [
            MeterReading.model_validate({**json.loads(r.payload), "seq": r.seq})
            for r in ob.next_batch("reading", 100, time.time() + 1)
        ]
    assert [r.event for r in stored] == events
    assert stored[2].value == pytest.approx(0.35)
