#!/usr/bin/env python3
# Makes the committed quantized (QDQ) fixtures under fixtures/qdq/ from the tiny ResNet:
# ONNX Runtime's own post-training static quantization (onnxruntime.quantization.quantize_static,
# QDQ format), calibrated on seeded inputs, and the references each is checked against.
#     .venv/bin/python tools/make_qdq_fixtures.py
# Made with onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6 (tools/requirements-test.txt).
#
# For each model: `<name>.onnx` and, for fixtures/tiny/input_b3.npy,
#   `<name>.exact.npy`  ONNX Runtime with graph optimizations off: every QuantizeLinear,
#                       DequantizeLinear and float Conv as the ONNX spec defines them;
#   `<name>.int8.npy`   ONNX Runtime with all optimizations (its int8 kernels: QLinearConv and
#                       the requantizing ops it fuses the QDQ groups into).
"""Builds the QDQ fixtures of the tiny ResNet with ONNX Runtime's quantizer."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "fixtures" / "tiny"
OUT = ROOT / "fixtures" / "qdq"

# name: (per_channel, activation type, weight type)
VARIANTS = {
    "tiny_qdq_per_channel_u8s8": (True, QuantType.QUInt8, QuantType.QInt8),
    "tiny_qdq_per_tensor_s8s8": (False, QuantType.QInt8, QuantType.QInt8),
}


class SeededInputs(CalibrationDataReader):
    """Sixteen standard-normal inputs of the tiny model's shape from PCG64(1)."""

    def __init__(self, name: str, shape: list[int]):
        rng = np.random.default_rng(1)
        self.batches = iter([{name: rng.standard_normal(shape, dtype=np.float32)} for _ in range(16)])

    def get_next(self):
        return next(self.batches, None)


def run(path: Path, x: np.ndarray, level) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def main() -> int:
    source = TINY / "ts_opset17_dynamic.onnx"
    x = np.load(TINY / "input_b3.npy")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"onnxruntime {ort.__version__}")
    failures = []
    for name, (per_channel, activations, weights) in VARIANTS.items():
        target = OUT / f"{name}.onnx"
        with tempfile.TemporaryDirectory() as tmp:
            # The quantizer wants a model whose shapes are inferred; it writes the result itself.
            quantize_static(str(source), str(target), SeededInputs("input", [1, 3, 64, 64]),
                            quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=activations, weight_type=weights)
        exact = run(target, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        int8 = run(target, x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        f32 = run(source, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        np.save(OUT / f"{name}.exact.npy", exact.astype(np.float32))
        np.save(OUT / f"{name}.int8.npy", int8.astype(np.float32))
        agree = float(np.mean(exact.argmax(1) == f32.argmax(1)))
        print(f"{name}: max|exact - int8 kernels| {np.abs(exact - int8).max():.4f}, "
              f"max|exact - f32| {np.abs(exact - f32).max():.4f}, top-1 agreement with f32 {agree:.2f}")
        if not np.all(np.isfinite(exact)):
            failures.append(name)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
