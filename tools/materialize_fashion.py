#!/usr/bin/env python3
# Materializes what the reduced-precision accuracy tests and `make bench` measure: the
# Fashion-MNIST test split (Debian's dataset-fashion-mnist) for the committed trained model,
# ONNX Runtime's reference logits, ONNX Runtime's static int8 quantization of that model and of
# the full-size ResNet-50, and a folder of test images. Runs at test time (`make fixtures`); needs
# only .venv (numpy, onnx, onnxruntime), never torch.
#
#     python tools/materialize_fashion.py fixtures/fashion/fashion_resnet.onnx OUTDIR \
#         [--resnet50 .build-fixtures/resnet50/resnet50_bn.onnx --resnet50-out DIR] [--data DIR]
#
# Writes into OUTDIR:
#   test_x.npy, test_y.npy      float32 [10000,1,28,28] normalised exactly as training did (the
#                               mean and std in the model's metadata), int64 [10000] labels
#   ref_logits.npy              float32 [10000,10]: ONNX Runtime, f32, no graph optimization
#   fashion_resnet_int8_qdq.onnx   quantize_static: QDQ, per-channel s8 weights, u8 activations,
#                               MinMax calibration on the first 500 training images
#   calibration_x.npy           those 500 training images, normalised (for `graft quantize`)
#   int8_ort_logits.npy         float32 [10000,10]: ONNX Runtime on the QDQ model with its
#                               optimizations on (its int8 kernels, what its users get)
#   images/<class>/<index>.png  the first 100 test images of each class, 8-bit grayscale (Graft's
#                               PNG reader replicates gray into RGB), <index> in the test split
#   source.sha256               what the outputs were made from; when it matches and every output
#                               exists, the script does nothing (idempotent, fast)
# With --resnet50, the same quantization of the full-size ResNet-50 (batch norm folded first),
# calibrated on 8 seeded standard-normal inputs, into --resnet50-out as resnet50_int8_qdq.onnx:
# for speed only (random weights; no accuracy is claimed).
#
# The dataset files must have the sha256 the model's metadata records (fashion.dataset_sha256):
# the accuracy the committed model was trained for is only meaningful on the same data.
"""Materialize the Fashion-MNIST test split, ONNX Runtime references and int8 QDQ models."""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fashion_mnist import DATA, FILES, normalized, read_idx  # noqa: E402
from materialize_resnet50 import sha256  # noqa: E402

RECIPE = "materialize_fashion v1"
IMAGES_PER_CLASS = 100
CALIBRATION_IMAGES = 500
OUTPUTS = ["test_x.npy", "test_y.npy", "ref_logits.npy", "calibration_x.npy", "fashion_resnet_int8_qdq.onnx", "int8_ort_logits.npy"]


def png_gray(pixels: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG of a [height, width] uint8 array (no filter, one IDAT)."""
    height, width = pixels.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\0" + pixels[y].tobytes() for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


class Batches(CalibrationDataReader):
    """Feeds quantize_static's calibration one batch at a time."""

    def __init__(self, name: str, x: np.ndarray, batch: int) -> None:
        self.feeds = iter([{name: x[i:i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self.feeds, None)


def quantize(src: Path, dst: Path, calibration: np.ndarray, batch: int) -> None:
    """quantize_static in QDQ form, per-channel s8 weights, u8 activations, MinMax calibration,
    after ONNX Runtime's pre-processing (shape inference, batch norm folded into convolutions)."""
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(onnx.load(str(src)), str(prepared), skip_symbolic_shape=True)
        name = ort.InferenceSession(str(prepared), providers=["CPUExecutionProvider"]).get_inputs()[0].name
        out = Path(tmp) / dst.name
        quantize_static(str(prepared), str(out), Batches(name, calibration, batch), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        os.replace(out, dst)


def run_ort(model: Path, x: np.ndarray, optimized: bool) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 500]})[0] for i in range(0, len(x), 500)])


def save_npy(path: Path, array: np.ndarray) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as f:
        np.save(f, np.ascontiguousarray(array))
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)


def materialize_fashion(model_path: Path, outdir: Path, data: Path, force: bool) -> None:
    model = onnx.load(str(model_path))
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    want = meta["fashion.dataset_sha256"]
    stamp_text = f"{sha256(model_path)}  {model_path.name}\n{json.dumps(want, sort_keys=True)}\n{RECIPE}\n"
    stamp = outdir / "source.sha256"
    classes = meta["graft.class_names"]
    if (not force and stamp.exists() and stamp.read_text() == stamp_text
            and all((outdir / f).exists() for f in OUTPUTS) and all((outdir / "images" / c).is_dir() for c in classes)):
        print(f"{outdir}: up to date")
        return
    stamp.unlink(missing_ok=True)
    for name, digest in want.items():
        have = sha256(data / name)
        if have != digest:
            sys.exit(f"{data / name}: sha256 {have}, the model was trained on {digest}")

    norm = meta["fashion.normalization"]
    test_images = read_idx(data / FILES["test_x"])
    test_x = normalized(test_images, norm["mean"], norm["std"])
    test_y = read_idx(data / FILES["test_y"]).astype(np.int64)
    save_npy(outdir / "test_x.npy", test_x)
    save_npy(outdir / "test_y.npy", test_y)

    ref = run_ort(model_path, test_x, optimized=False)
    save_npy(outdir / "ref_logits.npy", ref.astype(np.float32))
    f32_accuracy = float((ref.argmax(1) == test_y).mean())
    print(f"ONNX Runtime f32: test accuracy {f32_accuracy:.4f} (PyTorch measured {meta['fashion.pytorch_test_accuracy']:.4f})")

    calibration = normalized(read_idx(data / FILES["train_x"])[:CALIBRATION_IMAGES], norm["mean"], norm["std"])
    save_npy(outdir / "calibration_x.npy", calibration)
    qdq = outdir / "fashion_resnet_int8_qdq.onnx"
    quantize(model_path, qdq, calibration, batch=100)
    int8 = run_ort(qdq, test_x, optimized=True)
    save_npy(outdir / "int8_ort_logits.npy", int8.astype(np.float32))
    print(f"ONNX Runtime int8 QDQ: test accuracy {float((int8.argmax(1) == test_y).mean()):.4f}, "
          f"top-1 agreement with f32 {float((int8.argmax(1) == ref.argmax(1)).mean()):.4f}, "
          f"max |logit diff| {float(np.abs(int8 - ref).max()):.4f}")

    for label, name in enumerate(classes):
        folder = outdir / "images" / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in np.flatnonzero(test_y == label)[:IMAGES_PER_CLASS]:
            (folder / f"{index}.png").write_bytes(png_gray(test_images[index]))
    print(f"wrote {IMAGES_PER_CLASS} PNG images per class into {outdir / 'images'}")
    stamp.write_text(stamp_text)


def materialize_resnet50(src: Path, outdir: Path, force: bool) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    dst = outdir / "resnet50_int8_qdq.onnx"
    stamp = outdir / "source.sha256"
    stamp_text = f"{sha256(src)}  {src.name}\n{sha256(src.with_name(src.name + '.data'))}\n{RECIPE}\n"
    if not force and stamp.exists() and stamp.read_text() == stamp_text and dst.exists():
        print(f"{outdir}: up to date")
        return
    stamp.unlink(missing_ok=True)
    calibration = np.random.Generator(np.random.PCG64(3)).standard_normal((8, 3, 224, 224), dtype=np.float32)
    quantize(src, dst, calibration, batch=1)
    print(f"wrote {dst} ({dst.stat().st_size} bytes)")
    stamp.write_text(stamp_text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", type=Path, help="the trained model (fixtures/fashion/fashion_resnet.onnx)")
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--data", type=Path, default=DATA, help="the folder of Fashion-MNIST's four IDX .gz files")
    ap.add_argument("--resnet50", type=Path, help="the materialized ResNet-50 (resnet50_bn.onnx) to quantize too")
    ap.add_argument("--resnet50-out", type=Path, help="where its int8 QDQ model goes")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args()
    if (args.resnet50 is None) != (args.resnet50_out is None):
        ap.error("--resnet50 and --resnet50-out go together")
    args.outdir.mkdir(parents=True, exist_ok=True)
    materialize_fashion(args.model, args.outdir, args.data, args.force)
    if args.resnet50:
        materialize_resnet50(args.resnet50, args.resnet50_out, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
