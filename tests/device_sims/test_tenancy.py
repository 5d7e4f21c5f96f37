"""The tenancy-system stand-in: idempotent filing, listing, and injected outages."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from anju.device_sims.tenancy import create_app
from anju.services import free_port, wait_port


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "case_ref": "ANJU-7", "unit_id": "E01-1-0302", "estate_id": "E01", "kind": "vacancy",
        "opened_at": "2026-04-10T09:00:00+08:00", "summary": "Vacant for 21 days",
        "reasons": [{"code": "no_tenant_entries", "text": "0 entries", "value": 0, "baseline": 40,
                     "unit": "entries"}],
        "evidence_sha256": "a" * 64,
    }
    body.update(changes)
    return body


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn in a thread; yield its base URL; stop and join it on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"tenancy-uvicorn-{port}")
    thread.start()
    try:
        wait_port("127.0.0.1", port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with served(create_app()) as url, httpx.Client(base_url=url) as http:
        yield http


def test_first_filing_201_repeat_200_same_body(client: httpx.Client) -> None:
    first = client.post("/api/v1/cases", json=_body(), headers={"Idempotency-Key": "case-7"})
    assert first.status_code == 201
    assert first.json()["tenancy_case_id"] == "TC-000001" and first.json()["received_at"]
    again = client.post("/api/v1/cases", json=_body(), headers={"Idempotency-Key": "case-7"})
    assert again.status_code == 200 and again.json() == first.json()
    other = client.post("/api/v1/cases", json=_body(case_ref="ANJU-8"), headers={"Idempotency-Key": "case-8"})
    assert other.status_code == 201 and other.json()["tenancy_case_id"] == "TC-000002"

    cases = client.get("/api/v1/cases").json()["cases"]
    assert [c["tenancy_case_id"] for c in cases] == ["TC-000001", "TC-000002"]
    assert cases[0]["deliveries"] == 2 and cases[0]["idempotency_key"] == "case-7"
    assert {k: cases[0][k] for k in _body()} == _body()
    assert client.get("/health").json() == {"status": "ok"}


def test_same_key_different_body_409_and_missing_key_400(client: httpx.Client) -> None:
    assert client.post("/api/v1/cases", json=_body(), headers={"Idempotency-Key": "k"}).status_code == 201
    clash = client.post("/api/v1/cases", json=_body(summary="changed"), headers={"Idempotency-Key": "k"})
    assert clash.status_code == 409
    assert client.post("/api/v1/cases", json=_body()).status_code in (400, 422)
    empty_key = client.post("/api/v1/cases", json=_body(), headers={"Idempotency-Key": ""})
    assert empty_key.status_code in (400, 422)
    bad = client.post("/api/v1/cases", json=_body(evidence_sha256="nope"), headers={"Idempotency-Key": "z"})
    assert bad.status_code == 422
    assert len(client.get("/api/v1/cases").json()["cases"]) == 1


def test_injected_outage_answers_503_and_stores_nothing(client: httpx.Client) -> None:
    assert client.post("/_sim/faults", json={"fail_next": 2}).status_code == 200
    for _ in range(2):
        r = client.post("/api/v1/cases", json=_body(), headers={"Idempotency-Key": "k"})
        assert r.status_code == 503
    assert client.get("/api/v1/cases").json()["cases"] == []
    assert client.post("/api/v1/cases", json=_body(), headers={"Idempotency-Key": "k"}).status_code == 201


def test_concurrent_repeats_file_one_case() -> None:
    statuses: list[int] = []
    with served(create_app()) as url:

        def deliver() -> None:
            with httpx.Client(base_url=url) as http:
                r = http.post("/api/v1/cases", json=_body(), headers={"Idempotency-Key": "same"})
                statuses.append(r.status_code)

        workers = [threading.Thread(target=deliver) for _ in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        with httpx.Client(base_url=url) as http:
            cases = http.get("/api/v1/cases").json()["cases"]
    assert sorted(statuses) == [200] * 7 + [201]
    assert len(cases) == 1 and cases[0]["deliveries"] == 8


def test_status_changes_are_readable_per_case_and_as_a_numbered_feed() -> None:
    with served(create_app()) as url:
        for n in (1, 2):
            r = httpx.post(f"{url}/api/v1/cases", json=_body(case_ref=f"ANJU-{n}"),
                           headers={"Idempotency-Key": f"anju-case-{n}"})
            assert r.status_code == 201
        assert httpx.get(f"{url}/api/v1/cases/TC-000001").json()["status"] == "filed"
        assert httpx.get(f"{url}/api/v1/changes").json() == {"changes": [], "last": 0}
        moved = httpx.post(f"{url}/_sim/cases/TC-000002/status", json={"status": "moved_out"})
        assert moved.status_code == 200
        assert httpx.post(f"{url}/_sim/cases/TC-000001/status", json={"status": "closed"}).status_code == 200
        assert httpx.post(f"{url}/_sim/cases/TC-000009/status", json={"status": "closed"}).status_code == 404
        assert httpx.post(f"{url}/_sim/cases/TC-000001/status", json={"status": "gone"}).status_code == 422
        assert httpx.get(f"{url}/api/v1/cases/TC-000002").json()["status"] == "moved_out"
        assert httpx.get(f"{url}/api/v1/cases/TC-000009").status_code == 404
        feed = httpx.get(f"{url}/api/v1/changes", params={"since": 0}).json()
        assert feed["last"] == 2
        assert [(c["seq"], c["idempotency_key"], c["status"]) for c in feed["changes"]] == [
            (1, "anju-case-2", "moved_out"), (2, "anju-case-1", "closed")]
        after = httpx.get(f"{url}/api/v1/changes", params={"since": 1}).json()["changes"]
        assert [c["seq"] for c in after] == [2]
