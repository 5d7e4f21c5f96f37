"""Frame sources: a real RTSP stream pushed by ffmpeg, an MJPEG stream ffmpeg serves, files, folders;
rate cap, motion gating, reconnect with backoff and availability."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from anju.device_sims.face_photos import photo
from anju.edge_agent.cameras import CameraReader, MotionGate
from anju.edge_agent.errors import SiteConfigError
from anju.edge_agent.faces.recognise import CameraFaces, FaceRecogniser
from anju.edge_agent.faces.service import build_cameras
from anju.edge_agent.faces.settings import CameraConfig, FacesSettings
from anju.edge_agent.faces.store import EstateVault, Gallery
from anju.edge_agent.faces.strangers import StrangerTracks
from anju.edge_agent.gates import pseudonym
from anju.edge_agent.metrics import AgentMetrics
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.records import RecordKind
from anju_wire import WallClock
from tests.edge_agent.faces_support import corridor, corridor_frames, engine, pack_dir
from tests.edge_agent.helpers import wait_until
from tests.services import free_port

SECRET = b"camera-test-secret"
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(
    FFMPEG is None, reason="ffmpeg is not installed (scripts/bootstrap.sh test)"
)


@pytest.fixture
def faces(tmp_path: Path) -> Iterator[tuple[CameraFaces, Outbox]]:
    vault = EstateVault(tmp_path / "home", "E01")
    gallery = Gallery(vault, "default")
    e = engine()
    enrolment = photo("obama.jpg").image
    gallery.enrol("T-1001", "U-0301", e.embed([e.align(enrolment, e.detect(enrolment)[0])]))
    outbox = Outbox(tmp_path / "o.sqlite", capacity=1000)
    strangers = StrangerTracks(vault, "default", secret=SECRET, radius=e.threshold)
    yield CameraFaces(recogniser=FaceRecogniser(e, gallery), strangers=strangers, outbox=outbox,
                      estate_id="E01", secret=SECRET), outbox  # fmt: skip
    outbox.close()


def _reader(config: CameraConfig, faces: CameraFaces) -> CameraReader:
    assert config.url is not None
    return CameraReader(config, url=config.url, clock=WallClock(),
                        handle=lambda frame, ts: faces.handle(config, frame, ts) and None)  # fmt: skip


def _events(outbox: Outbox) -> list[dict[str, object]]:
    return [json.loads(r.payload) for r in outbox.next_batch(RecordKind.ACCESS, 100, not_sent_since=1e18)]


def _start(reader: CameraReader) -> tuple[threading.Event, threading.Thread]:
    halt = threading.Event()
    thread = threading.Thread(target=reader.run_blocking, args=(halt,), daemon=True)
    thread.start()
    return halt, thread


def test_motion_gate_passes_a_person_and_not_an_empty_corridor() -> None:
    gate = MotionGate(0.005)
    empty = corridor(None)
    assert gate.moved(empty)  # the first frame sets the background
    noisy = [np.clip(empty.astype(int) + np.random.default_rng(i).integers(-6, 7, empty.shape), 0, 255)
             for i in range(5)]  # fmt: skip
    assert not any(gate.moved(f.astype(np.uint8)) for f in noisy)
    assert gate.moved(corridor(photo("biden.jpg").portraits()[0][1]))


def test_an_image_folder_is_read_at_the_capped_rate(
    tmp_path: Path, faces: tuple[CameraFaces, Outbox]
) -> None:
    cam = CameraConfig(
        device_id="C1", building="1", url=str(corridor_frames(tmp_path / "frames")), max_fps=10
    )
    reader = _reader(cam, faces[0])
    started = time.monotonic()
    reader.run_blocking(threading.Event())
    assert time.monotonic() - started >= 1.3  # 15 frames at 10 a second
    assert reader.ended and reader.stats.frames == 15
    assert reader.stats.moving < 15  # still empty frames after the first are gated out
    events = _events(faces[1])
    assert [e.get("unit_id") for e in events] == ["U-0301", None]
    assert events[0]["person"] == pseudonym(secret=SECRET, estate_id="E01", employee_no="T-1001")
    assert str(events[1]["stranger_track"]).startswith("s-")


@needs_ffmpeg
def test_a_real_rtsp_stream_pushed_by_ffmpeg_is_read_and_recognised(
    tmp_path: Path, faces: tuple[CameraFaces, Outbox]
) -> None:
    frames = corridor_frames(tmp_path / "frames")
    url = f"rtsp://127.0.0.1:{free_port()}/corridor"
    cam = CameraConfig(device_id="C2", building="1", url=url, listen=True, max_fps=5, open_timeout_s=15)
    reader = _reader(cam, faces[0])
    halt, thread = _start(reader)
    try:
        time.sleep(1.0)  # the agent listens; the camera (ffmpeg) pushes H.263-class MPEG-4 over RTSP/TCP
        push = subprocess.run(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-framerate", "5",  # type: ignore[list-item]
             "-i", str(frames / "f%03d.jpg"), "-c:v", "mpeg4", "-q:v", "4", "-f", "rtsp",
             "-rtsp_transport", "tcp", url],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert push.returncode == 0, push.stderr
        wait_until(lambda: reader.stats.failures >= 1, 10, "the end of the stream noticed")
        assert reader.stats.frames >= 10 and reader.available is False
        events = _events(faces[1])
        assert [e.get("unit_id") for e in events] == ["U-0301", None]
        assert reader.availability()[0].device == "camera:C2"
    finally:
        halt.set()
        thread.join(20)
    assert not thread.is_alive()


@needs_ffmpeg
def test_an_mjpeg_stream_served_over_http_is_read(tmp_path: Path, faces: tuple[CameraFaces, Outbox]) -> None:
    frames = corridor_frames(tmp_path / "frames")
    port = free_port()
    server = subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-framerate", "5", "-i",  # type: ignore[list-item]
         str(frames / "f%03d.jpg"), "-c:v", "mjpeg", "-q:v", "4", "-f", "mpjpeg", "-listen", "1",
         f"http://127.0.0.1:{port}/cam.mjpg"],
    )  # fmt: skip
    cam = CameraConfig(device_id="C3", building="1", url=f"http://127.0.0.1:{port}/cam.mjpg", max_fps=5)
    reader = _reader(cam, faces[0])
    halt, thread = _start(reader)
    try:
        server.wait(30)
        wait_until(lambda: len(_events(faces[1])) == 2, 10, "both sightings stored")
        assert reader.stats.opens >= 1 and reader.stats.frames >= 10
    finally:
        halt.set()
        thread.join(20)
        if server.poll() is None:
            server.kill()
            server.wait()


def test_an_unreachable_camera_is_unavailable_and_retried_with_backoff(
    faces: tuple[CameraFaces, Outbox],
) -> None:
    url = f"rtsp://127.0.0.1:{free_port()}/x"
    cam = CameraConfig(device_id="C4", building="1", url=url, open_timeout_s=1, backoff_max_s=1)
    reader = _reader(cam, faces[0])
    halt, thread = _start(reader)
    try:
        wait_until(lambda: reader.stats.failures >= 3, 15, "three failed opens")
    finally:
        halt.set()
        thread.join(10)
    status = reader.availability()
    assert len(status) == 1 and status[0].available is False and status[0].since is not None
    assert status[0].since <= datetime.now(UTC)
    assert "127.0.0.1" not in status[0].device  # the URL (and any password in it) stays on the gateway


def test_two_cameras_with_one_id_are_refused(tmp_path: Path) -> None:
    cam = CameraConfig(device_id="C1", building="1", url=str(tmp_path))
    with pytest.raises(SiteConfigError, match="share one device_id"), Outbox(tmp_path / "o", capacity=1) as o:
        build_cameras(cameras=[cam, cam], settings=FacesSettings(), estate_id="E01", secret=b"k", outbox=o,
                      clock=WallClock())  # fmt: skip


def test_the_stranger_tracks_are_written_when_the_camera_stops(
    tmp_path: Path, faces: tuple[CameraFaces, Outbox]
) -> None:
    cam = CameraConfig(device_id="C5", building="1", url=str(corridor_frames(tmp_path / "f")), max_fps=30)
    reader = CameraReader(cam, url=str(cam.url), clock=WallClock(), on_stop=faces[0].flush,
                          handle=lambda frame, ts: faces[0].handle(cam, frame, ts) and None)  # fmt: skip
    store = tmp_path / "home" / "faces" / "estates" / "E01" / "strangers.bin"
    reader.run_blocking(threading.Event())
    assert faces[0].stats.strangers >= 1 and store.is_file()  # within SAVE_EVERY_S: written by on_stop


def test_the_cameras_show_in_the_agents_metrics(tmp_path: Path) -> None:
    cam = CameraConfig(device_id="C6", building="1", url=str(corridor_frames(tmp_path / "f")), max_fps=30)
    settings = FacesSettings(pack_dir=pack_dir(), home=tmp_path / "home")
    with Outbox(tmp_path / "o.sqlite", capacity=100) as outbox:
        cameras = build_cameras(cameras=[cam], settings=settings, estate_id="E01", secret=b"k", outbox=outbox,
                                clock=WallClock())  # fmt: skip
        assert cameras is not None
        cameras.readers[0].run_blocking(threading.Event())
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for m in AgentMetrics(agent_id="gw", outbox=outbox, cameras=cameras).collect()
            for s in m.samples
        }
    device = (("device", "camera:C6"),)
    assert samples[("anju_edge_camera_frames_total", device)] == 15
    assert samples[("anju_edge_camera_frames_moving_total", device)] < 15
    assert samples[("anju_edge_camera_available", device)] == 1.0
    assert samples[("anju_edge_camera_sightings_total", (("who", "stranger"),))] >= 1
    assert samples[("anju_edge_camera_events_total", (("outcome", "stored"),))] == 2


def test_a_frame_that_fails_is_counted_and_the_camera_goes_on(tmp_path: Path) -> None:
    cam = CameraConfig(device_id="C7", building="1", url=str(corridor_frames(tmp_path / "f")), max_fps=30,
                       motion_gate=False)  # fmt: skip
    seen: list[int] = []

    def handle(frame: np.ndarray, ts: datetime) -> None:
        seen.append(1)
        if len(seen) % 5 == 0:
            raise ValueError("a broken frame")

    reader = CameraReader(cam, url=str(cam.url), clock=WallClock(), handle=handle)
    reader.run_blocking(threading.Event())
    assert len(seen) == 15 and reader.stats.frame_errors == 3 and reader.ended


def test_a_video_file_is_read_to_its_end_and_looped_when_asked(tmp_path: Path) -> None:
    frames = sorted(corridor_frames(tmp_path / "f").iterdir())
    video = tmp_path / "corridor.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 5, (640, 360))
    for f in frames:
        writer.write(cv2.imread(str(f)))
    writer.release()
    once = CameraConfig(device_id="C8", building="1", url=str(video), max_fps=50, motion_gate=False)
    reader = CameraReader(once, url=str(video), clock=WallClock(), handle=lambda frame, ts: None)
    reader.run_blocking(threading.Event())
    assert reader.ended and reader.stats.frames == 15 and reader.stats.opens == 1
    looped = once.model_copy(update={"loop": True})
    reader = CameraReader(looped, url=str(video), clock=WallClock(), handle=lambda frame, ts: None)
    halt, thread = _start(reader)
    wait_until(lambda: reader.stats.frames > 30, 10, "the file played twice")
    halt.set()
    thread.join(10)
    assert reader.stats.opens >= 3 and not reader.ended
