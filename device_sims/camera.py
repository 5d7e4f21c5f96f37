"""``anju sim camera``: an MJPEG corridor camera at a building entrance, composed from real face photos.

Who walks past comes from the household behaviour model (``anju.device_sims.household``) on the shared
accelerated clock: each face passage of the building's gate also passes the camera. Tenants wear the
faces of one pool of real photos (and are enrolled with ``--enrol-estate``), the subtenants of a sublet
unit and the visitors wear faces of the other pool, so they stay strangers. There are 25 people in the
photos (``anju.device_sims.face_photos``): tenants beyond the tenant pool are not shown (they use a card).
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

from anju.device_sims.face_photos import photos
from anju.device_sims.household import GateEvent
from anju_wire import Clock

log = logging.getLogger(__name__)
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
    """One person standing in a slot of the frame from ``start`` (wall seconds), drifting a little."""

    portrait: np.ndarray
    start: float
    slot: int = 0
    leftwards: bool = False


class CorridorScene:
    """Renders the corridor at a wall time: a fixed background and whoever is passing, one per slot.

    A person stays ``stay_s`` wall seconds; at a high simulation speed a short stay lets many passages
    through a 5 fps camera (each still spans a few frames).
    """

    def __init__(self, width: int, height: int, *, seed: int, stay_s: float = 2.5, slots: int = 3) -> None:
        self.width, self.height, self.stay_s, self.slots = width, height, stay_s, slots
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

    def free_slot(self) -> int | None:
        """A slot nobody stands in, if any."""
        taken = {w.slot for w in self.walkers}
        return next((i for i in range(self.slots) if i not in taken), None)

    def render(self, now: float) -> np.ndarray:
        """The frame at wall time ``now`` (people whose stay is over are dropped)."""
        frame = self.background.copy()
        self.walkers = [w for w in self.walkers if now - w.start < self.stay_s]
        slot_w = self.width // self.slots
        side = int(self.height * 0.55)
        for w in self.walkers:
            h, wd = w.portrait.shape[:2]
            scaled = cv2.resize(w.portrait, (max(1, wd * side // h), side), interpolation=cv2.INTER_AREA)
            width = min(scaled.shape[1], int(slot_w * 0.8))
            cut = (scaled.shape[1] - width) // 2
            scaled = scaled[:, cut : cut + width]
            drift = ((now - w.start) / self.stay_s - 0.5) * (slot_w - width) * (-1 if w.leftwards else 1)
            x = w.slot * slot_w + (slot_w - width) // 2 + int(drift)
            x = min(max(0, x), self.width - width)
            y = int(self.height * 0.78) - side
            frame[y : y + side, x : x + width] = scaled
        return frame


class CameraSim:
    """The household model's face passages of one building, shown at the right wall time.

    ``visitors=False`` leaves out the visitors' one-off passages: with 25 people in the photos, visitors
    would have to reuse faces and would look like recurring strangers, which they are not.
    """

    def __init__(
        self,
        events: list[GateEvent],
        clock: Clock,
        scene: CorridorScene,
        *,
        seed: int,
        visitors: bool = True,
        tenant_ids: list[str] | None = None,
    ) -> None:
        tenants, strangers = face_pools()
        # faces go to the estate's tenants in a hashed order (so every building gets some, and one camera
        # per building gives every tenant the same face); those of this camera's events are shown
        shown = {e.employee_no for e in events if e.employee_no}
        ordered = sorted(tenant_ids or shown, key=lambda t: hashlib.sha256(t.encode()).hexdigest())
        self._tenant_faces = {t: f for t, f in zip(ordered, tenants, strict=False) if t in shown}
        half = len(strangers) // 2
        self._subtenant_pool, self._visitor_pool = strangers[:half], strangers[half:]
        self._queue = deque(e for e in events if e.verify_mode == "face" and (visitors or not _is_visitor(e)))
        self._backlog: deque[GateEvent] = deque(maxlen=3 * scene.slots)
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
                return None  # a tenant without a face in the photos: comes in by card
            _, portraits = face
            return (
                portraits[int(self._rng.integers(1, len(portraits)))] if len(portraits) > 1 else portraits[0]
            )
        track = e.stranger_track or ""
        pool = self._visitor_pool if _is_visitor(e) else self._subtenant_pool
        return pool[int(hashlib.sha256(track.encode()).hexdigest(), 16) % len(pool)][1][0]

    def step(self, wall: float) -> np.ndarray:
        """Start the passages that are due by now (one person per free slot; a few wait) and render."""
        now = self._clock.now()
        while self._queue and self._queue[0].ts <= now:
            self._backlog.append(self._queue.popleft())  # the oldest waiting passages drop off
        self.scene.render(wall)  # drops the people whose stay is over
        while self._backlog and (slot := self.scene.free_slot()) is not None:
            portrait = self._portrait(self._backlog.popleft())
            if portrait is not None:
                self.scene.walkers.append(Walker(portrait, wall, slot, bool(self._rng.integers(0, 2))))
                self.shown += 1
        return self.scene.render(wall)


def _is_visitor(e: GateEvent) -> bool:
    """The household model's visitors have tracks ``<gate>-v<n>``, subtenants ``<gate>-t<n>``."""
    return e.stranger_track is not None and e.stranger_track.rsplit("-", 1)[-1].startswith("v")


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
