"""One small face interface (detect, align, embed) on onnxruntime, with packs swapped by configuration.

``default`` pack: BlazeFace full range + dlib's ResNet descriptor (built by ``anju.edge_agent.faces.pack``),
aligned on BlazeFace's eye, nose and mouth keypoints to dlib's 150-pixel chip. ``insightface`` pack: an
operator-supplied SCRFD detector and ArcFace embedder (e.g. buffalo_l's ``det_10g.onnx`` and
``w600k_r50.onnx``) from a directory, under the operator's own licence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

from anju.edge_agent.errors import EdgeAgentError
from anju.edge_agent.faces import blazeface

# dlib's chip: its mean face (interpolation.h) at padding 0.25 on 150 pixels, for the eye centres,
# nose tip and mouth centre (image left eye first)
_DLIB_TEMPLATE = np.array([[47.5, 46.6], [100.5, 46.6], [74.0, 76.6], [74.0, 105.0]], dtype=np.float32)
# ArcFace's 112-pixel template: eyes, nose, mouth corners
_ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


class FaceEngineError(EdgeAgentError):
    """A face pack is missing, incomplete or does not load."""


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face, image pixels: its box (x0, y0, x1, y1), the pack's keypoints, the score."""

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float

    @property
    def width(self) -> float:
        """The box's width in pixels."""
        return self.box[2] - self.box[0]


class FaceEngine(Protocol):
    """What the agent needs from a face pack."""

    name: str
    threshold: float  # the L2 distance at or below which two embeddings are the same person

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Every face in a BGR image."""
        ...

    def align(self, image_bgr: np.ndarray, face: Face) -> np.ndarray:
        """The face's aligned chip (BGR), as the embedder expects it."""
        ...

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        """One embedding per chip, ``[N, D]`` float32."""
        ...


def _session(path: Path, threads: int) -> object:
    import onnxruntime as ort

    if not path.is_file():
        raise FaceEngineError(f"face pack file missing: {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own untyped errors for a bad file
        raise FaceEngineError(f"cannot load {path}: {err}") from err


def _warp(image_bgr: np.ndarray, points: np.ndarray, template: np.ndarray, side: int) -> np.ndarray:
    matrix, _ = cv2.estimateAffinePartial2D(points.astype(np.float32), template, method=cv2.LMEDS)
    if matrix is None:
        raise FaceEngineError("keypoints do not give an alignment")
    return cv2.warpAffine(
        image_bgr, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def _chips_blob(chips: list[np.ndarray], side: int, mean: float, scale: float) -> np.ndarray:
    rgb = np.stack([c[:, :, ::-1] for c in chips]).astype(np.float32)
    if rgb.shape[1:3] != (side, side):
        raise FaceEngineError(f"chips must be {side}x{side}")
    return np.ascontiguousarray(((rgb - mean) * scale).transpose(0, 3, 1, 2))


class DefaultPackEngine:
    """BlazeFace full range + dlib ResNet descriptor (``pack.json`` kind ``default``)."""

    chip = 150

    def __init__(self, directory: Path, *, threads: int = 1, threshold: float | None = None) -> None:
        meta = _pack_meta(directory)
        self.name = f"default:{directory}"
        self.threshold = float(threshold if threshold is not None else str(meta.get("threshold", 0.47)))
        self._det = _session(directory / "detector.onnx", threads)
        self._emb = _session(directory / "embedder.onnx", threads)
        self._det_input = self._det.get_inputs()[0].name  # type: ignore[attr-defined]

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        tensor, scale, pad_x, pad_y = blazeface.letterbox(image_bgr)
        outputs = self._det.run(None, {self._det_input: tensor})  # type: ignore[attr-defined]
        regressors, scores = sorted(outputs, key=lambda a: -a.shape[-1])
        boxes, kps, conf = blazeface.decode(regressors, scores)
        faces = []
        offset = np.array([pad_x, pad_y])
        for box, points, score in blazeface.weighted_nms(boxes, kps, conf):
            b = (box.reshape(2, 2) - offset) / scale
            box_xy = (float(b[0, 0]), float(b[0, 1]), float(b[1, 0]), float(b[1, 1]))
            faces.append(Face(box_xy, (points - offset) / scale, score))
        return faces

    def align(self, image_bgr: np.ndarray, face: Face) -> np.ndarray:
        eyes = face.keypoints[:2][np.argsort(face.keypoints[:2, 0])]  # image-left eye first
        return _warp(image_bgr, np.vstack([eyes, face.keypoints[2:4]]), _DLIB_TEMPLATE, self.chip)

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, 128), dtype=np.float32)
        blob = _chips_blob(chips, self.chip, 0.0, 1.0)  # the graph centres and scales itself
        return np.asarray(self._emb.run(None, {"image": blob})[0], dtype=np.float32)  # type: ignore[attr-defined]


class InsightFacePackEngine:
    """An SCRFD detector and an ArcFace embedder, ONNX files from an operator's directory."""

    chip = 112
    _STRIDES = (8, 16, 32)

    def __init__(
        self,
        directory: Path,
        *,
        detector: str,
        embedder: str,
        threads: int = 1,
        threshold: float | None = None,
    ) -> None:
        self.name = f"insightface:{directory}"
        self.threshold = float(threshold if threshold is not None else 1.1)  # unit vectors (cosine 0.4)
        self._det = _session(directory / detector, threads)
        self._emb = _session(directory / embedder, threads)
        inp = self._det.get_inputs()[0]  # type: ignore[attr-defined]
        self._det_input = inp.name
        side = inp.shape[2] if isinstance(inp.shape[2], int) else 640
        self._side = int(side)
        self._emb_input = self._emb.get_inputs()[0].name  # type: ignore[attr-defined]

    def detect(self, image_bgr: np.ndarray, min_score: float = 0.5) -> list[Face]:
        h, w = image_bgr.shape[:2]
        scale = self._side / max(h, w)
        canvas = np.zeros((self._side, self._side, 3), dtype=np.uint8)
        resized = cv2.resize(image_bgr, (max(1, round(w * scale)), max(1, round(h * scale))))
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        blob = _chips_blob([canvas], self._side, 127.5, 1 / 128)
        outs = self._det.run(None, {self._det_input: blob})  # type: ignore[attr-defined]
        n = len(self._STRIDES)
        boxes, kps, scores = [], [], []
        for i, stride in enumerate(self._STRIDES):
            cells = self._side // stride
            ys, xs = np.mgrid[:cells, :cells]
            centres = np.repeat(np.stack([xs.ravel(), ys.ravel()], 1) * stride, 2, axis=0).astype(np.float32)
            s = outs[i].reshape(-1)
            d = outs[n + i].reshape(-1, 4) * stride
            keep = s >= min_score
            c = centres[keep]
            boxes.append(np.concatenate([c - d[keep, :2], c + d[keep, 2:]], axis=1))
            kps.append(c[:, None, :] + outs[2 * n + i].reshape(-1, 5, 2)[keep] * stride)
            scores.append(s[keep])
        found = blazeface.weighted_nms(
            np.concatenate(boxes), np.concatenate(kps), np.concatenate(scores), 0.4
        )
        return [Face(tuple(float(v) for v in box / scale), points / scale, sc) for box, points, sc in found]  # type: ignore[arg-type]

    def align(self, image_bgr: np.ndarray, face: Face) -> np.ndarray:
        return _warp(image_bgr, face.keypoints, _ARCFACE_TEMPLATE, self.chip)

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, 512), dtype=np.float32)
        blob = _chips_blob(chips, self.chip, 127.5, 1 / 127.5)
        out = np.asarray(self._emb.run(None, {self._emb_input: blob})[0], dtype=np.float32)  # type: ignore[attr-defined]
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def _pack_meta(directory: Path) -> dict[str, object]:
    path = directory / "pack.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FaceEngineError(
            f"no usable face pack at {directory} ({err}); run: anju agent faces pack"
        ) from err
    if not isinstance(meta, dict):
        raise FaceEngineError(f"{path} is not a JSON object")
    return meta


PackKind = Literal["default", "insightface"]


def load_engine(
    kind: PackKind,
    directory: Path,
    *,
    detector: str = "det_10g.onnx",
    embedder: str = "w600k_r50.onnx",
    threads: int = 1,
    threshold: float | None = None,
) -> FaceEngine:
    """The engine of the pack ``kind`` in ``directory``."""
    if kind == "default":
        return DefaultPackEngine(directory, threads=threads, threshold=threshold)
    return InsightFacePackEngine(
        directory, detector=detector, embedder=embedder, threads=threads, threshold=threshold
    )
