"""Frame sources through OpenCV: RTSP and HTTP (MJPEG) streams, video files and image folders.

Each ``CameraReader`` reads one camera in its own thread (OpenCV blocks), keeps at most ``max_fps``
frames a second, and passes on only frames with motion (``MotionGate``), so an empty corridor costs a
small grey diff per frame. A stream that does not open or stops delivering is retried with jittered,
capped exponential backoff; its availability is logged once each way and reported in the agent's status
(``camera:<device_id>``: never the URL, which may hold the camera's password).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from anju.edge_agent.errors import EdgeAgentError
from anju.edge_agent.faces.settings import CameraConfig
from anju_wire import Clock
from anju_wire.payloads import DeviceAvailability

log = logging.getLogger(__name__)
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_ENV_LOCK = threading.Lock()  # OpenCV's FFmpeg options come from one process-wide variable


class CameraError(EdgeAgentError):
    """A camera, file or folder cannot be opened or read."""


class MotionGate:
    """Whether a frame differs from the slowly updated background in more than ``fraction`` of its pixels."""

    def __init__(
        self, fraction: float = 0.005, *, width: int = 160, level: int = 25, rate: float = 0.05
    ) -> None:
        self.fraction, self.width, self.level, self.rate = fraction, width, level, rate
        self._background: np.ndarray | None = None

    def moved(self, frame_bgr: np.ndarray) -> bool:
        """Compare with the background and fold the frame into it; the first frame counts as motion."""
        h, w = frame_bgr.shape[:2]
        small = cv2.resize(frame_bgr, (self.width, max(1, h * self.width // w)), interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0).astype(np.float32)
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey
            return True
        changed = float(np.mean(np.abs(grey - self._background) > self.level))
        cv2.accumulateWeighted(grey, self._background, self.rate)
        return changed > self.fraction


class FrameSource:
    """One camera, video file or image folder: ``grab`` the next frame (False at the end of a file or
    folder), ``retrieve`` it as BGR."""

    def __init__(self, url: str, *, listen: bool = False, open_timeout_s: float = 10.0) -> None:
        self.url, self.listen, self.open_timeout_s = url, listen, open_timeout_s
        self.live = "://" in url
        self.folder: list[Path] | None = None
        self._index = 0
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        """Open the stream or file (an image folder needs nothing); CameraError when it does not open."""
        path = Path(self.url)
        if not self.live and path.is_dir():  # listed at each opening: a looped folder sees new images
            self.folder = sorted(p for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            if not self.folder:
                raise CameraError(f"no images in {self.url}")
            self._index = 0
            return
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.open_timeout_s * 1000)]  # fmt: skip
        options = "rtsp_transport;tcp"
        if self.listen:  # listen_timeout in seconds: its default (-1) is refused by the TCP layer beneath
            options += f"|rtsp_flags;listen|listen_timeout;{max(1, round(self.open_timeout_s))}"
        with _ENV_LOCK:
            previous = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
            if self.url.startswith("rtsp"):
                os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = options
            try:
                cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
            finally:
                if previous is None:
                    os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
                else:
                    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = previous
        if not cap.isOpened():
            cap.release()
            raise CameraError("does not open")
        self._cap = cap

    def grab(self) -> bool:
        """Take the next frame without converting it (live streams must be drained); False at the end."""
        if self.folder is not None:
            return self._index < len(self.folder)
        if self._cap is None:
            raise CameraError("not open")
        return bool(self._cap.grab())

    def retrieve(self) -> np.ndarray | None:
        """The grabbed frame as BGR (None when it does not decode)."""
        if self.folder is not None:
            image = cv2.imread(str(self.folder[self._index]), cv2.IMREAD_COLOR)
            self._index += 1
            return image
        if self._cap is None:
            raise CameraError("not open")
        ok, frame = self._cap.retrieve()
        return frame if ok else None

    def close(self) -> None:
        """Release the capture."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None


@dataclass(slots=True)
class ReaderStats:
    """Counters of one camera reader."""

    frames: int = 0  # frames taken at the capped rate
    moving: int = 0  # of which passed the motion gate
    opens: int = 0
    failures: int = 0
    frame_errors: int = 0  # frames whose face work failed (logged; the camera and the agent go on)


FrameHandler = Callable[[np.ndarray, datetime], None]


class CameraReader:
    """Reads one camera at a capped rate, reconnecting with backoff, and hands moving frames to ``handle``."""

    def __init__(
        self,
        config: CameraConfig,
        *,
        url: str,
        clock: Clock,
        handle: FrameHandler,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.config, self._url, self._clock, self._handle = config, url, clock, handle
        self._on_stop = on_stop
        self.stats = ReaderStats()
        self.available: bool | None = None
        self.since: datetime | None = None
        self.ended = False  # a file or folder read to its end without ``loop``
        self._gate = MotionGate(config.motion_fraction)

    @property
    def device(self) -> str:
        """The camera as named in status and logs."""
        return f"camera:{self.config.device_id}"

    def availability(self) -> list[DeviceAvailability]:
        """The camera's availability as last seen (left out before the first attempt)."""
        if self.available is None:
            return []
        return [DeviceAvailability(device=self.device, available=self.available, since=self.since)]

    async def run(self, stop: asyncio.Event) -> None:
        """Read until ``stop`` is set (or a file without ``loop`` ends); the thread stops with it."""
        halt = threading.Event()
        worker = asyncio.create_task(asyncio.to_thread(self.run_blocking, halt), name=self.device)
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.set()
            stopper.cancel()
            await worker

    def _note(self, available: bool, problem: str | None = None) -> None:
        if self.available is available:
            return
        if available:
            log.info("%s is available%s", self.device, " again" if self.available is False else "")
        else:
            log.warning("%s is unavailable: %s", self.device, problem)
        self.available = available
        self.since = self._clock.now()

    def run_blocking(self, halt: threading.Event) -> None:
        """The reading loop (in a thread): open, read at the capped rate, back off after failures."""
        try:
            self._loop(halt)
        finally:
            if self._on_stop is not None:
                self._on_stop()

    def _loop(self, halt: threading.Event) -> None:
        source = FrameSource(self._url, listen=self.config.listen, open_timeout_s=self.config.open_timeout_s)
        delay = 0.5
        while not halt.is_set():
            try:
                self.stats.opens += 1
                source.open()
                self._note(True)
                delay = 0.5
                finished = self._read(source, halt)
            except CameraError as err:
                self.stats.failures += 1
                self._note(False, str(err))
                finished = False
            finally:
                source.close()
            if finished:
                if not self.config.loop:
                    self.ended = True
                    return
                continue
            if halt.wait(delay * random.uniform(0.8, 1.2)):
                return
            delay = min(delay * 2, self.config.backoff_max_s)

    def _read(self, source: FrameSource, halt: threading.Event) -> bool:
        """Read frames until the stream fails (CameraError), a file ends (True) or ``halt`` (False)."""
        period = 1.0 / self.config.max_fps
        due = time.monotonic()
        while not halt.is_set():
            if not source.grab():
                if source.live:
                    raise CameraError("stream stopped delivering frames")
                return True
            now = time.monotonic()
            if source.live and now < due:
                continue  # drained, not decoded: a live stream runs at its own rate
            if not source.live and now < due and halt.wait(due - now):
                return False
            due = max(due + period, time.monotonic() - period)
            frame = source.retrieve()
            if frame is None:
                continue
            self.stats.frames += 1
            if self.config.motion_gate and not self._gate.moved(frame):
                continue
            self.stats.moving += 1
            try:
                self._handle(frame, self._clock.now())
            except (cv2.error, EdgeAgentError, ValueError, RuntimeError) as err:
                # one bad frame (or a model error: onnxruntime raises RuntimeError subclasses) must not
                # stop this camera, nor, through the agent's task group, the meters and gates
                self.stats.frame_errors += 1
                log.error("%s: a frame was not processed: %s", self.device, err)
        return False
