"""From a camera frame to access records: detect, align, embed, match; a pseudonym or a stranger track.

A face matched to an enrolled person becomes an access event exactly like a face-gate event: the keyed
pseudonym of the person id (``anju.edge_agent.gates.pseudonym``) and the unit they are registered to. Any
other face becomes a sighting of a stranger track. Only those records reach the outbox; the frame, the
crop and the embedding stay in this process (and, if the site enables evidence, in the encrypted
evidence store on the gateway).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from anju.edge_agent.errors import OutboxError
from anju.edge_agent.faces.engine import Face, FaceEngine
from anju.edge_agent.faces.evidence import EvidenceStore
from anju.edge_agent.faces.settings import CameraConfig
from anju.edge_agent.faces.store import Gallery, Match
from anju.edge_agent.faces.strangers import StrangerTracks
from anju.edge_agent.gates import pseudonym
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.records import AccessRecord, RecordKind
from anju_wire.payloads import AccessMethod

log = logging.getLogger(__name__)
SAVE_EVERY_S = 10.0  # stranger tracks are written at most this often (and when the cameras stop)


@dataclass(frozen=True, slots=True)
class SeenFace:
    """One face in one image: where, its embedding, and who it matched (if anyone)."""

    face: Face
    embedding: np.ndarray
    match: Match


class FaceRecogniser:
    """Detects and matches faces against one estate's gallery."""

    def __init__(self, engine: FaceEngine, gallery: Gallery, *, threshold: float | None = None) -> None:
        self.engine, self.gallery = engine, gallery
        self.threshold = threshold if threshold is not None else engine.threshold

    def faces(self, image_bgr: np.ndarray, *, min_face_px: float = 0) -> list[tuple[Face, np.ndarray]]:
        """Every face at least ``min_face_px`` wide, with its embedding."""
        found = [f for f in self.engine.detect(image_bgr) if f.width >= min_face_px]
        if not found:
            return []
        embeddings = self.engine.embed([self.engine.align(image_bgr, f) for f in found])
        return list(zip(found, embeddings, strict=True))

    def identify(self, image_bgr: np.ndarray, *, min_face_px: float = 0) -> list[SeenFace]:
        """Every face with the nearest enrolled person within the threshold, or none."""
        return [SeenFace(f, e, self.gallery.match(e, self.threshold))
                for f, e in self.faces(image_bgr, min_face_px=min_face_px)]  # fmt: skip


@dataclass(slots=True)
class CameraFaceStats:
    """Counters of the cameras' face work."""

    frames: int = 0
    faces: int = 0
    recognised: int = 0
    strangers: int = 0
    events: int = 0
    suppressed: int = 0  # sightings inside the cooldown of the same person at the same camera
    refused_full: int = 0


class CameraFaces:
    """Turns moving frames from the estate's cameras into access records in the outbox (thread-safe)."""

    def __init__(
        self,
        *,
        recogniser: FaceRecogniser,
        strangers: StrangerTracks,
        outbox: Outbox,
        estate_id: str,
        secret: bytes,
        evidence: EvidenceStore | None = None,
    ) -> None:
        if not secret:
            raise ValueError("empty pseudonym secret")
        self.recogniser, self.strangers, self._outbox = recogniser, strangers, outbox
        self._estate, self._secret, self._evidence = estate_id, secret, evidence
        self._lock = threading.RLock()  # flush() may run inside handle()
        self._last: dict[tuple[str, str], datetime] = {}
        self._serial: dict[str, int] = {}
        self.stats = CameraFaceStats()
        self._saved = time.monotonic()

    def handle(self, camera: CameraConfig, frame: np.ndarray, ts: datetime) -> list[AccessRecord]:
        """Recognise the faces of one frame and store an access record per new sighting."""
        found = self.recogniser.faces(frame, min_face_px=camera.min_face_px)  # in parallel across cameras
        out: list[AccessRecord] = []
        with self._lock:
            gallery = self.recogniser.gallery
            gallery.refresh()  # an enrolment or a removal takes effect without a restart
            seen = [SeenFace(f, e, gallery.match(e, self.recogniser.threshold)) for f, e in found]
            self.stats.frames += 1
            self.stats.faces += len(seen)
            for s in seen:
                record = self._record(camera, s, ts)
                if record is None:
                    continue
                try:
                    self._outbox.put(RecordKind.ACCESS, record.to_json())
                except OutboxError as err:
                    self.stats.refused_full += 1
                    log.error("camera event %s not stored: %s", record.event_id, err)
                    continue
                self.stats.events += 1
                out.append(record)
                if self._evidence is not None:
                    self._evidence.keep(record.event_id, frame, s.face, ts, person_id=s.match.person_id)
            if time.monotonic() - self._saved >= SAVE_EVERY_S:
                self.flush()
        return out

    def flush(self) -> None:
        """Write the stranger tracks (encrypted) if they changed; also when the cameras stop."""
        with self._lock:
            self.strangers.save()
            self._saved = time.monotonic()

    def _record(self, camera: CameraConfig, seen: SeenFace, ts: datetime) -> AccessRecord | None:
        if seen.match.person_id is not None:
            self.stats.recognised += 1
            who, key = {"person": pseudonym(secret=self._secret, estate_id=self._estate,
                                            employee_no=seen.match.person_id),
                        "unit_id": seen.match.unit_id}, seen.match.person_id  # fmt: skip
        else:
            self.stats.strangers += 1
            track = self.strangers.observe(seen.embedding, ts)
            who, key = {"stranger_track": track}, track
        last = self._last.get((camera.device_id, key))
        if last is not None and timedelta(0) <= ts - last < timedelta(seconds=camera.cooldown_s):
            self.stats.suppressed += 1
            return None
        self._last[(camera.device_id, key)] = ts
        n = self._serial.get(camera.device_id, 0) + 1
        self._serial[camera.device_id] = n
        return AccessRecord(
            event_id=f"{camera.device_id}:{int(ts.timestamp() * 1000)}:{n}",
            ts=ts, device_id=camera.device_id, building=camera.building, floor=camera.floor,
            method=AccessMethod.FACE, **who,
        )  # fmt: skip
