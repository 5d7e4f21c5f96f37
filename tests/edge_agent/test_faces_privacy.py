"""Privacy by construction: no image, crop or embedding leaves the gateway in a camera run."""

from __future__ import annotations

import asyncio
import json
import threading
import types
import typing
import uuid
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import AwareDatetime, BaseModel

from anju.device_sims.face_photos import photo
from anju.edge_agent.agent import run_agent
from anju.edge_agent.faces.evidence import EvidenceStore
from anju.edge_agent.faces.store import EstateVault, Gallery
from anju.edge_agent.site import parse_site
from anju_mqtt import parse_broker_url, stop_loop
from anju_wire import AccessBatch, Ack, AgentStatus, ReadingsBatch
from tests.edge_agent.faces_support import corridor_frames, engine, pack_dir
from tests.edge_agent.helpers import SECRET_ENV, hub_stand_in, site_dict, unique_ids, wait_until


def _scalar_fields(model: type[BaseModel], seen: set[type] | None = None) -> list[tuple[str, Any]]:
    """Every leaf field type of a wire model, nested models opened up."""
    seen = seen or set()
    out = []
    for name, field in model.model_fields.items():
        stack = [field.annotation]
        while stack:
            t = stack.pop()
            origin = typing.get_origin(t)
            if origin is typing.Annotated:
                stack.append(typing.get_args(t)[0])
                continue
            if origin is typing.Literal:
                out.append((name, str))
                continue
            if origin is dict:  # a census: unit ids to counts
                stack.extend(typing.get_args(t))
                continue
            if origin is list:
                inner = typing.get_args(t)[0]
                assert isinstance(inner, type) and issubclass(inner, BaseModel), f"{name}: a list of {inner}"
                stack.append(inner)
                continue
            if origin in (typing.Union, types.UnionType):
                stack.extend(typing.get_args(t))
                continue
            if isinstance(t, type) and issubclass(t, BaseModel):
                if t not in seen:
                    seen.add(t)
                    out.extend(_scalar_fields(t, seen))
                continue
            out.append((name, t))
    return out


def test_the_wire_contract_has_no_field_that_could_carry_an_image_or_embedding() -> None:
    allowed = (str, int, float, bool, datetime, AwareDatetime, type(None))
    for model in (AccessBatch, ReadingsBatch, AgentStatus, Ack):
        for name, t in _scalar_fields(model):
            assert t in allowed or (isinstance(t, type) and issubclass(t, Enum)), (
                f"{model.__name__}.{name}: {t}"
            )
            assert t is not bytes
    # the only floats are a meter's total; an access event's strings are short, bounded identifiers
    from anju_wire.payloads import AccessEvent

    floats = [n for n, t in _scalar_fields(AccessEvent) if t is float]
    assert floats == []
    for name, field in AccessEvent.model_fields.items():
        limits = [m.max_length for m in field.metadata if hasattr(m, "max_length")]
        nested = [m.max_length for a in typing.get_args(field.annotation)
                  for m in getattr(a, "__metadata__", ()) if hasattr(m, "max_length")]  # fmt: skip
        assert all(limit is None or limit <= 100 for limit in limits + nested), name


def _walk(value: Any, path: str = "") -> typing.Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


class _Tap:
    """Records every message on the estate's topics, raw."""

    def __init__(self, url: str, estate: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        addr = parse_broker_url(url)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"tap-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._message
        self.client.connect(addr.host, addr.port)
        self.client.subscribe(f"anju/v1/{estate}/#", qos=1)
        self.client.loop_start()

    def _message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def close(self) -> None:
        self.client.disconnect()
        stop_loop(self.client)


def test_every_outgoing_payload_of_a_camera_run_is_free_of_images_and_embeddings(
    mqtt_url: str, tmp_path: Path
) -> None:
    estate, agent = unique_ids()
    home = tmp_path / "home"
    e = engine()
    tenant = photo("obama.jpg").image
    embedding = e.embed([e.align(tenant, e.detect(tenant)[0])])
    Gallery(EstateVault(home, estate), "default").enrol("T-1001", "U-0301", embedding)
    frames = corridor_frames(tmp_path / "frames")
    doc = site_dict(
        estate=estate, agent=agent, mqtt_url=mqtt_url, outbox_path=str(tmp_path / "o.sqlite"),
        cameras=[{"device_id": "C1", "building": "1", "floor": 3, "url": str(frames), "max_fps": 10}],
        faces={"pack_dir": str(pack_dir()), "home": str(home), "evidence": {"enabled": True}},
    )  # fmt: skip
    config = parse_site(doc, environ={SECRET_ENV: "estate-key"})
    tap = _Tap(mqtt_url, estate)
    try:
        with hub_stand_in(mqtt_url, estate=estate, agent=agent) as hub:

            async def scenario() -> None:
                stop = asyncio.Event()
                task = asyncio.create_task(run_agent(config, stop=stop))
                deadline = asyncio.get_running_loop().time() + 30
                while len([ev for b in hub.access for ev in b.events]) < 2:
                    assert asyncio.get_running_loop().time() < deadline, "no camera events reached the hub"
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # a status or two more
                stop.set()
                await task

            asyncio.run(scenario())
            events = [ev for b in hub.access for ev in b.events]
        wait_until(lambda: any(t.endswith("/access") for t, _ in tap.messages), 5, "the tap saw the batch")
    finally:
        tap.close()
    assert {ev.unit_id for ev in events} == {"U-0301", None} and all(ev.device_id == "C1" for ev in events)
    assert any(ev.stranger_track for ev in events)
    # every byte that left: JSON of short identifiers, no float, no array of numbers, no image markers
    assert tap.messages
    for topic, raw in tap.messages:
        assert b"\xff\xd8" not in raw and b"/9j/" not in raw and b"PNG" not in raw and b"data:" not in raw
        doc_out = json.loads(raw)
        for where, value in _walk(doc_out):
            assert not isinstance(value, float), f"{topic} {where}: a float"
            assert not isinstance(value, str) or len(value) <= 100, f"{topic} {where}: {len(value)} chars"
        leaked = embedding[0][:4]
        assert not any(f"{x:.4f}"[:-1] in raw.decode() for x in leaked)
    statuses = [json.loads(raw) for topic, raw in tap.messages if "/status/" in topic]
    cams = [d for st in statuses for d in st.get("devices", []) if d["device"].startswith("camera:")]
    assert cams and cams[-1]["device"] == "camera:C1"  # the camera by its id; its URL stays here
    kept = list((home / "faces" / "estates" / estate / "evidence").glob("*.bin"))
    assert len(kept) == 2  # the evidence crops stayed on the gateway, sealed
    assert all(b"JFIF" not in f.read_bytes() for f in kept)
    store = EvidenceStore(EstateVault(home, estate), retention=timedelta(days=7))
    assert all((store.read(f"evidence/{f.name}") or b"")[:2] == b"\xff\xd8" for f in kept)


@pytest.mark.parametrize("key", ["embedding", "image", "crop"])
def test_an_access_event_refuses_any_extra_field(key: str) -> None:
    from anju_wire import ContractError, decode

    event = {"seq": 1, "event_id": "C1:1", "ts": "2026-03-01T08:00:00+08:00", "device_id": "C1",
             "building": "1", "method": "face", "stranger_track": "s-0123456789abcdef",
             key: np.zeros(4).tolist()}  # fmt: skip
    batch = {"schema": "anju.access.v1", "agent_id": "a", "estate_id": "e",
             "sent_at": "2026-03-01T08:00:00+08:00", "events": [event]}  # fmt: skip
    with pytest.raises(ContractError, match="Extra inputs are not permitted"):
        decode(AccessBatch, json.dumps(batch).encode())
