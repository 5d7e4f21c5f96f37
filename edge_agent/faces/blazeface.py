"""BlazeFace full range: letterboxing, anchor decoding and weighted non-maximum suppression.

Ported from MediaPipe's ``face_detection_full_range_common.pbtxt`` (one 48x48 anchor layer of stride 4,
anchor offset 0.5, fixed anchor size) and its ``TensorsToDetectionsCalculator`` (boxes and six
keypoints as offsets from the anchor centre in input pixels; sigmoid scores clipped at +-80).
"""

from __future__ import annotations

import cv2
import numpy as np

INPUT = 192
MIN_SCORE = 0.5
NMS_IOU = 0.3
_RAW_LIMIT = 80.0


def anchors(side: int = INPUT, stride: int = 4) -> np.ndarray:
    """The (x, y) centres of the full-range model's anchors, normalised, row-major."""
    cells = side // stride
    centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


_ANCHORS = anchors()


def letterbox(image_bgr: np.ndarray, side: int = INPUT) -> tuple[np.ndarray, float, float, float]:
    """The NCHW float input in [-1, 1] and (scale, pad_x, pad_y) to map model pixels back to the image."""
    h, w = image_bgr.shape[:2]
    scale = side / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    pad_x, pad_y = (side - nw) // 2, (side - nh) // 2
    canvas[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
    rgb = canvas[:, :, ::-1].astype(np.float32) / 127.5 - 1.0
    return rgb.transpose(2, 0, 1)[None], scale, float(pad_x), float(pad_y)


def decode(regressors: np.ndarray, raw_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes ``[K, 4]`` (x0, y0, x1, y1) and keypoints ``[K, 6, 2]``, model pixels, and scores ``[K]``."""
    raw = np.clip(raw_scores.reshape(-1).astype(np.float64), -_RAW_LIMIT, _RAW_LIMIT)
    scores = 1.0 / (1.0 + np.exp(-raw))
    keep = scores > MIN_SCORE
    reg = regressors.reshape(-1, 8, 2)[keep] / INPUT
    anc = _ANCHORS[keep]
    centre = reg[:, 0] + anc
    half = reg[:, 1] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1) * INPUT
    keypoints = (reg[:, 2:] + anc[:, None, :]) * INPUT
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[valid], keypoints[valid], scores[keep][valid]


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9))


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: each kept face is the score-weighted mean of the boxes it suppresses."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    left = np.ones(len(scores), dtype=bool)
    out = []
    for i in range(len(scores)):
        if not left[i]:
            continue
        group = left & (_iou(boxes[i], boxes) > iou)
        group[i] = True
        weights = scores[group][:, None]
        box = (boxes[group] * weights).sum(axis=0) / weights.sum()
        kps = (keypoints[group] * weights[:, :, None]).sum(axis=0) / weights.sum()
        out.append((box, kps, float(scores[i])))
        left &= ~group
    return out
