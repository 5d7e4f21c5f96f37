"""HTTP push gates: events POSTed to a running agent are stored before the 200, bad ones answered 400/401."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_agent.agent import run_agent
from edge_agent.errors import SiteConfigError
from edge_agent.gates import parse_gate_event, unwrap_pushed_event
from edge_agent.outbox import Outbox
from edge_agent.site import parse_site
from tests.edge_agent.helpers import SECRET_ENV, site_dict, unique_ids
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
