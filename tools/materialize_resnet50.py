#!/usr/bin/env python3
# Materializes deterministic weights for the committed, weight-stripped ResNet-50 graph and
# computes ONNX Runtime reference outputs. Runs at test time (CI); needs only numpy, onnx and
# onnxruntime (tools/requirements-test.txt), never torch.
#
#     python tools/materialize_resnet50.py fixtures/resnet50/resnet50_bn.onnx OUTDIR
#
# Writes into OUTDIR:
#   resnet50_bn.onnx            copy of SRC (its initializers point at the .data file beside it)
#   resnet50_bn.onnx.data       the weights, at exactly the offset/length each initializer declares
#   input_b1.npy / output_b1.npy   float32 1x3x224x224 input, 1x1000 ORT output
#   input_b2.npy / output_b2.npy   the same for batch 2
#   source.sha256               sha256 of SRC and the recipe version; if it matches and every
#                               output exists, the script does nothing (idempotent, fast)
#
# Weights: one numpy Generator(PCG64(0)), initializers filled in graph order. A tensor's role is
# taken from the node that consumes it (Conv input 1/2, BatchNormalization input 1..4, Gemm
# input 1/2), falling back to its state_dict-style name:
#   conv weight       kaiming normal, std = sqrt(2 / fan_out), fan_out = C_out*kH*kW (torchvision)
#   BN weight/bias    U(0.5, 1.5) / N(0, 0.05)
#   BN running mean   N(0, 0.05);  running var U(0.5, 1.5)
#   the last BN of each residual branch (bn3 / downsample.1) has its weight scaled by
#                     BRANCH_GAIN = 0.7, so the residual sum does not grow ~sqrt(2)x per block
#                     (with 1.0 the logits reach ~850, with 0.7 ~22, with 0.5 ~1.4)
#   fc weight / bias  U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (fan_in 2048)
#   conv bias (none in torchvision's ResNet) N(0, 0.05)
#   integer tensors   zero (num_batches_tracked)
# Inputs: standard normal from Generator(PCG64(1)) (batch 1) and Generator(PCG64(2)) (batch 2).
"""Materialize deterministic ResNet-50 weights and ONNX Runtime reference outputs."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

RECIPE = "materialize_resnet50 v1"
BRANCH_GAIN = 0.7
OUTPUTS = ["input_b1.npy", "output_b1.npy", "input_b2.npy", "output_b2.npy"]

NP_DTYPE = {
    TensorProto.FLOAT: np.float32,
    TensorProto.DOUBLE: np.float64,
    TensorProto.INT64: np.int64,
    TensorProto.INT32: np.int32,
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def roles(graph: onnx.GraphProto) -> dict[str, str]:
    """Initializer name -> role, from the consuming node."""
    out: dict[str, str] = {}
    table = {
        "Conv": {1: "conv_weight", 2: "conv_bias"},
        "BatchNormalization": {1: "bn_weight", 2: "bn_bias", 3: "bn_mean", 4: "bn_var"},
        "Gemm": {1: "fc_weight", 2: "fc_bias"},
    }
    for node in graph.node:
        for idx, name in enumerate(node.input):
            role = table.get(node.op_type, {}).get(idx)
            if role:
                out.setdefault(name, role)
    return out


def role_from_name(name: str, dims: list[int]) -> str:
    if name.endswith("running_mean"):
        return "bn_mean"
    if name.endswith("running_var"):
        return "bn_var"
    if name.startswith("fc."):
        return "fc_" + name.rsplit(".", 1)[1]
    if name.endswith(".weight"):
        return "conv_weight" if len(dims) == 4 else "bn_weight"
    if name.endswith(".bias"):
        return "bn_bias"
    raise ValueError(f"cannot tell what initializer {name} {dims} is")


def is_branch_end(name: str) -> bool:
    return ".bn3." in name or ".downsample.1." in name


def fill(rng: np.random.Generator, role: str, name: str, dims: list[int]) -> np.ndarray:
    n = int(np.prod(dims, dtype=np.int64))
    if role == "conv_weight":
        fan_out = dims[0] * int(np.prod(dims[2:], dtype=np.int64))
        a = rng.standard_normal(n, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_out))
    elif role == "bn_weight":
        a = rng.uniform(0.5, 1.5, n).astype(np.float32)
        if is_branch_end(name):
            a *= np.float32(BRANCH_GAIN)
    elif role in ("bn_bias", "bn_mean", "conv_bias"):
        a = rng.standard_normal(n, dtype=np.float32) * np.float32(0.05)
    elif role == "bn_var":
        a = rng.uniform(0.5, 1.5, n).astype(np.float32)
    elif role in ("fc_weight", "fc_bias"):
        fan_in = dims[1] if role == "fc_weight" else 2048
        bound = 1.0 / np.sqrt(fan_in)
        a = rng.uniform(-bound, bound, n).astype(np.float32)
    else:
        raise ValueError(f"{name}: unknown role {role}")
    return a.reshape(dims)


def external_info(t: TensorProto) -> tuple[str, int, int | None]:
    kv = {e.key: e.value for e in t.external_data}
    if "location" not in kv:
        raise ValueError(f"{t.name}: external data without location")
    length = int(kv["length"]) if "length" in kv else None
    return kv["location"], int(kv.get("offset", "0")), length


def write_weights(model: onnx.ModelProto, outdir: Path) -> tuple[Path, int]:
    rng = np.random.Generator(np.random.PCG64(0))
    by_role = roles(model.graph)
    chunks: dict[str, list[tuple[int, bytes]]] = {}
    for t in model.graph.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            continue   # inline (e.g. small shape constants) - nothing to write
        dims = list(t.dims)
        if t.data_type not in NP_DTYPE:
            raise ValueError(f"{t.name}: unsupported data type {t.data_type}")
        dt = np.dtype(NP_DTYPE[t.data_type])
        if dt.kind == "f":
            role = by_role.get(t.name) or role_from_name(t.name, dims)
            arr = fill(rng, role, t.name, dims).astype(dt)
        else:
            arr = np.zeros(dims, dtype=dt)
        raw = np.ascontiguousarray(arr).astype(dt.newbyteorder("<")).tobytes()
        location, offset, length = external_info(t)
        if length is not None and length != len(raw):
            raise ValueError(f"{t.name}: declared length {length} != {len(raw)} bytes for {dims}")
        chunks.setdefault(location, []).append((offset, raw))
    if len(chunks) != 1:
        raise ValueError(f"expected one external data file, got {sorted(chunks)}")
    ((location, parts),) = chunks.items()
    if os.path.basename(location) != location:
        raise ValueError(f"external location {location!r} is not a plain file name")
    end = max(off + len(raw) for off, raw in parts)
    buf = bytearray(end)
    covered = 0
    for off, raw in sorted(parts):
        if off < covered:
            raise ValueError(f"overlapping external tensors at offset {off}")
        buf[off:off + len(raw)] = raw
        covered = off + len(raw)
    path = outdir / location
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf)
    os.replace(tmp, path)
    return path, len(parts)


def run_ort(model_path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: x})[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("src", type=Path, help="weight-stripped graph (fixtures/resnet50/resnet50_bn.onnx)")
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args()

    src: Path = args.src
    outdir: Path = args.outdir
    outdir.mkdir(parents=True, exist_ok=True)
    stamp_text = f"{sha256(src)}  {src.name}\n{RECIPE}\n"
    stamp = outdir / "source.sha256"
    model = onnx.load(str(src), load_external_data=False)
    data_names = {external_info(t)[0] for t in model.graph.initializer
                  if t.data_location == TensorProto.EXTERNAL}
    expected = [src.name, *sorted(data_names), *OUTPUTS]
    if (not args.force and stamp.exists() and stamp.read_text() == stamp_text
            and all((outdir / f).exists() for f in expected)):
        print(f"{outdir}: up to date")
        return 0
    stamp.unlink(missing_ok=True)

    graph_copy = outdir / src.name
    if src.resolve() != graph_copy.resolve():
        shutil.copyfile(src, graph_copy)
    data_path, count = write_weights(model, outdir)
    print(f"wrote {count} tensors, {data_path.stat().st_size} bytes to {data_path}")

    for batch, seed in ((1, 1), (2, 2)):
        rng = np.random.Generator(np.random.PCG64(seed))
        x = rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)
        y = run_ort(graph_copy, x)
        m = float(np.max(np.abs(y)))
        if not np.all(np.isfinite(y)) or not (1e-2 < m < 1e4):
            print(f"error: batch {batch} logits out of range (max |y| = {m})", file=sys.stderr)
            return 1
        print(f"batch {batch}: output {list(y.shape)}, max |logit| = {m:.4f}, std {float(y.std()):.4f}")
        for name, arr in ((f"input_b{batch}.npy", x), (f"output_b{batch}.npy", y)):
            with tempfile.NamedTemporaryFile(dir=outdir, suffix=".npy", delete=False) as f:
                np.save(f, np.ascontiguousarray(arr, dtype=np.float32))
            os.chmod(f.name, 0o644)
            os.replace(f.name, outdir / name)
    stamp.write_text(stamp_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
