"""Fault test for self-reporting MQTT meters: the agent SIGKILLed, then the estate broker killed.

Four Tasmota plugs (each its own MQTT client) and four NB-IoT water meters (one CTWing-style platform
bridge) publish their cumulative totals every simulated hour into the estate broker; the agent stores
them and sends them over a separate hub broker to the real ingest hub and PostgreSQL. One simulated hour
is half a wall second, one local day twelve.

What is true, and asserted:
- Day 2: the agent is SIGKILLed twice. Its subscription is a persistent session, so the estate broker
  keeps the meters' messages while it is dead and hands them over on restart; a message stored just
  before the kill comes again and is recognised. Every reading lands exactly once, and the day's
  consumption is the meters' true use, not more.
- Day 3: the estate broker (``persistence false``, the worst case) is SIGKILLed at the start of the day
  and restarted 7 s (14 simulated hours) later. The kill is timed between two reporting rounds, after
  every message the broker had acknowledged is stored at the edge: a broker crash while it holds
  undelivered messages would lose them too, and that is the broker's persistence setting, not the
  agent. Readings are genuinely lost in two ways, each counted: a meter publishing into a dead broker
  drops its reading (Tasmota keeps no telemetry backlog), and the restarted broker, which forgot the
  agent's session, acknowledges and discards what meters publish before the agent has subscribed
  again (its reconnect backoff takes several seconds). Nothing outside that window is lost. The
  agent stores an ``unavailable`` reading for each silent interval, and the hub reports the day's
  consumption as unknown (NULL), not as zero. The totals are cumulative, so the first reading after
  the gap carries all the use: no reading is counted twice, no reset is flagged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from anju.device_sims.reporting_meters import ReportedReading, ReportingMeterFleet
from anju.hub.storage.rollups import refresh_daily_features
from anju_wire import AcceleratedClock
from anju_wire.clock import ESTATE_TZ
from tests.faults.harness import (
    POLL_INTERVAL_S,
    SIM_START,
    SPEED,
    RestartableMosquitto,
    db_readings,
    make_reporting_agent,
    outbox_produced,
    outbox_readings,
    prepare_database,
    start_hub,
    wait_for,
)
from tests.services import free_port

pytestmark = pytest.mark.integration

START = datetime.fromisoformat(SIM_START)
HOUR_WALL_S = POLL_INTERVAL_S / SPEED  # 0.5 s
AGENT_KILLS_AT_H = (30.2, 38.2)  # simulated hours from the start: day 2, 06:12 and 14:12
BROKER_KILL_AT_H = 48  # day 3, just after the 00:00 round
BROKER_BACK_AT_H = 62  # day 3, 14:00: at most 11 hours of day 3 can be heard, fewer than the hub's 12
DEVICE_RECONNECT_S = 5.0  # a meter reconnects within 1-2 s of the broker's return; slack for a busy box
DRAIN_TIMEOUT_S = 60.0

Key = tuple[str, str, datetime]


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[RestartableMosquitto, RestartableMosquitto]]:
    """(hub broker, estate broker), each a private Mosquitto that the test may kill."""
    made = []
    for name in ("hub-broker", "estate-broker"):
        (tmp_path / name).mkdir()
        made.append(RestartableMosquitto(free_port(), tmp_path / name))
    try:
        for b in made:
            b.start()
        yield made[0], made[1]
    finally:
        for b in made:
            b.stop()


def _key(estate: str, r: ReportedReading) -> Key:
    return (f"{estate}-U{r.unit:04d}", r.meter.value, r.ts)


def _sleep_until(wall: float) -> None:
    time.sleep(max(0.0, wall - time.time()))


def test_mqtt_meters_through_agent_sigkills_and_an_estate_broker_crash(
    brokers: tuple[RestartableMosquitto, RestartableMosquitto], database_url: str, tmp_path: Path
) -> None:
    hub_broker, estate_broker = brokers
    estate = "FM" + uuid.uuid4().hex[:6]
    units = [1, 2, 3, 4]
    prepare_database(database_url, estate=estate, units=len(units))  # ingest stores registered units only
    clock = AcceleratedClock(origin_wall=time.time(), origin_sim=START, speed=SPEED)
    fleet = ReportingMeterFleet(estate_broker.url, clock, prefix=estate, plugs=units, water=units)
    agent = make_reporting_agent(
        estate=estate, fleet=fleet, hub_url=hub_broker.url, estate_url=estate_broker.url,
        origin_wall=clock.origin_wall, workdir=tmp_path,
    )  # fmt: skip

    def at(hours: float) -> float:
        return clock.wall_at(START + timedelta(hours=hours))

    def published() -> list[ReportedReading]:
        with fleet.lock:
            return list(fleet.readings)

    def stored_somewhere() -> set[Key]:
        rows = {(u, m, ts) for u, m, ts, _, q, _ in db_readings(database_url, estate) if q == "ok"}
        return rows | outbox_readings(agent.outbox)

    with ExitStack() as stack:
        hub = start_hub(database_url, hub_broker.url, group="g" + uuid.uuid4().hex[:8])
        stack.callback(hub.stop)
        assert hub.wait_ready(10)
        agent.start()
        stack.callback(agent.terminate)
        # before its first subscription no broker keeps anything for the agent: start the meters after it
        wait_for(lambda: agent.log.exists() and "mqtt meters: connected" in agent.log.read_text(), 20,
                 "the agent's meter subscription")  # fmt: skip
        time.sleep(0.3)
        fleet.start()
        stack.callback(fleet.stop)

        for hours in AGENT_KILLS_AT_H:
            _sleep_until(at(hours))
            agent.kill()
            agent.start()

        # kill the estate broker between two rounds, once it has acknowledged every message sent to it
        # and the agent has stored all of them
        hour = BROKER_KILL_AT_H
        while True:
            _sleep_until(at(hour + 0.4))
            now = published()
            acked = {_key(estate, r) for r in now if r.outcome == "acked"}
            if all(r.outcome != "sent" for r in now) and acked <= stored_somewhere():
                break
            hour += 1
            assert hour < BROKER_KILL_AT_H + 4, "acknowledged messages not stored at the edge for 2 s"
        estate_broker.kill()
        killed_wall = time.time()
        _sleep_until(at(BROKER_BACK_AT_H))
        estate_broker.start()
        back_wall = time.time()
        back_sim = clock.at_wall(back_wall)

        def after_restart_landed() -> bool:
            return any(q == "ok" and ts > back_sim for _, _, ts, _, q, _ in db_readings(database_url, estate))

        wait_for(after_restart_landed, 30, "readings published after the broker restart in the database")
        time.sleep(3 * HOUR_WALL_S)
        fleet.stop()
        time.sleep(HOUR_WALL_S)
        agent.terminate()
        agent.drain(DRAIN_TIMEOUT_S)
        hub_stats = hub.stats_dict()

    rows = db_readings(database_url, estate)
    ok = {(u, m, ts): v for u, m, ts, v, q, _ in rows if q == "ok"}
    unavailable = [(u, m, ts) for u, m, ts, _, q, _ in rows if q == "unavailable"]
    sent = published()
    by_key = {_key(estate, r): r for r in sent}
    assert len(by_key) == len(sent), "the fleet published one reading twice"
    landed = [r for r in sent if _key(estate, r) in ok]
    lost = [r for r in sent if _key(estate, r) not in ok]
    # when the agent was subscribed again: the first reading published after the restart that landed
    resubscribed = min(r.wall for r in landed if r.wall > back_wall)
    outage = (killed_wall, back_wall + DEVICE_RECONNECT_S)  # until the meters are connected again
    dropped = [r for r in lost if r.outcome == "dropped" and outage[0] <= r.wall <= outage[1]]
    # the agent subscribes to every topic at once; a round being published at that instant may be split
    subscribing = resubscribed + HOUR_WALL_S / 2
    unheard = [r for r in lost if r.outcome == "acked" and back_wall <= r.wall < subscribing]
    in_flight = [
        r for r in lost
        if r.outcome == "sent" and outage[0] <= r.wall <= outage[1]
    ]  # fmt: skip
    unexplained = [r for r in lost if r not in dropped and r not in unheard and r not in in_flight]
    produced, waiting, rejected = outbox_produced(agent.outbox)
    print(
        f"\n[MQTT meters: agent SIGKILLed x{len(agent.kills)}, estate broker down "
        f"{back_wall - killed_wall:.1f} s, first reading heard {resubscribed - back_wall:.1f} s after "
        f"its restart]\n  published={len(sent)} landed_once={len(landed)} lost={len(lost)}: "
        f"dropped_into_dead_broker={len(dropped)} "
        f"acked_before_agent_resubscribed={len(unheard)} in_flight_at_kill={len(in_flight)} "
        f"unexplained={len(unexplained)}\n  agent outbox records={produced} = rows {len(rows)} "
        f"(ok {len(ok)}, unavailable {len(unavailable)}) + late copies the hub already had "
        f"{produced - len(rows)}; left_in_outbox={waiting} rejected={rejected}"
        f"\n  kills (records waiting, of which sent): {agent.kills}\n  hub: {hub_stats}"
    )
    assert len(agent.kills) == 2
    assert waiting == 0 and rejected == 0
    assert len({(u, m, ts) for u, m, ts, *_ in rows}) == len(rows)  # one row per meter and time
    assert produced >= len(rows)  # every row came through this agent's outbox
    # 1. every reading the agent stored is one the meters sent, with the value they sent; none invented
    assert set(ok) <= set(by_key), sorted(set(ok) - set(by_key))[:5]
    wrong = [(k, v, by_key[k].value) for k, v in ok.items() if v is None or abs(v - by_key[k].value) > 1e-9]
    assert wrong == [], wrong[:5]
    assert all(event is None for *_, event in rows), "a rollover or replacement was flagged"
    # 2. nothing published before the broker crash was lost, through both agent kills
    assert [r for r in lost if r.wall < killed_wall] == []
    # 3. what was lost, was lost to the broker outage, and is accounted for
    assert unexplained == [], [(r.topic, r.ts, r.outcome) for r in unexplained][:5]
    assert dropped, "no meter published into the dead broker: the outage did not happen as planned"
    # the agent retries the estate broker at least every 2 s, so the window of unheard readings is short
    assert resubscribed - back_wall < 5.0, "the agent took long to subscribe again"
    # 4. the gap is data the hub does not have, shown as such
    kill_sim, resub_sim = clock.at_wall(killed_wall), clock.at_wall(resubscribed)
    units_meters = {(u, m) for u, m, _ in by_key}
    gap_marked = {(u, m) for u, m, ts in unavailable if kill_sim <= ts <= resub_sim + timedelta(hours=1)}
    assert gap_marked == units_meters
    with psycopg.connect(database_url) as conn:
        refresh_daily_features(conn, tz=ESTATE_TZ, since=date(2026, 3, 1), until=date(2026, 3, 4))
        conn.commit()
        daily = {
            (str(u), str(m), d): (c, h)
            for u, m, d, c, h in conn.execute(
                "SELECT unit_id, meter, day, consumption, hours_covered FROM meter_daily "
                "WHERE unit_id LIKE %s",
                (f"{estate}-U%",),
            ).fetchall()
        }
    day2_end, day1_end = START + timedelta(hours=47), START + timedelta(hours=23)
    for u, m in sorted(units_meters):
        # day 2 (both agent kills): every hour there, and exactly the meter's use, nothing counted twice
        consumption, hours = daily[(u, m, date(2026, 3, 2))]
        truth = by_key[(u, m, day2_end)].value - by_key[(u, m, day1_end)].value
        assert hours == 24 and consumption is not None and abs(consumption - truth) < 1e-6, (u, m)
        # day 3 (broker outage): too few hours to know the day's use; unknown, not zero
        consumption, hours = daily[(u, m, date(2026, 3, 3))]
        assert consumption is None and 0 < hours < 12, (u, m, consumption, hours)
