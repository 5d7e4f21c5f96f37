"""HTTP push gates: events POSTed to a running agent are stored before the 200, bad ones answered 400/401,
a full outbox 503 (nothing stored, counted), a taken listen port a clear error at start."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from anju.edge_agent.agent import run_agent
from anju.edge_agent.errors import ListenError, SiteConfigError
from anju.edge_agent.gates import parse_gate_event, unwrap_pushed_event
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.site import parse_site
from anju_wire import decode
from anju_wire.payloads import AgentStatus
from tests.edge_agent.helpers import (
    SECRET_ENV,
    HubStandIn,
    hub_stand_in,
    scrape_metrics,
    site_dict,
    unique_ids,
    wait_until,
)
from tests.services import free_port

TOKEN_ENV = "ANJU_TEST_GATE_TOKEN"
EVENT = {
    "eventType": "AccessControllerEvent", "serialNo": 4711, "dateTime": "2026-03-01T07:42:13+08:00",
    "deviceID": "G1", "building": "1", "floor": 3, "verifyMode": "qr",
    "employeeNo": "T-E01-1-0302-1", "roomNo": "U-0302", "strangerTrack": None,
}  # fmt: skip
# A Hikvision ISAPI-style notification: the event object nested under its type, outer fields around it.
HIKVISION = {
    "ipAddress": "10.0.3.21", "portNo": 80, "protocol": "HTTP", "macAddress": "44:19:b6:00:00:01",
    "channelID": 1, "dateTime": "2026-03-01T07:45:00+08:00", "activePostCount": 1,
    "eventType": "AccessControllerEvent", "eventState": "active",
    "AccessControllerEvent": {
        "majorEventType": 5, "subEventType": 75, "serialNo": 4712, "verifyMode": "card",
        "employeeNoString": "T-E01-1-0302-2", "roomNo": "U-0302",
    },
}  # fmt: skip


def test_hikvision_wrapper_unwraps_to_the_vendor_event_with_the_gates_id_and_building() -> None:
    raw = unwrap_pushed_event(json.dumps(HIKVISION).encode(), device_id="G1", building="2")
    rec = parse_gate_event(raw, estate_id="E01", secret=b"k")
    assert (rec.event_id, rec.building, rec.method, rec.unit_id) == ("G1:4712", "2", "card", "U-0302")
    assert rec.person is not None and rec.person.startswith("p-") and "T-E01" not in rec.to_json()
    assert unwrap_pushed_event(b"{nope", device_id="G1", building="1") == b"{nope"


def test_http_gate_site_fields_are_checked() -> None:
    base = site_dict(
        estate="E01", agent="E01-gw1", mqtt_url="mqtt://127.0.0.1:1", outbox_path="/tmp/x.sqlite"
    )
    gate: dict[str, Any] = {"device_id": "G1", "building": "1", "source": "http"}
    with pytest.raises(SiteConfigError, match=r"gates\.0: .*needs path"):
        parse_site({**base, "gates": [gate]}, environ={SECRET_ENV: "k"})
    with pytest.raises(SiteConfigError, match=r"gates\.0\.token_env: environment variable NOPE_TOKEN"):
        parse_site(
            {**base, "gates": [{**gate, "path": "/g", "token_env": "NOPE_TOKEN"}]}, environ={SECRET_ENV: "k"}
        )
    with pytest.raises(SiteConfigError, match=r"gates\.0\.token: keep the token in the environment"):
        parse_site({**base, "gates": [{**gate, "path": "/g", "token": "x"}]}, environ={SECRET_ENV: "k"})
    config = parse_site(
        {**base, "gates": [{**gate, "path": "/g", "token_env": TOKEN_ENV}]},
        environ={SECRET_ENV: "k", TOKEN_ENV: "tok-XYZ-42"},
    )
    assert config.gates[0].token is not None and "tok-XYZ-42" not in config.model_dump_json()


def test_pushed_events_are_stored_before_200_and_bad_ones_refused(mqtt_url: str, tmp_path: Path) -> None:
    estate, agent = unique_ids()
    port = free_port()
    outbox_path = tmp_path / "o.sqlite"
    listen = {"source": "http", "listen_host": "127.0.0.1", "listen_port": port}
    gates = [
        {"device_id": "G1", "building": "1", **listen, "path": "/gates/G1", "token_env": TOKEN_ENV},
        {"device_id": "G2", "building": "2", **listen, "path": "/gates/G2"},
    ]
    doc = site_dict(estate=estate, agent=agent, mqtt_url=mqtt_url, outbox_path=str(outbox_path), gates=gates)
    config = parse_site(doc, environ={SECRET_ENV: "k", TOKEN_ENV: "s3cret"})
    auth = {"Authorization": "Bearer s3cret"}

    async def scenario() -> list[httpx.Response]:
        stop = asyncio.Event()
        task = asyncio.create_task(run_agent(config, stop=stop))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                for _ in range(100):  # the listener is up once the agent's TaskGroup has started it
                    try:
                        await client.post("/gates/G2", content=b"")
                        break
                    except httpx.ConnectError:
                        await asyncio.sleep(0.05)
                return [
                    await client.post("/gates/G1", json=EVENT, headers=auth),
                    await client.post(
                        "/gates/G1", content=b'{"eventType": "AccessControllerEvent"', headers=auth
                    ),
                    await client.post("/gates/G1", json=EVENT, headers={"Authorization": "Bearer wrong"}),
                    await client.post("/gates/G1", json=EVENT),
                    await client.post("/gates/G2", json=HIKVISION),
                    await client.post("/gates/G9", json=EVENT),
                ]
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    ok, malformed, wrong, missing, hik, unknown = asyncio.run(scenario())
    assert (ok.status_code, ok.json()) == (200, {"status": "stored", "event_id": "G1:4711"})
    assert malformed.status_code == 400 and "malformed gate event" in malformed.json()["error"]
    assert (wrong.status_code, missing.status_code, unknown.status_code) == (401, 401, 404)
    assert hik.status_code == 200 and hik.json()["event_id"] == "G2:4712"  # the path's gate id
    with Outbox(outbox_path, capacity=1000) as ob:
        stored = [json.loads(r.payload) for r in ob.next_batch("access", 100, 1e12)]
        rejected = ob.rejected()
    assert [(e["event_id"], e["method"], e["building"]) for e in stored] == [
        ("G1:4711", "qr", "1"),
        ("G2:4712", "card", "2"),
    ]
    assert all(e["person"].startswith("p-") for e in stored)
    assert "T-E01" not in json.dumps(stored)
    # the empty probe body and the truncated JSON are both kept, raw, with their reasons
    assert [(src, raw) for src, raw, _ in rejected] == [
        ("gate-http:/gates/G1", b'{"eventType": "AccessControllerEvent"'),
        ("gate-http:/gates/G2", b""),
    ]


def _statuses(hub: HubStandIn) -> list[AgentStatus]:
    with hub.lock:
        return [decode(AgentStatus, raw) for raw in hub.status]


def test_full_outbox_answers_503_stores_nothing_counts_it_and_the_retry_is_stored(
    mqtt_url: str, tmp_path: Path
) -> None:
    estate, agent = unique_ids()
    port, metrics_port = free_port(), free_port()
    outbox_path = tmp_path / "o.sqlite"
    gates = [{"device_id": "G1", "building": "1", "source": "http", "listen_host": "127.0.0.1",
              "listen_port": port, "path": "/gates/G1"}]  # fmt: skip
    doc = site_dict(
        estate=estate, agent=agent, mqtt_url=mqtt_url, outbox_path=str(outbox_path), gates=gates,
        outbox={"path": str(outbox_path), "capacity": 1}, metrics={"host": "127.0.0.1", "port": metrics_port},
    )  # fmt: skip
    config = parse_site(doc, environ={SECRET_ENV: "k"})
    second = {**EVENT, "serialNo": 4712}
    Scraped = dict[tuple[str, tuple[tuple[str, str], ...]], float]

    async def scenario(hub: HubStandIn) -> tuple[httpx.Response, httpx.Response, Scraped, httpx.Response]:
        stop = asyncio.Event()
        task = asyncio.create_task(run_agent(config, stop=stop))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                for _ in range(100):
                    try:
                        first = await client.post("/gates/G1", json=EVENT)
                        break
                    except httpx.ConnectError:
                        await asyncio.sleep(0.05)
                # the hub does not ack: the one stored event fills the outbox (capacity 1)
                refused = await client.post("/gates/G1", json=second)
                await asyncio.to_thread(
                    wait_until, lambda: any(s.outbox_full for s in _statuses(hub)), 10, "status: outbox full"
                )
                scraped = await asyncio.to_thread(scrape_metrics, metrics_port)
                hub.acking = True  # the hub is back: the outbox drains and the device's retry is stored
                await asyncio.to_thread(
                    wait_until, lambda: scrape_metrics(metrics_port)[("anju_edge_outbox_depth", ())] == 0, 10,
                    "outbox drained",
                )  # fmt: skip
                retried = await client.post("/gates/G1", json=second)
                await asyncio.to_thread(wait_until, lambda: 2 in hub.seqs_seen(), 10, "the retry published")
                return first, refused, scraped, retried
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    with hub_stand_in(mqtt_url, estate=estate, agent=agent) as hub:
        hub.acking = False
        first, refused, scraped, retried = asyncio.run(scenario(hub))
        events = [(e.seq, e.event_id) for b in hub.access for e in b.events]
    assert (first.status_code, first.json()) == (200, {"status": "stored", "event_id": "G1:4711"})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "30"
    assert refused.json() == {
        "error": "outbox full, event not stored; send it again later "
        "(outbox holds 1 of 1 records; refusing 1 more)"
    }
    assert scraped[("anju_edge_outbox_full", ())] == 1.0
    assert scraped[("anju_edge_outbox_refused_records_total", ())] == 1.0
    assert scraped[("anju_edge_gate_events_total", (("outcome", "refused"),))] == 1.0
    assert scraped[("anju_edge_gate_events_total", (("outcome", "accepted"),))] == 1.0
    assert (retried.status_code, retried.json()) == (200, {"status": "stored", "event_id": "G1:4712"})
    # the refused attempt took no sequence number and left no row: each event went up once, in order
    assert sorted(set(events)) == [(1, "G1:4711"), (2, "G1:4712")]
    with Outbox(outbox_path, capacity=1) as ob:
        assert ob.rejected() == [] and ob.depth() == 0


def test_a_taken_listen_port_stops_the_agent_at_start_with_a_clear_error(tmp_path: Path) -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = int(holder.getsockname()[1])
    estate, agent = unique_ids()
    doc = site_dict(
        estate=estate, agent=agent, mqtt_url="mqtt://127.0.0.1:1", outbox_path=str(tmp_path / "o.sqlite"),
        gates=[{"device_id": "G1", "building": "1", "source": "http", "listen_host": "127.0.0.1",
                "listen_port": port, "path": "/gates/G1"}],
    )  # fmt: skip
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(doc))
    try:
        with pytest.raises(ExceptionGroup) as caught:  # in-process: the TaskGroup carries the ListenError
            asyncio.run(run_agent(parse_site(doc, environ={SECRET_ENV: "k"})))
        run = subprocess.run(
            [sys.executable, "-m", "anju.cli", "agent", "--config", str(site)],
            capture_output=True, text=True, timeout=60, env={**os.environ, SECRET_ENV: "k"},
        )  # fmt: skip
    finally:
        holder.close()
    (err,) = caught.value.exceptions
    assert isinstance(err, ListenError) and str(err).startswith(f"gates: cannot listen on 127.0.0.1:{port}: ")
    assert run.returncode == 1, run.stderr
    assert f"agent stopped: gates: cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use" in (
        run.stderr
    )
    assert "Traceback" not in run.stderr + run.stdout
    # the agent that could not start stored nothing
    with Outbox(tmp_path / "o.sqlite", capacity=10) as ob:
        assert ob.depth() == 0 and ob.rejected() == []
