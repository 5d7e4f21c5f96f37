"""Benchmark: how many meter readings per second the hub's ingest stores, broker to committed rows, against
a plain COPY of the same rows into the same table, in the same run, on each storage backend.

Agents (4 simulated gateways in a child process, so that their Python does not share the hub's
interpreter) publish ReadingsBatch messages (QoS 1, 500 readings each) through a private Mosquitto to a
real IngestService writing into PostgreSQL, and wait until every record is acknowledged. Per backend:

- ``copy``: the same rows as COPY text (formatted beforehand), ``COPY meter_readings FROM STDIN`` in one
  transaction into the empty table: what the database takes at best;
- ``broker``: the same messages published to a plain subscriber, no hub: what publisher and broker carry;
- ``ingest``: broker to committed and acknowledged rows, and its share of ``copy``.

Backends: ``partitions`` (monthly partitions, embedded PostgreSQL, or ANJU_DATABASE_URL) and
``timescaledb`` (hypertables on a throwaway PostgreSQL 15 that preloads TimescaleDB, as the tests start it;
``scripts/timescaledb.sh`` installs it; or ``--timescale-url``, the admin URL of such a server).

    .venv/bin/python bench/hub_ingest.py [--readings 300000] [--agents 4] [--batch 500]
        [--backend both|partitions|timescaledb] [--repeat 1]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import paho.mqtt.client as mqtt
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.services, when run as a script

from anju.hub.ingest.consumer import IngestService
from anju.hub.ingest.writer import READING_COLUMNS
from anju.hub.storage import ensure_months, ensure_schema, upsert_units
from anju.hub.storage.embedded import throwaway_database
from anju.hub.storage.timeseries import add_months, month_start
from anju.services import mosquitto_broker
from anju_mqtt import make_client, parse_broker_url, stop_loop
from anju_wire import Ack, MeterKind, MeterReading, ReadingsBatch, Topic, decode, encode

STEP = timedelta(minutes=15)


def _agent(i: int) -> tuple[str, str]:
    return f"B{i:02d}", f"B{i:02d}-gw{i}"


def _start(n: int) -> datetime:
    """The first reading's time: recent, so that partitions and chunks are those live ingest writes."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - STEP * max(1, n // 50)


def _readings(estate: str, n: int) -> Iterator[MeterReading]:
    """``n`` electricity readings of 50 units of one estate, one every 15 minutes, up to today."""
    start = _start(n)
    for seq in range(1, n + 1):
        unit, k = divmod(seq - 1, max(1, n // 50))
        yield MeterReading(
            seq=seq, unit_id=f"{estate}-1-{unit:04d}", meter=MeterKind.ELECTRICITY,
            device=f"modbus-tcp://127.0.0.1:502/{unit + 1}", ts=start + STEP * k, value=float(seq),
        )  # fmt: skip


def _batches(agent: str, estate: str, n: int, batch: int) -> list[bytes]:
    """The agent's ``n`` readings cut into ReadingsBatch messages of ``batch``."""
    rows = list(_readings(estate, n))
    sent = datetime.now(UTC)
    return [
        encode(ReadingsBatch(agent_id=agent, estate_id=estate, sent_at=sent, readings=rows[i : i + batch]))
        for i in range(0, n, batch)
    ]


def _copy_text(agents: int, per_agent: int) -> str:
    """The rows ingest stores, as COPY text in READING_COLUMNS order."""
    now = datetime.now(UTC)
    out = io.StringIO()
    for i in range(agents):
        estate, agent = _agent(i)
        for r in _readings(estate, per_agent):
            out.write(f"{r.ts}\t{r.unit_id}\t{r.meter.value}\t{r.value!r}\t{r.quality}\t{r.device}\t{agent}\t"
                      f"{r.seq}\t{now}\t\\N\n")  # fmt: skip
    return out.getvalue()


def _publisher(url: str, agents: int, per_agent: int, batch: int, acks: bool, ready: Any, go: Any,
               result: Any) -> None:  # fmt: skip
    """Child process: publish every agent's batches at ``go``; report seconds until all acked (or sent)."""
    address = parse_broker_url(url)
    payloads = [(_agent(i), _batches(_agent(i)[1], _agent(i)[0], per_agent, batch)) for i in range(agents)]
    acked: set[tuple[str, int]] = set()
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        ack = decode(Ack, bytes(msg.payload))
        acked.update((ack.agent_id, s) for s in ack.seqs())
        if len(acked) >= per_agent * agents:
            done.set()

    pub = make_client(address, client_id="bench-agents")
    pub.max_inflight_messages_set(100)
    pub.on_message = on_message
    pub.connect(address.host, address.port)
    if acks:
        for (estate, agent), _ in payloads:
            pub.subscribe(str(Topic.ack(estate, agent)), qos=1)
    pub.loop_start()
    time.sleep(0.5)
    ready.set()
    go.wait()
    t0 = time.perf_counter()
    infos = [
        pub.publish(str(Topic.readings(estate)), raw, qos=1) for (estate, _), msgs in payloads for raw in msgs
    ]
    if acks:
        finished = done.wait(600)
    else:
        for info in infos:
            info.wait_for_publish(600)
        finished = True
    result.put((finished, time.perf_counter() - t0))
    stop_loop(pub)
    pub.disconnect()


def _publish(url: str, args: argparse.Namespace, per_agent: int, *, acks: bool,
             on_go: Any = None) -> tuple[bool, float]:  # fmt: skip
    """Run the publisher process; seconds from its first publish to every ack (or ``on_go``'s end)."""
    ctx = mp.get_context("spawn")
    ready, go, result = ctx.Event(), ctx.Event(), ctx.Queue()
    child = ctx.Process(
        target=_publisher, args=(url, args.agents, per_agent, args.batch, acks, ready, go, result)
    )
    child.start()
    try:
        if not ready.wait(120):
            raise RuntimeError("the publisher did not start")
        t0 = time.perf_counter()
        go.set()
        if on_go is not None:  # the broker run: until the subscriber has every message
            finished = bool(on_go())
            spent = time.perf_counter() - t0
            result.get(timeout=660)
            return finished, spent
        finished, spent = result.get(timeout=660)
        return bool(finished), float(spent)
    finally:
        child.join(30)


def _broker_only(url: str, args: argparse.Namespace, per_agent: int) -> float:
    """Readings/s from the publisher through the broker to a plain QoS 1 subscriber (no hub)."""
    address = parse_broker_url(url)
    expected = sum(len(range(0, per_agent, args.batch)) for _ in range(args.agents))
    got = [0]
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, _msg: mqtt.MQTTMessage) -> None:
        got[0] += 1
        if got[0] >= expected:
            done.set()

    sub = make_client(address, client_id="bench-plain-subscriber")
    sub.on_message = on_message
    sub.connect(address.host, address.port)
    sub.subscribe("anju/v1/+/readings", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    try:
        finished, spent = _publish(url, args, per_agent, acks=False, on_go=lambda: done.wait(600))
    finally:
        stop_loop(sub)
        sub.disconnect()
    return per_agent * args.agents / spent if finished else 0.0


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM meter_readings").fetchone()
    return int(row[0]) if row else 0


def _prepare(url: str, backend: str, agents: int, per_agent: int) -> None:
    with psycopg.connect(url) as conn:
        info = ensure_schema(conn, prefer=backend)  # type: ignore[arg-type]
        assert info.backend == backend, info
        if backend == "partitions":  # every month the readings fall in, for COPY as for ingest
            months, month = set(), month_start(_start(per_agent))
            while month <= datetime.now(UTC).date():
                months.add(month)
                month = add_months(month, 1)
            ensure_months(conn, months)
        conn.execute("TRUNCATE meter_readings")
        # Ingest stores readings of registered units only: register each agent's 50 (+1) units.
        upsert_units(conn, [{"unit_id": f"{_agent(i)[0]}-1-{u:04d}", "estate_id": _agent(i)[0]}
                            for i in range(agents) for u in range(52)])  # fmt: skip
        conn.commit()


def _copy(url: str, text: str, rows: int) -> float:
    """Rows/s of one plain COPY of ``text`` into the empty meter_readings (emptied again afterwards)."""
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY meter_readings ({', '.join(READING_COLUMNS)}) FROM STDIN") as cp,
        ):
            for i in range(0, len(text), 1 << 20):
                cp.write(text[i : i + (1 << 20)])
        conn.commit()
        spent = time.perf_counter() - t0
        assert _count(url) == rows
        conn.execute("TRUNCATE meter_readings")
        conn.commit()
    return rows / spent


def _ingest(url: str, broker_url: str, args: argparse.Namespace, per_agent: int) -> tuple[float, str]:
    service = IngestService(database_url=url, mqtt_url=broker_url, share_group="bench", client_id="bench-hub")
    service.start()
    try:
        assert service.wait_ready(10), "ingest service did not subscribe"
        finished, spent = _publish(broker_url, args, per_agent, acks=True)
        stats = service.stats()
    finally:
        service.stop()
    stored = _count(url)
    total = per_agent * args.agents
    assert finished and stored == total, f"stored {stored} of {total}; all acked: {finished}"
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE meter_readings")
        conn.commit()
    return stored / spent, f"{stats.flushes} flushes, {stats.flush_failures} failed, {spent:.2f} s"


@contextmanager
def _database(backend: str, tmp: Path, timescale_url: str | None) -> Iterator[str]:
    if backend == "partitions":
        with throwaway_database(tmp, "bench") as url:
            yield url
        return
    from tests.services import create_database, drop_database, pg15_server

    with ExitStack() as stack:
        admin = timescale_url or stack.enter_context(pg15_server(preload_timescaledb=True))
        url = create_database(admin)
        try:
            yield url
        finally:
            drop_database(admin, url)


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=300_000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--backend", choices=("both", "partitions", "timescaledb"), default="both")
    ap.add_argument("--repeat", type=int, default=1, help="copy and ingest runs per backend, alternating")
    ap.add_argument("--timescale-url", help="admin URL of a PostgreSQL 15 that preloads TimescaleDB")
    args = ap.parse_args()
    per_agent = args.readings // args.agents
    total = per_agent * args.agents
    backends = ["partitions", "timescaledb"] if args.backend == "both" else [args.backend]
    text = _copy_text(args.agents, per_agent)
    print(f"conditions: {platform.node()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}, python "
          f"{platform.python_version()}, mosquitto, {args.agents} agents, {total:,} readings, "
          f"{args.batch} readings/message, QoS 1", flush=True)  # fmt: skip
    summary = []
    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp, mosquitto_broker(Path(tmp)) as broker:
        broker_rate = _broker_only(broker.url, args, per_agent)
        print(f"broker only (publisher -> mosquitto -> plain subscriber): {broker_rate:,.0f} readings/s")
        for backend in backends:
            database = "PostgreSQL 15 + TimescaleDB" if backend == "timescaledb" else (
                "ANJU_DATABASE_URL" if os.environ.get("ANJU_DATABASE_URL") else "embedded")  # fmt: skip
            with _database(backend, Path(tmp), args.timescale_url) as url:
                _prepare(url, backend, args.agents, per_agent)
                for run in range(1, args.repeat + 1):
                    copy = _copy(url, text, total)
                    ingest, how = _ingest(url, broker.url, args, per_agent)
                    print(
                        f"{backend} ({database}) run {run}: COPY {copy:,.0f} rows/s; ingest {ingest:,.0f} "
                        f"readings/s broker-to-commit ({how}); ingest/COPY {ingest / copy:.0%}",
                        flush=True,
                    )
                    summary.append((backend, copy, ingest))
    for backend in backends:
        runs = [(c, i) for b, c, i in summary if b == backend]
        print(f"{backend}: median over {len(runs)} run(s): COPY {median(c for c, _ in runs):,.0f} rows/s, "
              f"ingest {median(i for _, i in runs):,.0f} readings/s, "
              f"ingest/COPY {median(i / c for c, i in runs):.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
