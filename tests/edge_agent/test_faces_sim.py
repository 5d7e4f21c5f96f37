"""``anju sim camera``: an MJPEG entrance camera; the agent knows its tenants and not its visitors."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from anju.demo_camera import demo_camera
from anju.device_sims.camera import CameraSim, CorridorScene, face_pools, serve
from anju.device_sims.household import EstateModel, GateEvent, make_estate
from anju.edge_agent.cameras import CameraReader
from anju.edge_agent.faces.recognise import CameraFaces, FaceRecogniser
from anju.edge_agent.faces.service import open_engine, open_gallery, pack_id
from anju.edge_agent.faces.settings import CameraConfig, FacesSettings
from anju.edge_agent.faces.strangers import StrangerTracks
from anju.edge_agent.outbox import Outbox
from anju.sim_camera import enrol_tenants
from anju_wire import AcceleratedClock
from tests.edge_agent.faces_support import pack_dir
from tests.edge_agent.helpers import wait_until
from tests.services import free_port


def test_the_pools_keep_tenants_and_strangers_apart() -> None:
    tenants, strangers = face_pools()
    assert tenants[0][0] == "obama" and len(tenants[0][1]) == 5
    assert not {n for n, _ in tenants} & {n for n, _ in strangers}
    assert len(tenants) + len(strangers) == 25  # Obama, Biden, Eileen Collins and 22 women


def test_the_simulated_camera_shows_a_recognised_tenant_and_a_stranger(tmp_path: Path) -> None:
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    clock = AcceleratedClock(origin_wall=time.time(), origin_sim=start, speed=60.0)
    events = [
        GateEvent(1, start + timedelta(seconds=30), "E01-G1", "1", "face", employee_no="T-E01-1-0101-1",
                  room_no="E01-1-0101"),
        GateEvent(2, start + timedelta(seconds=240), "E01-G1", "1", "face", stranger_track="E01-G1-t123456"),
    ]  # fmt: skip
    sim = CameraSim(events, clock, CorridorScene(640, 360, seed=1), seed=1)
    settings = FacesSettings(pack_dir=pack_dir(), home=tmp_path / "home")
    assert enrol_tenants(sim, "E01", settings) == 1
    gallery = open_gallery(settings, "E01")
    assert [(p.person_id, p.unit_id) for p in gallery] == [("T-E01-1-0101-1", "E01-1-0101")]
    outbox = Outbox(tmp_path / "o.sqlite", capacity=100)
    strangers = StrangerTracks(gallery.vault, pack_id(settings), secret=b"k", radius=0.47)
    engine = open_engine(settings)
    faces = CameraFaces(recogniser=FaceRecogniser(engine, gallery), strangers=strangers, outbox=outbox,
                        estate_id="E01", secret=b"k")  # fmt: skip
    port = free_port()
    stop, halt = threading.Event(), threading.Event()
    server = threading.Thread(target=serve, args=(sim, "127.0.0.1", port, 5.0, stop), daemon=True)
    server.start()
    cam = CameraConfig(
        device_id="E01-C1", building="1", url=f"http://127.0.0.1:{port}/", max_fps=5, cooldown_s=3600
    )
    reader = CameraReader(cam, url=str(cam.url), clock=clock,
                          handle=lambda frame, ts: faces.handle(cam, frame, ts) and None)  # fmt: skip
    thread = threading.Thread(target=reader.run_blocking, args=(halt,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: faces.stats.strangers >= 1, 20, "the tenant and the stranger seen")
    finally:
        halt.set()
        stop.set()
        thread.join(10)
        server.join(10)
        outbox.close()
    assert faces.stats.recognised >= 1 and faces.stats.strangers >= 1 and faces.stats.events == 2
    assert sim.shown == 2


class _Recorder:
    def __init__(self) -> None:
        self.started: list[tuple[str, list[str]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.started.append((name, args))


def test_the_demo_puts_a_camera_at_each_entrance_of_its_first_estate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_estate("E01", n_units=20, days=30, start=datetime(2026, 3, 1, tzinfo=UTC), seed=7)
    clock = AcceleratedClock(origin_wall=1000.0, origin_sim=spec.start, speed=43200.0)
    monkeypatch.setenv("ANJU_HOME", str(tmp_path / "bare"))
    procs = _Recorder()
    assert demo_camera(procs, spec, seed=7, clock=clock) == {}  # no face pack: no camera
    home = tmp_path / "home"
    shutil.copytree(pack_dir(), home / "faces" / "packs" / "default")
    monkeypatch.setenv("ANJU_HOME", str(home))
    site = demo_camera(procs, spec, seed=7, clock=clock)
    assert [c["device_id"] for c in site["cameras"]] == ["E01-C1", "E01-C2"]
    assert [name for name, _ in procs.started] == ["camera-E01-1", "camera-E01-2"]
    args = procs.started[0][1]
    assert args[:2] == ["sim", "camera"] and "--no-visitors" in args and "--enrol-estate" in args
    for camera in site["cameras"]:
        CameraConfig.model_validate(camera)


def test_cameras_of_two_buildings_never_give_two_tenants_one_face() -> None:
    spec = make_estate("E01", n_units=20, days=10, start=datetime(2026, 3, 1, tzinfo=UTC), seed=7)
    events = EstateModel(spec).gate_events()
    tenants = [p for u in spec.units for p in u.persons]
    clock = AcceleratedClock(origin_wall=0.0, origin_sim=spec.start, speed=1.0)
    faces: dict[str, str] = {}
    for building in ("1", "2"):
        mine = [e for e in events if e.building == building]
        sim = CameraSim(mine, clock, CorridorScene(320, 180, seed=1), seed=1, tenant_ids=tenants)
        assert sim.enrolled, f"building {building} shows no tenant"
        for tenant, (identity, _) in sim.enrolled.items():
            assert tenant.startswith(f"T-E01-{building}-")
            faces[tenant] = identity
    assert len(set(faces.values())) == len(faces)  # one face, one tenant
