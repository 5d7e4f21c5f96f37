"""Benchmark: how many meter readings per second the hub's ingest stores, broker to committed rows.

Publishes ReadingsBatch messages (QoS 1, 500 readings each, several simulated agents) through a private
Mosquitto to a real IngestService writing into PostgreSQL (embedded unless ANJU_DATABASE_URL is set), and
waits until every record is acknowledged. Prints rows/s for the whole path and the conditions.

    .venv/bin/python bench/hub_ingest.py [--readings 300000] [--agents 4] [--batch 500]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg

from anju.hub.ingest.consumer import IngestService
from anju.hub.storage import ensure_schema, upsert_units
from anju.hub.storage.embedded import throwaway_database
from anju.services import mosquitto_broker
from anju_mqtt import make_client, parse_broker_url, stop_loop
from anju_wire import Ack, MeterKind, MeterReading, ReadingsBatch, Topic, decode, encode


def _batches(agent: str, estate: str, n: int, batch: int) -> list[bytes]:
    """``n`` hourly electricity readings of 50 units for one agent, cut into batches."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    out: list[bytes] = []
    rows: list[MeterReading] = []
    for seq in range(1, n + 1):
        unit, hour = divmod(seq - 1, max(1, n // 50))
        rows.append(MeterReading(
            seq=seq, unit_id=f"{estate}-1-{unit:04d}", meter=MeterKind.ELECTRICITY,
            device=f"modbus-tcp://127.0.0.1:502/{unit + 1}", ts=start + timedelta(hours=hour),
            value=float(seq),
        ))
        if len(rows) == batch or seq == n:
            out.append(encode(ReadingsBatch(agent_id=agent, estate_id=estate, sent_at=start, readings=rows)))
            rows = []
    return out


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--readings", type=int, default=300_000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    per_agent = args.readings // args.agents

    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp, mosquitto_broker(Path(tmp)) as broker, \
            throwaway_database(Path(tmp), "bench") as url:
        with psycopg.connect(url) as conn:
            ensure_schema(conn)
            conn.execute("TRUNCATE meter_readings")
            # Ingest stores readings of registered units only: register each agent's 50 (+1) units.
            upsert_units(conn, [{"unit_id": f"B{i:02d}-1-{u:04d}", "estate_id": f"B{i:02d}"}
                                for i in range(args.agents) for u in range(52)])
            conn.commit()
        address = parse_broker_url(broker.url)
        acked: dict[str, set[int]] = {}
        done = threading.Event()
        lock = threading.Lock()

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            ack = decode(Ack, bytes(msg.payload))
            with lock:
                acked.setdefault(ack.agent_id, set()).update(ack.seqs())
                if sum(len(v) for v in acked.values()) >= per_agent * args.agents:
                    done.set()

        payloads = {
            f"B{i:02d}-gw{i}": _batches(f"B{i:02d}-gw{i}", f"B{i:02d}", per_agent, args.batch)
            for i in range(args.agents)
        }
        service = IngestService(
            database_url=url, mqtt_url=broker.url, share_group="bench", client_id="bench-hub"
        )
        service.start()
        assert service.wait_ready(10), "ingest service did not subscribe"
        pub = make_client(address, client_id="bench-agents")
        pub.max_inflight_messages_set(100)
        pub.on_message = on_message
        pub.connect(address.host, address.port)
        for i in range(args.agents):
            pub.subscribe(str(Topic.ack(f"B{i:02d}", f"B{i:02d}-gw{i}")), qos=1)
        pub.loop_start()
        time.sleep(0.5)
        t0 = time.perf_counter()
        for i, (_agent, msgs) in enumerate(payloads.items()):
            for raw in msgs:
                pub.publish(str(Topic.readings(f"B{i:02d}")), raw, qos=1)
        finished = done.wait(600)
        elapsed = time.perf_counter() - t0
        stop_loop(pub)
        pub.disconnect()
        stats = service.stats()
        service.stop()
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM meter_readings").fetchone()
        stored = int(row[0]) if row else 0
    total = per_agent * args.agents
    database = "ANJU_DATABASE_URL" if os.environ.get("ANJU_DATABASE_URL") else "embedded"
    print(f"conditions: {platform.node()} {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"mosquitto, PostgreSQL ({database}), "
          f"{args.agents} agents, {args.batch} readings/message, QoS 1")
    messages = sum(len(m) for m in payloads.values())
    print(f"published {total} readings in {messages} messages; all acked: {finished}")
    print(f"stored {stored} rows in {elapsed:.1f} s: {stored / elapsed:,.0f} readings/s broker-to-commit "
          f"({stats.flushes} flushes, {stats.flush_failures} failed)")


if __name__ == "__main__":
    main()
