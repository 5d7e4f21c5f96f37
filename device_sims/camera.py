"""``anju sim camera``: an MJPEG corridor camera at a building entrance, composed from real face photos.

Who walks past comes from the household behaviour model (``device_sims.household``) on the shared
accelerated clock: each face passage of the building's gate also passes the camera. Tenants wear the
faces of one pool of real photos (and are enrolled with ``--enrol-estate``), the subtenants of a sublet
unit and the visitors wear faces of the other pool, so they stay strangers. There are 25 people in the
photos (``device_sims.face_photos``): tenants beyond the tenant pool are not shown (they use a card).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from anju_wire import Clock
from device_sims.face_photos import photos
from device_sims.household import GateEvent

log = logging.getLogger(__name__)
WALK_S = 2.5  # wall seconds a person takes to cross the frame
BOUNDARY = "anjuframe"


def face_pools() -> tuple[list[tuple[str, list[np.ndarray]]], list[tuple[str, list[np.ndarray]]]]:
    """(tenant pool, stranger pool): identities with their portraits, split half and half, deterministic."""
    by_identity: dict[str, list[np.ndarray]] = {}
    for p in photos():
        for who, portrait in p.portraits():
            by_identity.setdefault(who, []).append(portrait)
    names = sorted(by_identity, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    names.remove("obama")
    tenants = ["obama", *names[: len(names) // 2]]  # obama has 5 photos: enrol one, show the others
    strangers = names[len(names) // 2 :]
    return [(n, by_identity[n]) for n in tenants], [(n, by_identity[n]) for n in strangers]


@dataclass(slots=True)
class Walker:
    """One person crossing the frame from ``start`` (wall seconds)."""

    portrait: np.ndarray
    start: float
    leftwards: bool


class CorridorScene:
    """Renders the corridor at a wall time: a fixed background and whoever is walking through it."""

    def __init__(self, width: int, height: int, *, seed: int) -> None:
        self.width, self.height = width, height
        rng = np.random.default_rng(seed)
        bg = np.zeros((height, width, 3), np.uint8)
        bg[:] = (150, 160, 165)
        cv2.rectangle(bg, (0, int(height * 0.78)), (width, height), (90, 95, 100), -1)
        for x in range(width // 8, width, width // 4):
            cv2.rectangle(
                bg, (x, int(height * 0.2)), (x + width // 10, int(height * 0.78)), (70, 90, 120), -1
            )
        self.background = np.clip(bg + rng.normal(0, 3, bg.shape), 0, 255).astype(np.uint8)
        self.walkers: list[Walker] = []

    def render(self, now: float) -> np.ndarray:
        """The frame at wall time ``now`` (walkers who have crossed are dropped)."""
        frame = self.background.copy()
        self.walkers = [w for w in self.walkers if now - w.start < WALK_S]
        for w in self.walkers:
            side = int(self.height * 0.55)
            h, wd = w.portrait.shape[:2]
            scaled = cv2.resize(w.portrait, (max(1, wd * side // h), side), interpolation=cv2.INTER_AREA)
            progress = (now - w.start) / WALK_S
            span = self.width + scaled.shape[1]
            x = int((1 - progress if w.leftwards else progress) * span) - scaled.shape[1]
            y = int(self.height * 0.78) - side
            x0, x1 = max(0, x), min(self.width, x + scaled.shape[1])
            if x1 > x0:
                frame[y : y + side, x0:x1] = scaled[:, x0 - x : x1 - x]
        return frame


class CameraSim:
    """The household model's face passages of one building, turned into walkers at the right wall time."""

    def __init__(self, events: list[GateEvent], clock: Clock, scene: CorridorScene, *, seed: int) -> None:
        tenants, strangers = face_pools()
        self._tenant_faces = dict(
            zip(sorted({e.employee_no for e in events if e.employee_no}), tenants, strict=False)
        )
        self._stranger_pool = strangers
        self._queue = deque(e for e in events if e.verify_mode == "face")
        self._clock, self.scene, self._rng = clock, scene, np.random.default_rng(seed)
        self.shown = 0

    @property
    def enrolled(self) -> dict[str, tuple[str, list[np.ndarray]]]:
        """Tenant id -> (identity, portraits): the tenants who have a face in this simulation."""
        return self._tenant_faces

    def _portrait(self, e: GateEvent) -> np.ndarray | None:
        if e.employee_no is not None:
            face = self._tenant_faces.get(e.employee_no)
            if face is None:
                return None
            _, portraits = face
            return (
                portraits[int(self._rng.integers(1, len(portraits)))] if len(portraits) > 1 else portraits[0]
            )
        track = e.stranger_track or ""
        index = int(hashlib.sha256(track.encode()).hexdigest(), 16) % len(self._stranger_pool)
        return self._stranger_pool[index][1][0]

    def step(self, wall: float) -> np.ndarray:
        """Start the passages that are due by now (at most two people in frame) and render."""
        now = self._clock.now()
        while self._queue and self._queue[0].ts <= now:
            e = self._queue.popleft()
            portrait = self._portrait(e)
            if portrait is not None and len(self.scene.walkers) < 2:
                self.scene.walkers.append(Walker(portrait, wall, bool(self._rng.integers(0, 2))))
                self.shown += 1
        return self.scene.render(wall)


class _Stream:
    """The latest JPEG frame, shared by every connected client."""

    def __init__(self) -> None:
        self.jpeg = b""
        self.seq = 0
        self.cond = threading.Condition()

    def changed(self, seen: int) -> bool:
        """Whether a frame newer than ``seen`` is there."""
        return self.seq != seen

    def publish(self, jpeg: bytes) -> None:
        with self.cond:
            self.jpeg, self.seq = jpeg, self.seq + 1
            self.cond.notify_all()


def _handler(stream: _Stream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.end_headers()
            seen = 0  # frames count from 1: a client never gets the empty one before the first
            try:
                while True:
                    with stream.cond:
                        stream.cond.wait_for(functools.partial(stream.changed, seen), timeout=5)
                        jpeg, seen = stream.jpeg, stream.seq
                    if not jpeg:
                        continue
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    self.wfile.write(head.encode() + jpeg + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

    return Handler


def serve(sim: CameraSim, host: str, port: int, fps: float, stop: threading.Event) -> None:
    """Serve the simulation as MJPEG at ``http://host:port/`` until ``stop`` is set."""
    stream = _Stream()
    server = ThreadingHTTPServer((host, port), _handler(stream))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        due = time.monotonic()
        while not stop.is_set():
            ok, jpeg = cv2.imencode(".jpg", sim.step(time.monotonic()), [cv2.IMWRITE_JPEG_QUALITY, 80])
            if ok:
                stream.publish(jpeg.tobytes())
            due += 1 / fps
            stop.wait(max(0.0, due - time.monotonic()))
    finally:
        server.shutdown()
        server.server_close()
