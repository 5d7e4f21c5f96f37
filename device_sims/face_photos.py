"""Real face photos from the package registries, for the camera simulator, the tests and the bench.

* PyPI ``face_recognition`` 1.3.0 sdist, ``tests/test_images``: Obama (5 photos, two of them cropped to a
  partial face) and Biden (1), one face each.
* npm ``@vladmandic/face-api`` 1.7.15, ``demo/sample1..6.jpg``: group photos, 22 faces of (as far as
  anyone can tell) 22 different women.
* PyPI ``scikit-image`` 0.25.2 (manylinux x86-64 wheel), ``skimage/data/astronaut.png``: Eileen Collins.

Archives are fetched and checked like the face pack's (``anju.edge_agent.faces.pack.fetch``).
"""

from __future__ import annotations

import functools
import io
import tarfile
import zipfile
from dataclasses import dataclass

import cv2
import numpy as np

from anju.edge_agent.faces.pack import CP311_WHEEL, EMBEDDER, Artifact, fetch

FACE_RECOGNITION = Artifact(
    "pypi", "face_recognition", "1.3.0", "face_recognition-1.3.0.tar.gz",
    "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec", ("--no-binary", ":all:"),
)  # fmt: skip
SCIKIT_IMAGE = Artifact(
    "pypi", "scikit-image", "0.25.2",
    "scikit_image-0.25.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641",
    CP311_WHEEL,
)  # fmt: skip

# photo -> (faces in it, identity of a single-face photo or None for a group of different people)
_FACE_RECOGNITION = {
    "obama.jpg": "obama", "obama2.jpg": "obama", "obama3.jpg": "obama",
    "obama_partial_face.jpg": "obama", "obama_partial_face2.jpg": "obama", "biden.jpg": "biden",
}  # fmt: skip
# where the faces are (x0, y0, x1, y1; found by the default pack's detector and checked by eye), left to right
FACE_BOXES = {
    "obama.jpg": [(351, 132, 634, 415)],
    "obama2.jpg": [(142, 274, 484, 616)],
    "obama3.jpg": [(638, 294, 948, 604)],
    "obama_partial_face.jpg": [(0, 127, 222, 419)],
    "obama_partial_face2.jpg": [(347, 126, 643, 422)],
    "biden.jpg": [(433, 239, 747, 554)],
    "sample1.jpg": [(384, 390, 581, 587), (827, 463, 1020, 656), (1472, 254, 1637, 419)],
    "sample2.jpg": [(320, 186, 493, 359), (893, 232, 1100, 439), (1422, 181, 1629, 388)],
    "sample3.jpg": [(559, 349, 798, 589), (1039, 254, 1292, 507), (1481, 341, 1713, 573)],
    "sample4.jpg": [(250, 242, 438, 430), (645, 109, 830, 294), (947, 219, 1134, 406),
                    (1254, 194, 1424, 363)],
    "sample5.jpg": [(342, 910, 591, 1158), (617, 456, 799, 639), (778, 138, 956, 316), (1091, 224, 1269, 402),
                    (1368, 419, 1595, 646)],
    "sample6.jpg": [(245, 520, 483, 758), (619, 352, 897, 630), (1157, 338, 1403, 584),
                    (1443, 291, 1701, 548)],
    "astronaut.png": [(174, 70, 279, 175)],
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

    def portraits(self) -> list[tuple[str, np.ndarray]]:
        """Each person's head and shoulders cut from the photo, with who they are (``photo#i`` in groups)."""
        out = []
        h, w = self.image.shape[:2]
        for i, (x0, y0, x1, y1) in enumerate(FACE_BOXES[self.name]):
            bw, bh = x1 - x0, y1 - y0
            crop = self.image[max(0, int(y0 - 0.5 * bh)) : min(h, int(y1 + 0.9 * bh)),
                              max(0, int(x0 - 0.5 * bw)) : min(w, int(x1 + 0.5 * bw))]  # fmt: skip
            out.append((self.identity or f"{self.name}#{i}", crop))
        return out


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
