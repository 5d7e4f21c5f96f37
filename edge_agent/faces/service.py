"""Building the face work of one gateway from its settings: the engine, an estate's stores, the cameras."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from anju.edge_agent.cameras import CameraReader, FrameHandler
from anju.edge_agent.errors import SiteConfigError
from anju.edge_agent.faces.engine import FaceEngine, load_engine
from anju.edge_agent.faces.evidence import EvidenceStore
from anju.edge_agent.faces.pack import anju_home, default_pack_dir
from anju.edge_agent.faces.recognise import CameraFaces, FaceRecogniser
from anju.edge_agent.faces.settings import CameraConfig, FacesSettings
from anju.edge_agent.faces.store import EstateVault, Gallery
from anju.edge_agent.faces.strangers import StrangerTracks
from anju.edge_agent.outbox import Outbox
from anju_wire import Clock
from anju_wire.payloads import DeviceAvailability


def home_of(settings: FacesSettings) -> Path:
    """Where this gateway keeps its face stores."""
    return settings.home or anju_home()


def pack_id(settings: FacesSettings) -> str:
    """The pack's name as bound into the encrypted stores (embeddings of two packs never mix)."""
    return "default" if settings.pack == "default" else f"insightface/{settings.embedder}"


def open_engine(settings: FacesSettings) -> FaceEngine:
    """The configured pack's engine."""
    directory = settings.pack_dir or default_pack_dir(home_of(settings))
    return load_engine(
        settings.pack, directory, detector=settings.detector, embedder=settings.embedder,
        threads=settings.threads, threshold=settings.threshold,
    )  # fmt: skip


def open_gallery(settings: FacesSettings, estate_id: str) -> Gallery:
    """The estate's enrolled people for the configured pack."""
    return Gallery(EstateVault(home_of(settings), estate_id), pack_id(settings))


def camera_url(camera: CameraConfig, environ: dict[str, str] | None = None) -> str:
    """The camera's URL, from the site file or from its ``url_env`` variable."""
    if camera.url is not None:
        return camera.url
    env = os.environ if environ is None else environ
    assert camera.url_env is not None
    url = env.get(camera.url_env)
    if not url:
        raise SiteConfigError(f"cameras: environment variable {camera.url_env} is not set or empty")
    return url


@dataclass(slots=True)
class CameraSet:
    """The estate's camera readers and the face work they feed."""

    readers: list[CameraReader]
    faces: CameraFaces

    def availability(self) -> list[DeviceAvailability]:
        """Every camera's availability as last seen."""
        return [d for r in self.readers for d in r.availability()]


def build_cameras(
    *,
    cameras: list[CameraConfig],
    settings: FacesSettings,
    estate_id: str,
    secret: bytes,
    outbox: Outbox,
    clock: Clock,
) -> CameraSet | None:
    """Readers for the site's cameras over one engine, gallery and stranger tracks (None: no cameras)."""
    if not cameras:
        return None
    ids = [c.device_id for c in cameras]
    if len(ids) != len(set(ids)):
        raise SiteConfigError("cameras: two cameras share one device_id")
    engine = open_engine(settings)
    gallery = open_gallery(settings, estate_id)
    vault = gallery.vault
    threshold = settings.threshold if settings.threshold is not None else engine.threshold
    strangers = StrangerTracks(
        vault, pack_id(settings), secret=secret, radius=settings.stranger_radius or threshold,
        rotation=timedelta(days=settings.stranger_rotation_days),
    )  # fmt: skip
    evidence = None
    if settings.evidence.enabled:
        evidence = EvidenceStore(vault, retention=timedelta(days=settings.evidence.retention_days))
    faces = CameraFaces(
        recogniser=FaceRecogniser(engine, gallery, threshold=threshold), strangers=strangers, outbox=outbox,
        estate_id=estate_id, secret=secret, evidence=evidence,
    )  # fmt: skip
    readers = [
        CameraReader(c, url=camera_url(c), clock=clock, handle=_handler(faces, c), on_stop=faces.flush)
        for c in cameras
    ]
    return CameraSet(readers, faces)


def _handler(faces: CameraFaces, camera: CameraConfig) -> FrameHandler:
    def handle(frame: np.ndarray, ts: datetime) -> None:
        faces.handle(camera, frame, ts)

    return handle
