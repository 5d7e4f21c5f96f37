"""The durable outbox: numbering, persistence, acks, capacity, resend selection, thread safety."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from anju.edge_agent.errors import OutboxError, OutboxFull
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.records import RecordKind


def test_seqs_increase_and_survive_reopen_and_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path, capacity=10) as ob:
        a = ob.put(RecordKind.READING, '{"a":1}')
        b, c = ob.put_many("access", ['{"b":2}', '{"c":3}'])
        assert a < b < c
        assert ob.ack([c]) == 1
    with Outbox(path, capacity=10) as ob:
        assert ob.depth() == 2
        assert [r.seq for r in ob.next_batch("reading", 10, time.time())] == [a]
        assert [(r.seq, r.payload) for r in ob.next_batch("access", 10, time.time())] == [(b, '{"b":2}')]
        d = ob.put("access", "{}")
        assert d > c  # AUTOINCREMENT: the acked top seq is not handed out again


def test_ack_deletes_only_acked(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", capacity=100) as ob:
        seqs = ob.put_many("reading", [f'{{"i":{i}}}' for i in range(10)])
        assert ob.ack([seqs[1], seqs[3], 999_999]) == 2
        assert ob.depth() == 8
        left = [r.seq for r in ob.next_batch("reading", 100, time.time())]
        assert left == [s for s in seqs if s not in (seqs[1], seqs[3])]
        assert ob.ack([]) == 0


def test_full_outbox_refuses_and_keeps_old_records(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", capacity=3) as ob:
        first = ob.put_many("reading", ["{}", "{}"])
        with pytest.raises(OutboxFull):
            ob.put_many("reading", ["{}", "{}"])  # all or nothing
        assert ob.depth() == 2
        ob.put("access", "{}")
        assert ob.is_full()
        with pytest.raises(OutboxFull, match="3 of 3"):
            ob.put("reading", "{}")
        assert [r.seq for r in ob.next_batch("reading", 10, time.time())] == first
        ob.ack(first[:1])
        ob.put("reading", "{}")


def test_next_batch_skips_recently_sent_until_timeout(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", capacity=10) as ob:
        s1, s2 = ob.put_many("reading", ["{}", "{}"])
        ob.mark_sent([s1], at=100.0)
        assert [r.seq for r in ob.next_batch("reading", 10, not_sent_since=50.0)] == [s2]
        assert [r.seq for r in ob.next_batch("reading", 10, not_sent_since=150.0)] == [s1, s2]
        ob.mark_sent([s1, s2], at=100.0)
        assert ob.next_batch("reading", 10, not_sent_since=50.0) == []
        ob.mark_unsent()
        assert len(ob.next_batch("reading", 1, not_sent_since=50.0)) == 1


def test_rejected_and_discarded_are_kept_apart(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", capacity=10) as ob:
        ob.reject(source="gate:t", payload=b"\xff\x00", reason="not json")
        s = ob.put("reading", "broken")
        ob.discard([s], reason="invalid")
        assert ob.depth() == 0
        assert ob.rejected() == [
            (f"outbox:reading:{s}", b"broken", "invalid"),
            ("gate:t", b"\xff\x00", "not json"),
        ]


def test_concurrent_puts_and_acks_from_threads(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", capacity=10_000) as ob:
        got: list[int] = []
        lock = threading.Lock()

        def writer() -> None:
            for _ in range(50):
                s = ob.put("reading", "{}")
                with lock:
                    got.append(s)

        threads = [threading.Thread(target=writer) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(got)) == 200
        ob.ack(got[:100])
        assert ob.depth() == 100


def test_closed_outbox_raises(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", capacity=1)
    ob.close()
    with pytest.raises(OutboxError, match="closed"):
        ob.put("reading", "{}")
    with Outbox(tmp_path / "p.sqlite", capacity=1) as other, pytest.raises(ValueError):
        other.put("nonsense", "{}")
