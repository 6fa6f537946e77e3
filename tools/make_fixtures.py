#!/usr/bin/env python3
# Makes the committed ONNX fixtures under fixtures/tiny/ and fixtures/resnet50/.
# Run by hand (not in CI), from any directory:
#     python tools/make_fixtures.py               # tiny fixtures + stripped ResNet-50 graph
#     python tools/make_fixtures.py --only tiny   # or --only resnet50
# Made with (also in tools/requirements-fixtures.txt):
# torch==2.15.0 torchvision==0.29.2 onnx==1.23.2 onnxruntime==1.32.0 onnxscript==0.7.2 onnx-ir==1.1.0 numpy==2.4.6
# (Python 3.11, CPU only; no pretrained weights are downloaded.)
#
# Every exported model is run in ONNX Runtime (CPU) and compared with the eval-mode PyTorch
# output; the script exits non-zero if any model does not match (|d| <= 1e-4 + 1e-3*|ref|).
"""Builds the tiny ResNet fixtures and the weight-stripped ResNet-50 graph."""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "fixtures" / "tiny"
R50 = ROOT / "fixtures" / "resnet50"

H = W = 64          # tiny input: 1x3x64x64 -> conv1/maxpool 16x16 -> layer4 2x2 -> avgpool 1x1
BASE = 8            # channels after conv1; torchvision uses 64
NUM_CLASSES = 10
ATOL, RTOL = 1e-4, 1e-3


# --------------------------------------------------------------------------------------------
# The tiny model
# --------------------------------------------------------------------------------------------

def randomize_bn(model: nn.Module, seed: int) -> None:
    """Non-trivial BatchNorm parameters and statistics, so that folding BN into Conv really
    changes the weights and no two BN tensors are equal. (With torchvision's init every BN has
    weight=1, bias=0, mean=0, var=1; the TorchScript exporter then de-duplicates the equal
    initializers and replaces all but one by Identity nodes.)"""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)       # N(0, 0.1)
                mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)   # U(0.5, 2)
                mod.weight.copy_(torch.rand(c, generator=g) + 0.5)              # U(0.5, 1.5)
                mod.bias.copy_(torch.randn(c, generator=g) * 0.1)               # N(0, 0.1)


def tiny_resnet() -> nn.Module:
    """A ResNet-50-shaped network from torchvision's own classes, only narrower and shallower.

    torchvision's ResNet.__init__ hard-codes the stage widths 64/128/256/512 (x4 for
    Bottleneck), which even with [1,1,1,1] blocks is ~2M parameters in layer4's downsample
    alone. So we build ResNet(Bottleneck, [1,1,1,1]) and then rebuild its stem, stages and
    head with ResNet._make_layer at BASE=8 (stage planes 8/16/32/64, outputs 32/64/128/256).
    Module names, block structure (conv1/bn1/relu/maxpool, layerN.0 Bottleneck with
    downsample = Sequential(Conv 1x1, BN), avgpool, flatten, fc) and forward() are torchvision's.
    """
    torch.manual_seed(0)
    m = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=NUM_CLASSES, width_per_group=64)
    m.inplanes = BASE
    m.conv1 = nn.Conv2d(3, BASE, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(BASE)
    m.layer1 = m._make_layer(Bottleneck, BASE, 1)
    m.layer2 = m._make_layer(Bottleneck, BASE * 2, 1, stride=2)
    m.layer3 = m._make_layer(Bottleneck, BASE * 4, 1, stride=2)
    m.layer4 = m._make_layer(Bottleneck, BASE * 8, 1, stride=2)
    m.fc = nn.Linear(BASE * 8 * Bottleneck.expansion, NUM_CLASSES)
    # torchvision's own init for the rebuilt convs (ResNet.__init__ did it for the old ones)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
    randomize_bn(m, seed=1234)
    m.eval()
    return m


# --------------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------------

FAILURES: list[str] = []


def ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    return sess.run(None, {inp.name: x})[0]


def check(path: Path, x: np.ndarray, ref: np.ndarray) -> None:
    out = ort_run(path, x)
    if out.shape != ref.shape:
        msg = f"{path.name}: shape {out.shape} != {ref.shape}"
        print("FAIL", msg)
        FAILURES.append(msg)
        return
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    bound = ATOL + RTOL * np.abs(ref.astype(np.float64))
    ok = bool(np.all(diff <= bound))
    print(f"{'ok  ' if ok else 'FAIL'} {path.name:34s} batch={x.shape[0]} "
          f"max|diff|={diff.max():.3e} max|ref|={np.abs(ref).max():.3f}")
    if not ok:
        FAILURES.append(f"{path.name}: max|diff| {diff.max():.3e} (batch {x.shape[0]})")


def check_bn_inference(path: Path) -> None:
    """PRESERVE exports must contain inference-mode BatchNormalization (one output, no
    training_mode=1), otherwise ORT would normalize with batch statistics."""
    m = onnx.load(str(path), load_external_data=False)
    bns = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
    if not bns:
        FAILURES.append(f"{path.name}: no BatchNormalization nodes")
    for n in bns:
        tm = [a.i for a in n.attribute if a.name == "training_mode"]
        if len(n.output) != 1 or (tm and tm[0] != 0):
            FAILURES.append(f"{path.name}: training-mode BatchNormalization {n.name}")


def describe(path: Path) -> str:
    m = onnx.load(str(path), load_external_data=False)
    opset = {o.domain or "ai.onnx": o.version for o in m.opset_import}
    ops = collections.Counter(n.op_type for n in m.graph.node)
    return f"{path.name}: opset {opset} ops {dict(sorted(ops.items()))}"


# --------------------------------------------------------------------------------------------
# Exports
# --------------------------------------------------------------------------------------------

def export_torchscript(model, x, path: Path, opset: int, *, bn: bool = False,
                       dynamic: bool = False) -> None:
    kwargs = {}
    if bn:
        # TrainingMode.PRESERVE exports the mode the module is in: the model is in eval mode,
        # so BatchNormalization is exported in inference form (running stats, one output).
        # do_constant_folding=False stops the exporter from folding BN into the Conv weights.
        # (TrainingMode.TRAINING would export training-mode BN; EVAL with folding off would
        # also keep BN, but PRESERVE on an eval model is what state_dict users get.)
        kwargs.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    if dynamic:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset,
                      input_names=["input"], output_names=["output"], **kwargs)


def save_external(model_proto: onnx.ModelProto, path: Path) -> None:
    """Saves with every float initializer in one external file `<name>.data` beside `path`
    (like size_threshold=0), but keeps integer initializers (the dynamo exporter's ReduceMean
    axes and Reshape shape constants) inline: ONNX Runtime's shape inference refuses to read
    such tensors from external data ("Cannot parse data from external tensors")."""
    from onnx.external_data_helper import set_external_data, uses_external_data
    data = path.name + ".data"
    (path.parent / data).unlink(missing_ok=True)
    for t in model_proto.graph.initializer:
        if uses_external_data(t):
            raise ValueError(f"{t.name}: external data not loaded")
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16,
                           onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE):
            if not t.HasField("raw_data"):
                t.raw_data = onnx.numpy_helper.to_array(t).tobytes()
                del t.float_data[:]
                del t.double_data[:]
                del t.int32_data[:]
            set_external_data(t, location=data)
    onnx.save_model(model_proto, str(path))   # writes the external tensors in graph order
    os.chmod(path.parent / data, 0o644)   # onnx creates it 0600


def export_dynamo(model, x, path: Path, opset: int, *, dynamic: bool = False) -> None:
    kwargs = {}
    if dynamic:
        batch = torch.export.Dim("batch", min=1, max=1024)
        kwargs["dynamic_shapes"] = {"x": {0: batch}}   # ResNet.forward(self, x)
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td) / path.name
        prog = torch.onnx.export(model, (x,), None, dynamo=True, opset_version=opset,
                                 input_names=["input"], output_names=["output"], **kwargs)
        prog.save(str(tmp), external_data=True)
        # The exporter keeps small tensors inline; re-save with every initializer external.
        proto = onnx.load(str(tmp), load_external_data=True)
    save_external(proto, path)


def make_tiny() -> None:
    TINY.mkdir(parents=True, exist_ok=True)
    for p in TINY.iterdir():
        if p.suffix in (".onnx", ".data", ".npy"):
            p.unlink()
    model = tiny_resnet()
    rng = np.random.Generator(np.random.PCG64(0))
    x1 = rng.standard_normal((1, 3, H, W), dtype=np.float32)
    x3 = rng.standard_normal((3, 3, H, W), dtype=np.float32)
    with torch.no_grad():
        y1 = model(torch.from_numpy(x1)).numpy()
        y3 = model(torch.from_numpy(x3)).numpy()
    for name, arr in [("input_b1", x1), ("output_b1", y1), ("input_b3", x3), ("output_b3", y3)]:
        np.save(TINY / f"{name}.npy", np.ascontiguousarray(arr, dtype=np.float32))
    t1 = torch.from_numpy(x1)

    static = []
    for opset in (11, 13, 17):
        p = TINY / f"ts_opset{opset}_folded.onnx"
        export_torchscript(model, t1, p, opset)
        static.append(p)
    for opset in (11, 17):
        p = TINY / f"ts_opset{opset}_bn.onnx"
        export_torchscript(model, t1, p, opset, bn=True)
        check_bn_inference(p)
        static.append(p)
    p = TINY / "dynamo_opset18.onnx"
    export_dynamo(model, t1, p, 18)
    static.append(p)

    dynamic = [TINY / "ts_opset17_dynamic.onnx", TINY / "dynamo_opset18_dynamic.onnx"]
    export_torchscript(model, t1, dynamic[0], 17, dynamic=True)
    export_dynamo(model, t1, dynamic[1], 18, dynamic=True)

    for p in static:
        check(p, x1, y1)
    for p in dynamic:
        check(p, x1, y1)
        check(p, x3, y3)
    for p in static + dynamic:
        print("   ", describe(p))
    write_tiny_readme()


def write_tiny_readme() -> None:
    text = f"""# fixtures/tiny

Made by `tools/make_fixtures.py` (pinned versions in its header and in
`tools/requirements-fixtures.txt`). The model is torchvision's `ResNet(Bottleneck, [1, 1, 1, 1],
num_classes={NUM_CLASSES})` with stem, stages and fc rebuilt by `ResNet._make_layer` at width
{BASE} (stage outputs 32/64/128/256, so every stage has a downsample), `torch.manual_seed(0)`,
kaiming-normal convs, BatchNorm weight/bias/running stats randomized (seeded), eval mode.
Input 1x3x{H}x{W}. Every model was checked in ONNX Runtime against the PyTorch output
(max |diff| <= 1e-4 + 1e-3*|ref|).

- `ts_opset11_folded.onnx` — TorchScript exporter (`dynamo=False`), opset 11, default constant folding (BN folded into Conv), static batch 1.
- `ts_opset13_folded.onnx` — same, opset 13.
- `ts_opset17_folded.onnx` — same, opset 17.
- `ts_opset11_bn.onnx` — TorchScript exporter, opset 11, `training=TrainingMode.PRESERVE, do_constant_folding=False` on the eval model: explicit inference-mode BatchNormalization nodes, initializers named by state_dict keys.
- `ts_opset17_bn.onnx` — same, opset 17.
- `ts_opset17_dynamic.onnx` — TorchScript exporter, opset 17, constant folding, `dynamic_axes` batch dim named `batch` on `input` and `output`.
- `dynamo_opset18.onnx` — `torch.onnx.export(..., dynamo=True, opset_version=18)` (torch.export + onnxscript, default `optimize=True`, which folds BN into Conv: the folded weights keep the names `<conv>.weight`, new biases are `<conv>.weight_bias`), static batch 1; avgpool+flatten appear as ReduceMean(axes [-1,-2]) + Reshape(allowzero=1); nodes carry `pkg.torch.onnx.*` metadata. Re-saved with every float initializer in the external file (integer shape/axes constants stay inline, which ONNX Runtime needs).
- `dynamo_opset18.onnx.data` — its external data (all float initializers).
- `dynamo_opset18_dynamic.onnx` — as `dynamo_opset18.onnx` with `dynamic_shapes={{"x": {{0: Dim("batch")}}}}` (dynamic batch, Reshape to [-1, 256]).
- `dynamo_opset18_dynamic.onnx.data` — its external data.
- `input_b1.npy` — float32 1x3x{H}x{W}, standard normal from `numpy.random.Generator(PCG64(0))` (first draw).
- `output_b1.npy` — float32 1x{NUM_CLASSES}, eval-mode PyTorch output for `input_b1.npy`.
- `input_b3.npy` — float32 3x3x{H}x{W}, the same generator's second draw (for the dynamic-batch models).
- `output_b3.npy` — float32 3x{NUM_CLASSES}, eval-mode PyTorch output for `input_b3.npy`.
"""
    (TINY / "README.md").write_text(text)


# --------------------------------------------------------------------------------------------
# Full-size ResNet-50, graph only
# --------------------------------------------------------------------------------------------

def make_resnet50() -> None:
    R50.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None)
    # Distinct BN tensors: otherwise the exporter de-duplicates the 212 all-ones/all-zeros BN
    # tensors into a handful of initializers plus ~200 Identity nodes, and the state_dict names
    # would be lost. (The values do not matter; materialize_resnet50.py overwrites them.)
    randomize_bn(model, seed=50)
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    with tempfile.TemporaryDirectory() as td:
        inline = Path(td) / "inline.onnx"
        torch.onnx.export(model, (x,), str(inline), dynamo=False, opset_version=17,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        check(inline, x.numpy(), model(x).detach().numpy())
        check_bn_inference(inline)
        proto = onnx.load(str(inline))
        out = Path(td) / "resnet50_bn.onnx"
        save_external(proto, out)
        # Commit only the graph; tools/materialize_resnet50.py recreates the .data at test time.
        shutil.copyfile(out, R50 / "resnet50_bn.onnx")
    (R50 / "resnet50_bn.onnx.data").unlink(missing_ok=True)
    (R50 / "README.md").write_text(
        "# fixtures/resnet50\n\n"
        "- `resnet50_bn.onnx` — `torchvision.models.resnet50(weights=None)` (BatchNorm tensors "
        "randomized so none are equal), eval mode, TorchScript exporter (`dynamo=False`), opset 17, "
        "`training=TrainingMode.PRESERVE, do_constant_folding=False` (53 explicit inference-mode "
        "BatchNormalization nodes), dynamic batch `batch` on `input`/`output`. Saved with every "
        "initializer (267, named by state_dict keys; no num_batches_tracked) as external data in "
        "`resnet50_bn.onnx.data`, which was then deleted: only the graph and each initializer's "
        "location/offset/length are committed. Made by `tools/make_fixtures.py`.\n\n"
        "`tools/materialize_resnet50.py fixtures/resnet50/resnet50_bn.onnx OUTDIR` (numpy, onnx, "
        "onnxruntime only; `tools/setup_venv.sh` installs them) writes a copy of the graph, "
        "deterministic weights at the declared offsets, and ONNX Runtime reference inputs/outputs "
        "for batch 1 and 2 into OUTDIR.\n")
    m = onnx.load(str(R50 / "resnet50_bn.onnx"), load_external_data=False)
    nbt = [i.name for i in m.graph.initializer if i.name.endswith("num_batches_tracked")]
    want = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    have = {i.name for i in m.graph.initializer}
    if want - have or any(n.op_type == "Identity" for n in m.graph.node):
        FAILURES.append(f"resnet50_bn.onnx: missing state_dict initializers {sorted(want - have)[:5]}"
                        " or Identity nodes")
    print(f"    {describe(R50 / 'resnet50_bn.onnx')}")
    print(f"    initializers: {len(m.graph.initializer)}, num_batches_tracked: {len(nbt)}, "
          f"size {os.path.getsize(R50 / 'resnet50_bn.onnx')} bytes")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=["tiny", "resnet50"], help="make only one group")
    args = ap.parse_args()
    print(f"torch {torch.__version__} torchvision {torchvision.__version__} onnx {onnx.__version__} "
          f"onnxruntime {ort.__version__}")
    if args.only in (None, "tiny"):
        make_tiny()
    if args.only in (None, "resnet50"):
        make_resnet50()
    return exit_status()


def exit_status() -> int:
    """1, after listing them, when any check of the fixtures made failed; else 0."""
    if FAILURES:
        print("\nFIXTURE CHECK FAILED:\n  " + "\n  ".join(FAILURES), file=sys.stderr)
        return 1
    print("all fixtures match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
