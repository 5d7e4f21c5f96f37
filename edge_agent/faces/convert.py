"""Conversions of the default pack's published weights into ONNX, without TensorFlow.

* BlazeFace full range (``.tflite``) through ``tflite2onnx``: one NCHW input ``[1, 3, 192, 192]`` in
  [-1, 1], outputs ``[1, 2304, 16]`` box regressors and ``[1, 2304, 1]`` raw scores.
* dlib's ResNet face descriptor from face-api's TF.js manifest and shard, rebuilt layer by layer with
  numpy and onnx (the network face-api's ``FaceRecognitionNet`` runs): input ``[N, 3, 150, 150]`` RGB in
  0..255 (an aligned chip), output ``[N, 128]``. Each convolution's scale layer is folded into it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

CHIP = 150  # the embedder's input side (dlib's face chip)
_MEAN_RGB = (122.782, 117.001, 104.298)
_STAGES = (
    ("conv32_1", False), ("conv32_2", False), ("conv32_3", False),
    ("conv64_down", True), ("conv64_1", False), ("conv64_2", False), ("conv64_3", False),
    ("conv128_down", True), ("conv128_1", False), ("conv128_2", False),
    ("conv256_down", True), ("conv256_1", False), ("conv256_2", False), ("conv256_down_out", True),
)  # fmt: skip


def convert_detector(tflite_path: Path, onnx_path: Path) -> None:
    """BlazeFace ``.tflite`` -> ONNX with tflite2onnx (imported here: only the pack build needs it)."""
    import logging

    import tflite2onnx

    # tflite2onnx warns once per float16 tensor it dequantises; the outputs match TFLite regardless
    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
    tflite2onnx.convert(str(tflite_path), str(onnx_path))


def read_tfjs_weights(manifest_path: Path) -> dict[str, np.ndarray]:
    """Every weight of a TF.js ``weights_manifest.json`` (uint8-quantised ones dequantised) by name."""
    groups = json.loads(manifest_path.read_text(encoding="utf-8"))
    out: dict[str, np.ndarray] = {}
    for group in groups:
        blob = b"".join((manifest_path.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            quant = w.get("quantization")
            if quant is not None:
                if quant["dtype"] != "uint8":
                    raise ValueError(f"{w['name']}: unsupported quantisation {quant['dtype']}")
                raw = np.frombuffer(blob, dtype=np.uint8, count=count, offset=offset)
                offset += count
                values = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            elif w["dtype"] == "float32":
                values = np.frombuffer(blob, dtype="<f4", count=count, offset=offset).copy()
                offset += 4 * count
            else:
                raise ValueError(f"{w['name']}: unsupported dtype {w['dtype']}")
            out[w["name"]] = values.reshape(w["shape"]).astype(np.float32)
        if offset != len(blob):
            raise ValueError(f"{manifest_path.name}: {len(blob) - offset} bytes left after the last weight")
    return out


class _Graph:
    """A tiny builder of an ONNX graph of convolutions, pools and adds with static shapes."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.w = weights
        self.nodes: list[object] = []
        self.inits: list[object] = []
        self._n = 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, base: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        n = self.name(base)
        self.inits.append(numpy_helper.from_array(value, n))
        return n

    def op(self, op_type: str, inputs: list[str], base: str, **attrs: Any) -> str:
        from onnx import helper

        out = self.name(base)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, prefix: str, *, stride: int, same: bool, relu: bool) -> str:
        filters = self.w[f"{prefix}/conv/filters"]  # HWIO
        bias = self.w[f"{prefix}/conv/bias"]
        scale, shift = self.w[f"{prefix}/scale/weights"], self.w[f"{prefix}/scale/biases"]
        kernel = np.transpose(filters, (3, 2, 0, 1)) * scale[:, None, None, None]
        k = filters.shape[0]
        pads = [k // 2] * 4 if same else [0, 0, 0, 0]
        y = self.op(
            "Conv", [x, self.const(f"{prefix}/W", kernel.astype(np.float32)),
                     self.const(f"{prefix}/B", (bias * scale + shift).astype(np.float32))],
            prefix, kernel_shape=[k, k], strides=[stride, stride], pads=pads,
        )  # fmt: skip
        return self.op("Relu", [y], f"{prefix}/relu") if relu else y

    def zero_pad(self, x: str, pads: list[int], base: str) -> str:
        return self.op("Pad", [x, self.const(f"{base}/pads", np.array(pads, dtype=np.int64))], base)


def _out_side(side: int, k: int, stride: int) -> int:
    return (side - k) // stride + 1


def build_embedder(weights: dict[str, np.ndarray]) -> bytes:
    """The serialised ONNX model of dlib's ResNet descriptor from face-api's weights."""
    from onnx import TensorProto, checker, helper

    g = _Graph(weights)
    mean = np.array(_MEAN_RGB, dtype=np.float32).reshape(1, 3, 1, 1)
    x = g.op("Sub", ["image", g.const("mean", mean)], "centre")
    x = g.op("Mul", [x, g.const("inv255", np.array(1 / 255, dtype=np.float32))], "norm")
    x = g.conv(x, "conv32_down", stride=2, same=False, relu=True)
    side, channels = _out_side(CHIP, 7, 2), 32
    x = g.op("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2])
    side = _out_side(side, 3, 2)
    for prefix, down in _STAGES:
        if not down:
            y = g.conv(x, f"{prefix}/conv1", stride=1, same=True, relu=True)
            y = g.conv(y, f"{prefix}/conv2", stride=1, same=True, relu=False)
            x = g.op("Relu", [g.op("Add", [y, x], f"{prefix}/add")], f"{prefix}/out")
            continue
        out_channels = weights[f"{prefix}/conv1/conv/filters"].shape[3]
        y = g.conv(x, f"{prefix}/conv1", stride=2, same=False, relu=True)
        y = g.conv(y, f"{prefix}/conv2", stride=1, same=True, relu=False)
        conv_side, pool_side = _out_side(side, 3, 2), side // 2
        if conv_side != pool_side:  # face-api pads the conv branch with a zero row and column
            y = g.zero_pad(
                y, [0, 0, 0, 0, 0, 0, pool_side - conv_side, pool_side - conv_side], f"{prefix}/pady"
            )
        pooled = g.op("AveragePool", [x], f"{prefix}/avg", kernel_shape=[2, 2], strides=[2, 2])
        if out_channels != channels:  # and the shortcut with zero channels
            pooled = g.zero_pad(pooled, [0, 0, 0, 0, 0, out_channels - channels, 0, 0], f"{prefix}/padc")
        x = g.op("Relu", [g.op("Add", [pooled, y], f"{prefix}/add")], f"{prefix}/out")
        side, channels = pool_side, out_channels
    x = g.op("ReduceMean", [x], "gap", axes=[2, 3], keepdims=0)
    g.nodes.append(helper.make_node("MatMul", [x, g.const("fc", weights["fc"])], ["embedding"], name="fc"))
    graph = helper.make_graph(
        g.nodes,  # type: ignore[arg-type]
        "dlib_resnet_face_descriptor",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, CHIP, CHIP])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 128])],
        g.inits,  # type: ignore[arg-type]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="anju")
    model.ir_version = 7
    checker.check_model(model)
    return bytes(model.SerializeToString())
