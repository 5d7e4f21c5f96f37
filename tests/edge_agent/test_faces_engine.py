"""The face engine on real photos (default pack) and an insightface-shaped pack built by the test."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from anju.device_sims.face_photos import photos
from anju.edge_agent.faces.engine import FaceEngineError, InsightFacePackEngine, load_engine
from tests.edge_agent.faces_support import engine, pack_dir


def _embeddings() -> dict[str, list[tuple[str | None, np.ndarray]]]:
    e = engine()
    out: dict[str, list[tuple[str | None, np.ndarray]]] = {}
    for p in photos():
        faces = e.detect(p.image)
        chips = [e.align(p.image, f) for f in faces]
        out[p.name] = [(p.identity, v) for v in e.embed(chips)]
    return out


def test_every_face_in_the_sample_photos_is_detected_once() -> None:
    found = {p.name: len(engine().detect(p.image)) for p in photos()}
    assert found == {p.name: p.faces for p in photos()}
    assert sum(found.values()) == 29


def test_the_threshold_separates_same_from_different_people_on_real_photos() -> None:
    faces = [(name, who, v) for name, vs in _embeddings().items() for who, v in vs]
    same, different = [], []
    for (n1, w1, v1), (n2, w2, v2) in itertools.combinations(faces, 2):
        d = float(np.linalg.norm(v1 - v2))
        if w1 is not None and w1 == w2:
            same.append(d)
        elif w1 is not None or w2 is not None or n1 == n2:
            # people with different identities, or two faces of one group photo; faces of two different
            # group photos may be one woman photographed twice (nobody has labelled them), so not counted
            different.append(d)
    threshold = engine().threshold
    assert threshold == 0.47
    assert len(same) == 10 and max(same) < threshold
    assert len(different) == 31 + 7 * 22 + 5 * 2 + 1 and min(different) > threshold


def test_chips_are_the_embedder_size_and_a_face_embeds_near_itself_when_shifted() -> None:
    e = engine()
    image = next(p.image for p in photos() if p.name == "obama.jpg")
    shifted = np.roll(image, (17, -23), axis=(0, 1))
    chips = [e.align(im, e.detect(im)[0]) for im in (image, shifted)]
    assert chips[0].shape == (150, 150, 3)
    v = e.embed(chips)
    assert v.shape == (2, 128) and float(np.linalg.norm(v[0] - v[1])) < 0.2


def test_a_missing_pack_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(FaceEngineError, match="anju agent faces pack"):
        load_engine("default", tmp_path)
    assert pack_dir().is_dir()


_KPS = np.array([[-0.55, -0.35], [0.55, -0.35], [0.0, 0.05], [-0.45, 0.5], [0.45, 0.5]])  # in strides


def _tiny_scrfd(path: Path) -> None:
    """An SCRFD-shaped detector (det_10g's input and nine outputs) that finds one face at (160, 128)."""
    x = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 640, 640])
    nodes = [helper.make_node("ReduceMean", ["input.1"], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "zero"], ["z"])]  # fmt: skip
    inits = [numpy_helper.from_array(np.array(0, np.float32), "zero")]
    outputs = []
    for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
        for stride in (8, 16, 32):
            rows = (640 // stride) ** 2 * 2
            value = np.zeros((rows, width), np.float32)
            if stride == 32:
                i = (4 * 20 + 5) * 2  # cell (x 5, y 4): centre (160, 128)
                value[i] = {"score": [0.9], "bbox": [2, 2, 2, 2], "kps": _KPS.ravel()}[kind]
            name = f"{kind}_{stride}"
            inits.append(numpy_helper.from_array(value, f"c_{name}"))
            nodes.append(helper.make_node("Add", ["z", f"c_{name}"], [name]))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [rows, width]))
    graph = helper.make_graph(nodes, "scrfd_tiny", [x], outputs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7), path)


def _tiny_arcface(path: Path) -> None:
    """An ArcFace-shaped embedder: ``[N, 3, 112, 112]`` -> ``[N, 512]``."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("GlobalAveragePool", ["input.1"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["683"])]  # fmt: skip
    graph = helper.make_graph(
        nodes, "arcface_tiny",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", 512])],
        [numpy_helper.from_array(rng.normal(size=(3, 512)).astype(np.float32), "w")],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7), path)


def test_an_insightface_pack_loads_from_a_directory_by_configuration(tmp_path: Path) -> None:
    _tiny_scrfd(tmp_path / "det_10g.onnx")
    _tiny_arcface(tmp_path / "w600k_r50.onnx")
    e = load_engine("insightface", tmp_path)
    assert isinstance(e, InsightFacePackEngine)
    image = np.random.default_rng(1).integers(0, 255, (640, 640, 3), dtype=np.uint8)
    faces = e.detect(image)
    assert len(faces) == 1 and faces[0].box == pytest.approx((96, 64, 224, 192))
    assert faces[0].keypoints[0] == pytest.approx([160 - 0.55 * 32, 128 - 0.35 * 32])
    chip = e.align(image, faces[0])
    assert chip.shape == (112, 112, 3)
    v = e.embed([chip, chip])
    assert v.shape == (2, 512) and np.linalg.norm(v, axis=1) == pytest.approx([1, 1])
    # the same frame at half size: the face is found at half the coordinates
    half = e.detect(image[::2, ::2])
    assert half[0].box == pytest.approx((48, 32, 112, 96))
