"""Benchmark: the edge agent's SQLite outbox, records written and drained per second.

Writes N reading records in ``put_many`` commits of B (what a poller round does), then drains them the
way the publisher does (``next_batch`` of 500, ``mark_sent``, ``ack``), and reports both phases and the
whole cycle. Also times single-record commits (one fsync each), the worst case of a gate-event burst.
Run: ``.venv/bin/python bench/edge_outbox.py [--records N] [--batch B] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from anju.edge_agent.outbox import Outbox
from anju.edge_agent.records import RecordKind, reading_record
from anju_wire import MeterKind


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=500, help="records per put_many commit")
    p.add_argument("--drain-batch", type=int, default=500, help="records per publisher batch")
    p.add_argument("--singles", type=int, default=500, help="single-record commits to time")
    p.add_argument("--dir", default=None, help="where to put the outbox (default: a temporary folder)")
    args = p.parse_args()
    payload = reading_record(
        unit_id="E01-1-0101", meter=MeterKind.ELECTRICITY, device="modbus-tcp://10.0.0.5:502/1",
        ts=datetime(2026, 3, 1, tzinfo=UTC), value=1532.25,
    ).to_json()  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="anju-bench-outbox-", dir=args.dir) as tmp:
        path = Path(tmp) / "outbox.sqlite"
        with Outbox(path, capacity=args.records + args.singles + 1) as ob:
            t0 = time.perf_counter()
            for i in range(0, args.records, args.batch):
                ob.put_many(RecordKind.READING, [payload] * min(args.batch, args.records - i))
            t1 = time.perf_counter()
            drained = 0
            while True:
                recs = ob.next_batch(RecordKind.READING, args.drain_batch, time.time() - 5)
                if not recs:
                    break
                seqs = [r.seq for r in recs]
                ob.mark_sent(seqs)
                drained += ob.ack(seqs)
            t2 = time.perf_counter()
            assert drained == args.records and ob.depth() == 0
            t3 = time.perf_counter()
            for _ in range(args.singles):
                ob.put(RecordKind.READING, payload)
            t4 = time.perf_counter()
        fs = os.statvfs(tmp)
    write, drain = t1 - t0, t2 - t1
    print(f"conditions: {platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"SQLite WAL synchronous=FULL, folder {args.dir or tempfile.gettempdir()} "
          f"(block size {fs.f_bsize}), payload {len(payload)} B")  # fmt: skip
    print(f"write  {args.records} records in commits of {args.batch}: {write:.2f} s = "
          f"{args.records / write:,.0f} records/s")  # fmt: skip
    print(f"drain  {args.records} records in batches of {args.drain_batch} (next_batch+mark_sent+ack): "
          f"{drain:.2f} s = {args.records / drain:,.0f} records/s")  # fmt: skip
    print(f"write+drain cycle: {args.records / (write + drain):,.0f} records/s (target >= 20,000)")
    print(f"single-record commits (one fsync each): {args.singles / (t4 - t3):,.0f} records/s")


if __name__ == "__main__":
    main()
