"""Real face photos from the package registries, for the camera simulator, the tests and the bench.

* PyPI ``face_recognition`` 1.3.0 sdist, ``tests/test_images``: Obama (5 photos, two of them cropped to a
  partial face) and Biden (1), one face each.
* npm ``@vladmandic/face-api`` 1.7.15, ``demo/sample1..6.jpg``: group photos, 22 faces of (as far as
  anyone can tell) 22 different women.
* PyPI ``scikit-image`` 0.25.2 (manylinux x86-64 wheel), ``skimage/data/astronaut.png``: Eileen Collins.

Archives are fetched and checked like the face pack's (``edge_agent.faces.pack.fetch``).
"""

from __future__ import annotations

import functools
import io
import tarfile
import zipfile
from dataclasses import dataclass

import cv2
import numpy as np

from edge_agent.faces.pack import EMBEDDER, Artifact, fetch

FACE_RECOGNITION = Artifact(
    "pypi", "face_recognition", "1.3.0", "face_recognition-1.3.0.tar.gz",
    "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec", ("--no-binary", ":all:"),
)  # fmt: skip
SCIKIT_IMAGE = Artifact(
    "pypi", "scikit-image", "0.25.2",
    "scikit_image-0.25.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641",
    ("--only-binary", ":all:", "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
     "--implementation", "cp", "--abi", "cp311"),
)  # fmt: skip

# photo -> (faces in it, identity of a single-face photo or None for a group of different people)
_FACE_RECOGNITION = {
    "obama.jpg": "obama", "obama2.jpg": "obama", "obama3.jpg": "obama",
    "obama_partial_face.jpg": "obama", "obama_partial_face2.jpg": "obama", "biden.jpg": "biden",
}  # fmt: skip
_FACE_API = {"sample1.jpg": 3, "sample2.jpg": 3, "sample3.jpg": 3, "sample4.jpg": 4, "sample5.jpg": 5,
             "sample6.jpg": 4}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Photo:
    """One real photo: its name, its source, the faces in it, and whose face it is (single-face photos)."""

    name: str
    source: str
    faces: int
    identity: str | None
    image: np.ndarray  # BGR


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not an image")
    return image


@functools.cache
def photos() -> tuple[Photo, ...]:
    """Every photo with its ground truth (fetched once per process, then from the download cache)."""
    out: list[Photo] = []
    with tarfile.open(fileobj=io.BytesIO(fetch(FACE_RECOGNITION)), mode="r:gz") as t:
        for name, who in _FACE_RECOGNITION.items():
            f = t.extractfile(f"face_recognition-1.3.0/tests/test_images/{name}")
            assert f is not None
            out.append(Photo(name, "face_recognition 1.3.0", 1, who, _decode(f.read())))
    with tarfile.open(fileobj=io.BytesIO(fetch(EMBEDDER)), mode="r:gz") as t:
        for name, count in _FACE_API.items():
            f = t.extractfile(f"package/demo/{name}")
            assert f is not None
            out.append(Photo(name, "@vladmandic/face-api 1.7.15", count, None, _decode(f.read())))
    with zipfile.ZipFile(io.BytesIO(fetch(SCIKIT_IMAGE))) as z:
        out.append(Photo("astronaut.png", "scikit-image 0.25.2", 1, "collins",
                         _decode(z.read("skimage/data/astronaut.png"))))  # fmt: skip
    return tuple(out)


def photo(name: str) -> Photo:
    """One photo by file name."""
    for p in photos():
        if p.name == name:
            return p
    raise KeyError(name)
