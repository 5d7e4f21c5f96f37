"""Supervision of the hub's background parts, and how /api/health and /metrics show them."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from anju.hub.api.app import create_app
from anju.hub.monitor import HubMonitor, PartMonitor, run_supervised
from tests.hub.test_api import serve


def test_a_crashing_loop_is_restarted_and_shown_down_until_it_succeeds() -> None:
    part = PartMonitor("pipeline", stale_after_s=60)
    stop = threading.Event()
    runs: list[int] = []

    def loop() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RecursionError("maximum recursion depth exceeded")
        part.success()
        stop.wait(5)

    thread = threading.Thread(
        target=run_supervised, kwargs={"loop": loop, "part": part, "stop": stop, "first_delay_s": 0.01}
    )
    thread.start()
    try:
        for _ in range(200):
            if part.snapshot().last_success is not None:
                break
            stop.wait(0.01)
        snap = part.snapshot()
        assert (snap.up, snap.alive, snap.restarts, len(runs)) == (True, True, 1, 2)
        assert snap.last_error == "RecursionError: maximum recursion depth exceeded"
    finally:
        stop.set()
        thread.join(5)
    assert not part.snapshot().alive and not part.snapshot().up


def test_a_part_is_down_while_failing_or_stale() -> None:
    part = PartMonitor("ingest", stale_after_s=0.0)
    assert not part.snapshot().up  # never started
    part.set_alive(True)
    part.failure("flush failed: database unavailable")
    assert not part.snapshot().up and part.snapshot().failing
    fresh = PartMonitor("broker", stale_after_s=60, lag=lambda: 1.5)
    fresh.set_alive(True)
    fresh.success()
    assert fresh.snapshot().up and fresh.snapshot().lag_s == 1.5


class _Ingest:
    def stats_dict(self) -> dict[str, int]:
        return {"messages": 7, "dead_letters": 3}

    def dead_letters_by_estate(self) -> dict[str, dict[str, int]]:
        return {"E01": {"unit_other_estate": 2, "ts_future": 1}}

    def queue_depth(self) -> int:
        return 0


@pytest.fixture
def monitor() -> HubMonitor:
    m = HubMonitor()
    ok = PartMonitor("pipeline", stale_after_s=60)
    ok.set_alive(True)
    ok.success()
    m.add(ok)
    m.attach_ingest(_Ingest())
    return m


@pytest.fixture
def client(database_url: str, monitor: HubMonitor) -> Iterator[httpx.Client]:
    app = create_app(database_url=database_url, monitor=monitor)
    with serve(app) as url, httpx.Client(base_url=url) as c:
        yield c


def test_health_answers_503_naming_the_part_that_is_down(client: httpx.Client, monitor: HubMonitor) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and [p["name"] for p in body["parts"]] == ["pipeline"]
    assert body["dead_letters_by_estate"] == {"E01": {"unit_other_estate": 2, "ts_future": 1}}
    ingest = PartMonitor("ingest", stale_after_s=60)
    ingest.set_alive(True)
    ingest.failure("OperationalError: connection refused")
    monitor.add(ingest)
    answer = client.get("/api/health")
    assert answer.status_code == 503
    assert answer.json()["status"] == "down: ingest"
    [part] = [p for p in answer.json()["parts"] if p["name"] == "ingest"]
    assert (part["up"], part["last_error"]) == (False, "OperationalError: connection refused")


def test_metrics_show_parts_ingest_counters_and_dead_letters_by_estate(client: httpx.Client) -> None:
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'anju_part_up{part="pipeline"} 1.0' in text
    assert 'anju_part_restarts_total{part="pipeline"} 0.0' in text
    assert "anju_ingest_messages_total 7.0" in text
    assert 'anju_ingest_dead_letters_by_estate_total{code="unit_other_estate",estate="E01"} 2.0' in text
    assert "anju_ingest_queue_depth 0.0" in text


def test_an_app_without_a_monitor_is_judged_by_its_database_alone(database_url: str) -> None:
    with serve(create_app(database_url=database_url)) as url, httpx.Client(base_url=url) as c:
        assert c.get("/api/health").json()["parts"] == []
        assert c.get("/metrics").status_code == 200
