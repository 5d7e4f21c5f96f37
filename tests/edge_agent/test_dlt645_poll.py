"""DL/T 645 and CJ/T 188 meters over a pty pair and a TCP gateway: values, faults, rollovers, outbox."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from anju.device_sims.dlt645_sim import FrameMeterFleet, Protocol, unit_address
from anju.device_sims.serial_pair import pty_pair
from anju.edge_agent.agent import build_pollers
from anju.edge_agent.errors import SiteConfigError
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.serial_poll import POLLERS, Cjt188Poller, Dlt645Poller, FramePoller
from anju.edge_agent.site import MeterConfig, parse_site
from anju_wire import MeterReading
from tests.edge_agent.test_modbus import _fast_clock

KIND = {"dlt645": "electricity", "cjt188": "water"}


def meter(protocol: Protocol, unit: int, *, port: str | None = None, host: str | None = None,
          tcp_port: int = 0, **kw: Any) -> MeterConfig:  # fmt: skip
    where = {"transport": "rtu", "serial_port": port} if port else {"host": host, "port": tcp_port}
    return MeterConfig.model_validate(
        {"unit_id": f"E01-1-{unit:04d}", "meter": KIND[protocol], "protocol": protocol,
         "address": unit_address(protocol, unit), "baudrate": 2400, "parity": "E", "timeout_s": 0.3,
         "poll_interval_s": 3600, **where, **kw}
    )  # fmt: skip


def stored(ob: Outbox) -> list[MeterReading]:
    return [
        MeterReading.model_validate({**json.loads(r.payload), "seq": r.seq})
        for r in ob.next_batch("reading", 1000, time.time() + 1)
    ]


Scenario = Callable[[FrameMeterFleet, FramePoller], Awaitable[None]]


def on_a_bus(
    protocol: Protocol, units: int, outbox: Outbox, scenario: Scenario, **faults: Any
) -> FramePoller:  # fmt: skip
    """Serve ``units`` simulated meters on one end of a pty pair and poll them from the other."""

    async def run() -> FramePoller:
        async with pty_pair() as (sim_end, agent_end):
            fleet = FrameMeterFleet(
                _fast_clock(), protocol=protocol, units=units, serial_port=sim_end, **faults
            )
            async with fleet:
                meters = [meter(protocol, u, port=agent_end) for u in range(1, units + 1)]
                poller = POLLERS[protocol](meters=meters, clock=_fast_clock(), outbox=outbox)
                try:
                    await scenario(fleet, poller)
                finally:
                    poller.close()
        return poller

    return asyncio.run(run())


@pytest.mark.parametrize("protocol", ["dlt645", "cjt188"])
def test_a_bus_is_read_in_turn_with_a_dead_and_a_faulty_meter(
    protocol: Protocol, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def two_rounds(fleet: FrameMeterFleet, poller: FramePoller) -> None:
        fleet.totals = {1: 1234.56, 2: 7.5}
        await poller.poll_round()
        fleet.totals = {1: 1234.99, 2: 7.75}
        fleet.silent.discard(3)
        await poller.poll_round()

    with (
        caplog.at_level(logging.DEBUG, logger="anju.edge_agent"),
        Outbox(tmp_path / "o.sqlite", capacity=100) as ob,
    ):
        poller = on_a_bus(protocol, 4, ob, two_rounds, silent={3}, failing={4})
        readings = stored(ob)
    assert [(r.value, r.quality) for r in readings[:4]] == [
        (1234.56, "ok"), (7.5, "ok"), (None, "unavailable"), (None, "unavailable")]
    assert [r.value for r in readings[4:6]] == [1234.99, 7.75]
    assert readings[6].value is not None  # unit 3 answers again in the second round
    assert readings[0].device.startswith(f"{protocol}-rtu:///dev/pts/")
    assert readings[0].device.endswith(unit_address(protocol, 1))
    assert poller.stats.transport_errors == 1 and poller.stats.device_errors == 2
    unavailable = [r.getMessage() for r in caplog.records if "is unavailable" in r.getMessage()]
    assert len(unavailable) == 2  # one line per meter that went away, not per poll
    assert any("available again" in r.getMessage() for r in caplog.records)
    # every failed poll (3: unit 3 once, unit 4 twice) is one line, without bytes dumped
    failed = [r.getMessage() for r in caplog.records if "poll failed" in r.getMessage()]
    assert len(unavailable) + len(failed) == 3
    assert all("\n" not in f and "0x68" not in f and "68 " not in f for f in failed + unavailable)


def test_a_falling_total_is_flagged_and_remembered_across_a_restart(tmp_path: Path) -> None:
    async def wrap(fleet: FrameMeterFleet, poller: FramePoller) -> None:
        fleet.totals = {1: 999_990.0}
        await poller.poll_round()
        fleet.totals = {1: 3.0}  # past 999999.99 kWh: the register wrapped
        await poller.poll_round()

    async def replaced(fleet: FrameMeterFleet, poller: FramePoller) -> None:
        fleet.totals = {1: 1.0}  # far from the wrap point: a new meter
        await poller.poll_round()

    with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:
        first = on_a_bus("dlt645", 1, ob, wrap)
    with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:  # the agent restarted: last totals persisted
        second = on_a_bus("dlt645", 1, ob, replaced)
        readings = stored(ob)
    assert [(r.value, r.event) for r in readings] == [(999_990.0, None), (3.0, "rollover"), (1.0, "replaced")]
    assert first.stats.rollovers == 1 and second.stats.replacements == 1


def test_an_outbox_that_refuses_keeps_the_old_baseline(tmp_path: Path) -> None:
    async def over_capacity(fleet: FrameMeterFleet, poller: FramePoller) -> None:
        fleet.totals = {1: 50.0}
        await poller.poll_round()
        fleet.totals = {1: 40.0}
        await poller.poll_round()  # refused: the outbox holds one record

    with Outbox(tmp_path / "o.sqlite", capacity=1) as ob:
        poller = on_a_bus("cjt188", 1, ob, over_capacity)
        assert [r.value for r in stored(ob)] == [50.0]
    assert poller.stats.refused_full == 1


def test_cjt188_water_and_gas_meters_through_one_tcp_gateway(tmp_path: Path) -> None:
    async def run() -> list[tuple[str, float | None]]:
        async with FrameMeterFleet(_fast_clock(), protocol="cjt188", units=2, port=0) as fleet:
            fleet.totals = {1: 12.5, 2: 830.25}
            meters = [meter("cjt188", 1, host="127.0.0.1", tcp_port=fleet.port),
                      meter("cjt188", 2, host="127.0.0.1", tcp_port=fleet.port, meter="gas")]  # fmt: skip
            with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:
                poller = Cjt188Poller(meters=meters, clock=_fast_clock(), outbox=ob)
                try:
                    return [(r.meter.value, r.value) for r in await poller.poll_round()]
                finally:
                    poller.close()

    assert asyncio.run(run()) == [("water", 12.5), ("gas", 830.25)]


def test_dlt645_through_a_tcp_gateway(tmp_path: Path) -> None:
    async def run() -> list[float | None]:
        async with FrameMeterFleet(_fast_clock(), protocol="dlt645", units=3, port=0) as fleet:
            fleet.totals = {1: 10.0, 2: 20.0, 3: 30.0}
            meters = [meter("dlt645", u, host="127.0.0.1", tcp_port=fleet.port) for u in (1, 2, 3)]
            with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:
                poller = Dlt645Poller(meters=meters, clock=_fast_clock(), outbox=ob)
                try:
                    return [r.value for r in await poller.poll_round()]
                finally:
                    poller.close()

    assert asyncio.run(run()) == [10.0, 20.0, 30.0]


def test_a_gateway_that_is_down_makes_its_meters_unavailable(tmp_path: Path) -> None:
    from tests.services import free_port

    async def run() -> tuple[list[float | None], int]:
        with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:
            poller = Dlt645Poller(meters=[meter("dlt645", 1, host="127.0.0.1", tcp_port=free_port())],
                                  clock=_fast_clock(), outbox=ob)  # fmt: skip
            records = await poller.poll_round()
            poller.close()
            return [r.value for r in records], poller.stats.transport_errors

    assert asyncio.run(run()) == ([None], 1)


def _site(meters: list[dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    return {"agent_id": "E01-gw1", "estate_id": "E01", "mqtt_url": "mqtt://127.0.0.1:1883",
            "outbox": {"path": str(tmp_path / "o.sqlite")}, "pseudonym_secret_env": "S",
            "meters": meters}  # fmt: skip


def test_the_site_file_picks_the_poller_and_checks_protocol_fields(tmp_path: Path) -> None:
    def m(unit: str, **kw: Any) -> dict[str, Any]:
        return {"unit_id": unit, "transport": "rtu", **kw}

    dlt = {"meter": "electricity", "protocol": "dlt645", "serial_port": "/dev/ttyUSB0"}
    cjt = {"meter": "water", "protocol": "cjt188", "serial_port": "/dev/ttyUSB1"}
    both = [m("U1", address="000000000001", **dlt), m("U1", address="00000000000001", **cjt)]
    site = parse_site(_site(both, tmp_path), environ={"S": "x"})
    with Outbox(tmp_path / "o.sqlite", capacity=10) as ob:
        kinds = sorted(type(p).__name__ for p in build_pollers(site, ob))
    assert kinds == [Cjt188Poller.__name__, Dlt645Poller.__name__]
    bad = [
        ([m("U1", address="0001", **dlt)], "address"),
        ([m("U1", address="000000000001", **{**dlt, "meter": "water"})], "dlt645 is not a protocol of water"),
        ([m("U1", **dlt)], "needs address"),
        ([m("U1", address="000000000001", register_map="eastron_sdm120", **dlt)], "register_map is for"),
        ([m("U1", address="000000000001", **dlt), m("U2", address="000000000001", **dlt)], "share address"),
        ([m("U1", address="000000000001", **dlt),
          m("U2", device_id=2, register_map="eastron_sdm120", **{**dlt, "protocol": "modbus"})],
         "one bus or gateway speaks one protocol"),
    ]  # fmt: skip
    for meters, message in bad:
        with pytest.raises(SiteConfigError, match=message):
            parse_site(_site(meters, tmp_path), environ={"S": "x"})
