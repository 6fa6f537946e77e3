#!/usr/bin/env python3
# Makes the committed HDF5 fixtures under fixtures/hdf5/. Run by hand (not in CI):
#     KERAS_BACKEND=torch python tools/make_hdf5_fixtures.py
# Made with (Python 3.11, CPU only; no pretrained weights are downloaded):
# torch==2.15.0 torchvision==0.29.2 onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6
# h5py==3.16.0 keras==3.15.1 (backend torch)
#
# PyTorch models: torchvision ResNet classes rebuilt narrow (as tools/make_fixtures.py does),
# seeded weights, randomized BatchNorm statistics, eval mode. Each state_dict is written with
# h5py exactly as a user would (`f.create_dataset(key, data=tensor.numpy())` for every key of
# `model.state_dict()`, num_batches_tracked included), next to the TorchScript ONNX export of
# the same model and PyTorch's output for the shared input. Every ONNX export is checked in ONNX
# Runtime against PyTorch, and every HDF5 file is loaded back into a fresh model with
# `load_state_dict(strict=True)` and must give the same output; the script exits non-zero if
# anything does not match (|d| <= 1e-4 + 1e-3*|ref|).
#
# Keras model: keras.applications' ResNet50 topology (its own ResNet() and stack functions) with
# few filters per stage, seeded weights, saved with model.save("x.h5"), and Keras's output for
# the same input in NHWC order.
"""Builds the HDF5 fixtures (PyTorch state_dicts, a Keras ResNet50, bad files)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py
import numpy as np
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

sys.path.insert(0, str(Path(__file__).resolve().parent))
# FAILURES is shared, so an ONNX export that check() finds wrong fails this script too.
from make_fixtures import ATOL, FAILURES, RTOL, check, exit_status, export_torchscript, randomize_bn  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "hdf5"
BAD = OUT / "bad"


# --------------------------------------------------------------------------------------------
# PyTorch models
# --------------------------------------------------------------------------------------------

def narrow_resnet(block, layers, base, num_classes=10, groups=1, width_per_group=64, seed=0) -> nn.Module:
    """torchvision's ResNet with the stem, stages and fc rebuilt by ResNet._make_layer at width
    `base` (stage planes base, 2*base, 4*base, 8*base); module names and forward() are
    torchvision's."""
    torch.manual_seed(seed)
    m = ResNet(block, [1, 1, 1, 1], num_classes=num_classes, groups=groups, width_per_group=width_per_group)
    m.inplanes = base
    m.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(base)
    m.layer1 = m._make_layer(block, base, layers[0])
    m.layer2 = m._make_layer(block, base * 2, layers[1], stride=2)
    m.layer3 = m._make_layer(block, base * 4, layers[2], stride=2)
    m.layer4 = m._make_layer(block, base * 8, layers[3], stride=2)
    m.fc = nn.Linear(base * 8 * block.expansion, num_classes)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
    randomize_bn(m, seed=seed + 1000)
    return m.eval()


def models() -> dict[str, nn.Module]:
    out = {}
    # ResNet-18's layout (BasicBlock [2, 2, 2, 2]): blocks with and without a downsample.
    out["basic"] = narrow_resnet(BasicBlock, [2, 2, 2, 2], base=4, seed=1)
    # ResNet-50's block (Bottleneck), one per stage.
    out["bottleneck_f16"] = narrow_resnet(Bottleneck, [1, 1, 1, 1], base=4, seed=2)
    # ResNeXt-style: groups 4, width_per_group 32 -> 3x3 convs of width 2*planes in 4 groups.
    out["resnext"] = narrow_resnet(Bottleneck, [2, 1, 1, 1], base=4, groups=4, width_per_group=32, seed=3)
    # A transfer-learning head: Sequential(Dropout, Linear, ReLU, Dropout, Linear, ReLU, Linear).
    m = narrow_resnet(BasicBlock, [1, 1, 1, 1], base=4, seed=4)
    torch.manual_seed(40)
    m.fc = nn.Sequential(nn.Dropout(0.5), nn.Linear(32, 24), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 5)).eval()
    out["fc_head"] = m
    # The smallest ResNet, the base of the bad files.
    out["tiny"] = narrow_resnet(BasicBlock, [1, 1, 1, 1], base=2, num_classes=3, seed=5)
    return out


def round_convs_to_f16(model: nn.Module) -> None:
    """The float16 fixture stores conv weights as float16: round them first, so the float32
    reference is exactly what a reader that converts float16 to float32 computes."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.Conv2d):
                mod.weight.copy_(mod.weight.half().float())


def write_state_dict(path: Path, state: dict[str, torch.Tensor], *, nested=False, dtypes=None, prefix="") -> None:
    with h5py.File(path, "w") as f:
        for key, tensor in state.items():
            array = tensor.detach().numpy()
            if dtypes:
                array = array.astype(dtypes(key, array))
            name = prefix + key
            f.create_dataset(name.replace(".", "/") if nested else name, data=array)


def f16_dtypes(key: str, array: np.ndarray):
    """Conv weights float16, running variances float64, the rest as the model has them."""
    if array.ndim == 4:
        return np.float16
    if key.endswith("running_var"):
        return np.float64
    return array.dtype


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """How a PyTorch user reads a state_dict from HDF5 (nested groups joined with dots)."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name.replace("/", ".")] = torch.from_numpy(np.asarray(obj[()])).float() \
                    if obj.dtype.kind == "f" else torch.from_numpy(np.asarray(obj[()]))
        f.visititems(visit)
    return out


def check_reload(name: str, factory, path: Path, x: torch.Tensor, ref: np.ndarray) -> None:
    fresh = factory()
    fresh.load_state_dict(read_state_dict(path), strict=True)
    with torch.no_grad():
        y = fresh.eval()(x).numpy()
    diff = np.abs(y.astype(np.float64) - ref)
    ok = bool(np.all(diff <= ATOL + RTOL * np.abs(ref)))
    print(f"{'ok  ' if ok else 'FAIL'} {path.name:34s} reloaded into PyTorch, max|diff|={diff.max():.3e}")
    if not ok:
        FAILURES.append(f"{path.name}: reloaded output differs by {diff.max():.3e}")


def make_torch(x: np.ndarray) -> None:
    t = torch.from_numpy(x)
    built = models()
    round_convs_to_f16(built["bottleneck_f16"])
    for name, model in built.items():
        with torch.no_grad():
            y = model(t).numpy()
        if name != "tiny":
            np.save(OUT / f"{name}.output_b1.npy", y.astype(np.float32))
            onnx_path = OUT / f"{name}.onnx"
            export_torchscript(model, t, onnx_path, 17, bn=True, dynamic=True)
            check(onnx_path, x, y)
        state = model.state_dict()
        files = {
            "basic": [("basic_flat.h5", {}), ("basic_nested.h5", {"nested": True})],
            "bottleneck_f16": [("bottleneck_f16.h5", {"dtypes": f16_dtypes})],
            "resnext": [("resnext.h5", {})],
            "fc_head": [("fc_head.h5", {})],
            "tiny": [("tiny.h5", {}), ("tiny_module_prefix.h5", {"prefix": "module."})],
        }[name]
        for file, options in files:
            write_state_dict(OUT / file, state, **options)
            if not options.get("prefix"):
                check_reload(name, lambda: fresh_copy(model), OUT / file, t, y.astype(np.float64))
        if name == "tiny":
            make_bad(state)


def fresh_copy(model: nn.Module) -> nn.Module:
    """A model of the same architecture with other weights, to load a state_dict into."""
    import copy
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    return other


def make_bad(state: dict[str, torch.Tensor]) -> None:
    BAD.mkdir(parents=True, exist_ok=True)
    base = {k: v.detach().numpy() for k, v in state.items()}

    def write(name: str, entries: dict) -> None:
        with h5py.File(BAD / name, "w") as f:
            for k, v in entries.items():
                f.create_dataset(k, data=v)

    write("missing_key.h5", {k: v for k, v in base.items() if k != "layer1.0.bn1.running_var"})
    write("extra_key.h5", {**base, "decoder.weight": np.zeros((3, 3), np.float32)})
    write("many_wrong_keys.h5", {**{k: v for k, v in base.items() if not k.startswith("layer3.0.bn2.") and k != "fc.bias"},
                                 "layer5.0.conv1.weight": np.zeros((2, 2, 3, 3), np.float32),
                                 "head.weight": np.zeros((3, 16), np.float32)})
    write("wrong_shape.h5", {**base, "fc.weight": np.zeros((3, 15), np.float32)})
    write("wrong_rank.h5", {**base, "layer2.0.conv1.weight": base["layer2.0.conv1.weight"].reshape(4, -1)})
    write("int_weight.h5", {**base, "layer1.0.conv2.weight": base["layer1.0.conv2.weight"].astype(np.int32)})
    write("string_dataset.h5", {**base, "bn1.bias": np.array([b"a", b"b"])})
    write("unknown_layout.h5", {"encoder.weight": np.zeros((4, 4), np.float32), "encoder.bias": np.zeros(4, np.float32)})
    write("empty.h5", {})
    # Files that claim to be Graft's own layout but are not readable as such.
    for name, version, record in [("graft_future_version.h5", 2, "{}"), ("graft_bad_record.h5", 1, '{"name": "g"}')]:
        with h5py.File(BAD / name, "w") as f:
            f.attrs["graft_format_version"] = np.int64(version)
            f.attrs["graft_graph"] = record


# --------------------------------------------------------------------------------------------
# Keras
# --------------------------------------------------------------------------------------------

def keras_resnet50_small(x: np.ndarray):
    """keras.applications' ResNet50 (ResNet() with stack_residual_blocks_v1 stages of 3, 4, 6, 3
    blocks, stride 2 on each stage's first 1x1 conv, conv biases, BN epsilon 1.001e-5, softmax
    top) with 2/4/8/16 filters instead of 64/128/256/512, and 10 classes."""
    import keras
    from keras.src.applications import resnet

    keras.utils.set_random_seed(0)

    def stack_fn(x):
        x = resnet.stack_residual_blocks_v1(x, 2, 3, stride1=1, name="conv2")
        x = resnet.stack_residual_blocks_v1(x, 4, 4, name="conv3")
        x = resnet.stack_residual_blocks_v1(x, 8, 6, name="conv4")
        return resnet.stack_residual_blocks_v1(x, 16, 3, name="conv5")

    model = resnet.ResNet(stack_fn, preact=False, use_bias=True, weights=None, input_shape=(224, 224, 3),
                          classes=10, name="resnet50")
    rng = np.random.Generator(np.random.PCG64(7))
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        cls = type(layer).__name__
        if cls == "Conv2D":
            kernel, bias = weights
            fan_out = kernel.shape[0] * kernel.shape[1] * kernel.shape[3]
            new = [rng.standard_normal(kernel.shape) * np.sqrt(2.0 / fan_out), rng.standard_normal(bias.shape) * 0.05]
        elif cls == "BatchNormalization":
            c = weights[0].shape
            gain = 0.7 if layer.name.endswith(("_3_bn", "_0_bn")) else 1.0
            new = [rng.uniform(0.5, 1.5, c) * gain, rng.standard_normal(c) * 0.05,
                   rng.standard_normal(c) * 0.05, rng.uniform(0.5, 1.5, c)]
        elif cls == "Dense":
            kernel, bias = weights
            new = [rng.standard_normal(kernel.shape), rng.standard_normal(bias.shape) * 0.1]
        else:
            raise ValueError(f"unexpected weights in {layer.name} ({cls})")
        layer.set_weights([w.astype(np.float32) for w in new])
    # Scale the classifier so the logits have unit spread on the fixture input: the softmax output
    # is then neither one-hot nor flat, and a wrong feature shows in it.
    features = keras.Model(model.input, model.get_layer("avg_pool").output)
    f = keras.ops.convert_to_numpy(features(np.transpose(x, (0, 2, 3, 1)), training=False))
    dense = model.get_layer("predictions")
    kernel, bias = dense.get_weights()
    spread = float(np.std(f @ kernel))
    dense.set_weights([kernel / np.float32(spread), bias])
    return model


def make_keras(x: np.ndarray) -> None:
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    model = keras_resnet50_small(x)
    print(f"     keras_resnet50: {model.count_params()} parameters")
    path = OUT / "keras_resnet50.h5"
    path.unlink(missing_ok=True)
    model.save(str(path))
    y = keras.ops.convert_to_numpy(model(np.transpose(x, (0, 2, 3, 1)), training=False))
    np.save(OUT / "keras_resnet50.output_b1.npy", y.astype(np.float32))
    reloaded = keras.saving.load_model(str(path), compile=False)
    y2 = keras.ops.convert_to_numpy(reloaded(np.transpose(x, (0, 2, 3, 1)), training=False))
    diff = float(np.abs(y2 - y).max())
    print(f"{'ok  ' if diff == 0 else 'FAIL'} {path.name:34s} reloaded into Keras, max|diff|={diff:.3e}, "
          f"output {np.array2string(y[0], precision=3)}, {len(model.layers)} layers")
    if diff != 0:
        FAILURES.append(f"{path.name}: Keras reload differs by {diff}")
    # A layer class Graft does not translate.
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    h = keras.layers.LayerNormalization(name="norm")(h)
    outputs = keras.layers.Dense(2, name="dense")(keras.layers.GlobalAveragePooling2D(name="pool")(h))
    keras.Model(inputs, outputs).save(str(BAD / "keras_unsupported_layer.h5"))
    # What save_weights wrote in Keras 2: layer groups at the root, no model_config.
    with h5py.File(BAD / "keras_weights_only.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def write_readme() -> None:
    (OUT / "README.md").write_text("""# fixtures/hdf5

Made by `tools/make_hdf5_fixtures.py` (pinned versions in its header). PyTorch models are
torchvision's `ResNet` classes with stem, stages and fc rebuilt by `ResNet._make_layer` at a small
width, seeded kaiming-normal convs, randomized BatchNorm statistics, eval mode. Each `.h5` is
`model.state_dict()` written with h5py, one dataset per key (num_batches_tracked included), and
was loaded back into PyTorch with `load_state_dict(strict=True)` to the same output. Each `.onnx`
is the TorchScript export (`dynamo=False`, opset 17, `training=TrainingMode.PRESERVE,
do_constant_folding=False`, dynamic batch `batch`) of the same model, checked in ONNX Runtime.

- `input_b1.npy` — float32 1x3x224x224, standard normal from `numpy.random.Generator(PCG64(0))`; the input of every reference (NCHW; the Keras reference got its NHWC transpose).
- `basic_flat.h5`, `basic_nested.h5` — `ResNet(BasicBlock, [2, 2, 2, 2])` (ResNet-18's layout) at width 4, 10 classes; flat dotted names, and nested groups (`layer1/0/conv1/weight`). `basic.onnx`, `basic.output_b1.npy`.
- `bottleneck_f16.h5` — `ResNet(Bottleneck, [1, 1, 1, 1])` at width 4, 10 classes; conv weights stored as float16 (rounded to float16 in the model first), running variances as float64, the rest float32. `bottleneck_f16.onnx`, `bottleneck_f16.output_b1.npy`.
- `resnext.h5` — `ResNet(Bottleneck, [2, 1, 1, 1], groups=4, width_per_group=32)` at width 4 (grouped 3x3 convs, ResNeXt-style). `resnext.onnx`, `resnext.output_b1.npy`.
- `fc_head.h5` — `ResNet(BasicBlock, [1, 1, 1, 1])` at width 4 with `fc = Sequential(Dropout, Linear(32, 24), ReLU, Dropout, Linear(24, 16), ReLU, Linear(16, 5))` (keys `fc.1`, `fc.4`, `fc.6`). `fc_head.onnx`, `fc_head.output_b1.npy`.
- `tiny.h5` — `ResNet(BasicBlock, [1, 1, 1, 1])` at width 2, 3 classes: the base of `bad/`. `tiny_module_prefix.h5` — the same with every key prefixed `module.` (as saved from `nn.DataParallel`).
- `keras_resnet50.h5` — keras.applications' ResNet50 topology (`resnet.ResNet` with `stack_residual_blocks_v1` stages of 3, 4, 6, 3 blocks) at 2/4/8/16 filters, 10 classes, softmax top, seeded weights, saved with `model.save()` (legacy HDF5: `model_config` + `model_weights`). `keras_resnet50.output_b1.npy` — Keras's output (torch backend) for `input_b1.npy` transposed to NHWC.
- `bad/missing_key.h5` (no `layer1.0.bn1.running_var`), `bad/extra_key.h5` (plus `decoder.weight`), `bad/many_wrong_keys.h5` (no `layer3.0.bn2.*` nor `fc.bias`, plus `layer5.0.conv1.weight` and `head.weight`), `bad/wrong_shape.h5` (`fc.weight` 3x15), `bad/wrong_rank.h5` (`layer2.0.conv1.weight` reshaped to 2-D), `bad/int_weight.h5` (`layer1.0.conv2.weight` int32), `bad/string_dataset.h5` (`bn1.bias` strings), `bad/unknown_layout.h5` (`encoder.*` only), `bad/empty.h5` (no datasets) — `tiny.h5` spoiled one way each; `bad/keras_weights_only.h5` — the Keras model's weights as Keras 2's `save_weights` wrote them (no `model_config`); `bad/keras_unsupported_layer.h5` — a small Keras model with a LayerNormalization; `bad/graft_future_version.h5` (`graft_format_version` 2), `bad/graft_bad_record.h5` (a `graft_graph` that lacks most fields).
""")


def main() -> int:
    import onnx
    import onnxruntime
    import torchvision
    import keras
    print(f"torch {torch.__version__} torchvision {torchvision.__version__} onnx {onnx.__version__} "
          f"onnxruntime {onnxruntime.__version__} h5py {h5py.__version__} keras {keras.__version__} "
          f"({keras.backend.backend()})")
    OUT.mkdir(parents=True, exist_ok=True)
    for p in list(OUT.glob("*")) + list(BAD.glob("*")):
        if p.is_file():
            p.unlink()
    BAD.mkdir(parents=True, exist_ok=True)
    rng = np.random.Generator(np.random.PCG64(0))
    x = rng.standard_normal((1, 3, 224, 224), dtype=np.float32)
    np.save(OUT / "input_b1.npy", x)
    make_torch(x)
    make_keras(x)
    write_readme()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"fixtures/hdf5: {total} bytes")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
