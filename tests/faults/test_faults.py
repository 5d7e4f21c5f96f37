"""Fault tests: broker killed, agent SIGKILLed, hub down. Every produced reading lands exactly once.

Real Mosquitto (killed and restarted on its port by the test), real PostgreSQL, the real ingest hub,
real agents as child processes polling the ``anju sim meters`` fleet over Modbus TCP on an accelerated
clock (one simulated hour per half wall second). See ``harness`` for the precise meaning of "produced".
"""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

from anju.hub.ingest.consumer import IngestService
from tests.faults.harness import (
    AgentProcess,
    RestartableMosquitto,
    make_agents,
    meter_fleet,
    prepare_database,
    readings_in_db,
    start_hub,
    tally,
    value_errors,
    wait_for,
)
from tests.services import free_port

pytestmark = pytest.mark.integration

BROKER_OUTAGE_S = 60.0  # the figure
DRAIN_TIMEOUT_S = 120.0  # the hub's paho reconnect backoff alone may reach 30 s after a long outage


def _finish(
    agents: list[AgentProcess], database_url: str, hub: IngestService, title: str
) -> None:
    """Stop the agents cleanly, drain their outboxes through the hub, and check every reading."""
    for a in agents:
        a.terminate()
    for a in agents:
        a.drain(DRAIN_TIMEOUT_S)
    stats = hub.stats_dict()
    tallies = tally(database_url, agents)
    print(f"\n[{title}]")
    for t in tallies:
        print("  " + t.line())
    print(f"  hub: {stats}")
    for t in tallies:
        assert t.produced > 0, t.line()
        assert t.waiting == 0 and t.rejected == 0, t.line()
        assert t.missing == 0, t.line()
        assert t.unexpected == 0, t.line()
        assert t.rows == t.distinct_seqs == t.produced, t.line()
    assert value_errors(database_url) == []


def test_broker_killed_for_60_s_while_three_agents_publish(
    broker: RestartableMosquitto, database_url: str, tmp_path: Path
) -> None:
    estate = "FB" + uuid.uuid4().hex[:6]
    prepare_database(database_url, estate=estate, units=24)
    origin = time.time()
    fleet_port = free_port()
    agents = make_agents(
        estate=estate, count=3, units_each=8, broker_url=broker.url, fleet_port=fleet_port,
        origin_wall=origin, workdir=tmp_path,
    )  # fmt: skip
    with ExitStack() as stack:
        stack.enter_context(meter_fleet(fleet_port, units=24, origin_wall=origin, workdir=tmp_path))
        hub = start_hub(database_url, broker.url, group="g" + uuid.uuid4().hex[:8])
        stack.callback(hub.stop)
        assert hub.wait_ready(10)
        for a in agents:
            a.start()
            stack.callback(a.terminate)
        wait_for(lambda: readings_in_db(database_url) > 50, 30, "first readings in the database")
        broker.kill()
        killed_at = time.monotonic()
        before = readings_in_db(database_url)
        time.sleep(BROKER_OUTAGE_S)
        assert all(a.alive() for a in agents), "an agent died while the broker was away"
        broker.start()
        print(f"\nbroker down {time.monotonic() - killed_at:.1f} s; {before} readings stored before the kill")
        time.sleep(3)
        _finish(agents, database_url, hub, f"broker killed for {BROKER_OUTAGE_S:.0f} s, 3 agents")


def test_agent_sigkilled_three_times_mid_publish(
    broker: RestartableMosquitto, database_url: str, tmp_path: Path
) -> None:
    estate = "FK" + uuid.uuid4().hex[:6]
    prepare_database(database_url, estate=estate, units=24)
    origin = time.time()
    fleet_port = free_port()
    victim, bystander = make_agents(
        estate=estate, count=2, units_each=12, broker_url=broker.url, fleet_port=fleet_port,
        origin_wall=origin, workdir=tmp_path,
    )  # fmt: skip
    with ExitStack() as stack:
        stack.enter_context(meter_fleet(fleet_port, units=24, origin_wall=origin, workdir=tmp_path))
        # a slow flush keeps batches sent-but-unacked most of the time, so a kill lands mid-publish
        hub = start_hub(database_url, broker.url, group="g" + uuid.uuid4().hex[:8], flush_s=0.6)
        stack.callback(hub.stop)
        assert hub.wait_ready(10)
        for a in (victim, bystander):
            a.start()
            stack.callback(a.terminate)
        wait_for(lambda: readings_in_db(database_url) > 30, 30, "first readings in the database")
        for _ in range(3):
            wait_for(victim.alive, 5, "victim running")
            time.sleep(2.5)
            victim.kill()
            victim.start()
        time.sleep(3)
        print(f"\nkills (records waiting, of which sent and unacked): {victim.kills}")
        assert any(sent > 0 for _, sent in victim.kills), "no kill caught a batch in flight"
        _finish([victim, bystander], database_url, hub, "agent SIGKILLed 3 times")


def test_hub_down_and_back(broker: RestartableMosquitto, database_url: str, tmp_path: Path) -> None:
    estate = "FH" + uuid.uuid4().hex[:6]
    prepare_database(database_url, estate=estate, units=20)
    origin = time.time()
    fleet_port = free_port()
    group = "g" + uuid.uuid4().hex[:8]
    agents = make_agents(
        estate=estate, count=2, units_each=10, broker_url=broker.url, fleet_port=fleet_port,
        origin_wall=origin, workdir=tmp_path,
    )  # fmt: skip
    with ExitStack() as stack:
        stack.enter_context(meter_fleet(fleet_port, units=20, origin_wall=origin, workdir=tmp_path))
        first = start_hub(database_url, broker.url, group=group)
        assert first.wait_ready(10)
        for a in agents:
            a.start()
            stack.callback(a.terminate)
        try:
            wait_for(lambda: readings_in_db(database_url) > 50, 30, "first readings in the database")
        finally:
            first.stop()
        stored_by_first = readings_in_db(database_url)
        time.sleep(20)
        assert readings_in_db(database_url) == stored_by_first, "something wrote while the hub was down"
        hub = start_hub(database_url, broker.url, group=group)
        stack.callback(hub.stop)
        assert hub.wait_ready(10)
        time.sleep(3)
        print(f"\nfirst hub stored {stored_by_first} and stopped; hub down 20 s")
        _finish(agents, database_url, hub, "hub down 20 s and back")
