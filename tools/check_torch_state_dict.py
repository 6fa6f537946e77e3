#!/usr/bin/env python3
# Checks a state_dict file Graft wrote with PyTorch and safetensors themselves; the tests run it
# with the project's PyTorch venv (GRAFT_TORCH_PYTHON). Tested with torch==2.15.0
# torchvision==0.29.2 safetensors==0.7.0 numpy==2.4.6.
"""Loads FILE (.pth with torch.load(weights_only=True), .safetensors with safetensors, .h5 with
h5py as a PyTorch user reads a state_dict from it: every dataset at the root, by name) and
compares every key (in order), dtype, shape and value exactly with a reference.

    check_torch_state_dict.py FILE [--reference REF] [--same-as-torch-save] [--torchvision-arch JSON [--input X --expect Y]]

REF is a .pth or .safetensors file (loaded the same way), or a folder holding keys.txt (one key
per line, in order) and the tensors as 0.npy, 1.npy, ...

--same-as-torch-save: FILE (a .pth) must be byte for byte what torch.save writes for the state_dict
it holds, but for the 40 digits of .data/serialization_id (and their CRC).

--torchvision-arch '{"block": "BasicBlock", "layers": [1, 1, 1, 1], "base": 2, "num_classes": 3}'
(optional "groups", "width_per_group"; "base" 64 is torchvision's own width; "head": [64, 32] for
the classifier `graft train` grafts, Sequential(Dropout, Linear, ReLU, ..., Linear, LogSoftmax)):
the state_dict must load into that torchvision ResNet with load_state_dict(strict=True).

--input X.npy --expect Y.npy (with --torchvision-arch): the model so loaded, in eval mode, must
map X to Y within 1e-4 + 1e-3 * |output|.

Exits 1 with a one-line message at the first difference.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet


def fail(message: str) -> None:
    print(f"check_torch_state_dict: {message}", file=sys.stderr)
    sys.exit(1)


def load(path: Path) -> dict[str, torch.Tensor]:
    if path.is_dir():
        keys = (path / "keys.txt").read_text(encoding="utf-8").splitlines()
        return {key: torch.from_numpy(np.load(path / f"{i}.npy")) for i, key in enumerate(keys)}
    if path.suffix == ".safetensors":
        # The header's order: offset order leaves empty tensors (which share an offset) unordered.
        with path.open("rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        # safe_open is what safetensors.torch.load_file runs, without its extra imports.
        with safe_open(str(path), framework="pt") as f:
            return {key: f.get_tensor(key) for key in header if key != "__metadata__"}
    if path.suffix == ".h5":
        import h5py
        with h5py.File(path, "r") as f:
            return {key: torch.from_numpy(np.asarray(value[()])) for key, value in f.items() if isinstance(value, h5py.Dataset)}
    return torch.load(path, weights_only=True)


def raw(t: torch.Tensor) -> bytes:
    t = t.contiguous()
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()


def compare(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    if list(actual) != list(expected):
        fail(f"keys differ: {list(actual)} vs the reference's {list(expected)}")
    for key, a in actual.items():
        e = expected[key]
        if a.dtype != e.dtype or a.shape != e.shape:
            fail(f"{key}: {a.dtype} {list(a.shape)} vs the reference's {e.dtype} {list(e.shape)}")
        if raw(a) != raw(e):
            fail(f"{key}: values differ from the reference's")


def masked(path: Path) -> bytes:
    """The file's bytes with the serialization id record's digits and CRC zeroed."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        directory = z.start_dir
    last = infos[-1]
    if not last.filename.endswith("/.data/serialization_id"):
        fail(f"the last record is {last.filename}, not .data/serialization_id")
    h = last.header_offset
    name_length, extra_length = struct.unpack("<HH", data[h + 26:h + 30])
    start = h + 30 + name_length + extra_length
    data[start:start + last.file_size] = b"0" * last.file_size
    data[start + last.file_size + 4:start + last.file_size + 8] = bytes(4)  # the data descriptor's CRC
    for _ in infos[:-1]:
        n, e, c = struct.unpack("<HHH", data[directory + 28:directory + 34])
        directory += 46 + n + e + c
    data[directory + 16:directory + 20] = bytes(4)  # the central directory's CRC
    return bytes(data)


def same_as_torch_save(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        theirs = Path(folder) / path.name  # torch names the archive's folder after the file
        torch.save(state_dict, theirs)
        a, b = masked(path), masked(theirs)
    if a != b:
        at = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        fail(f"{path.name} differs from torch.save's file at byte {at} ({len(a)} vs {len(b)} bytes)")


def torchvision_resnet(recipe: dict) -> nn.Module:
    """torchvision's ResNet with its stem, stages and fc rebuilt at width `base`."""
    block = {"BasicBlock": BasicBlock, "Bottleneck": Bottleneck}[recipe["block"]]
    base = recipe.get("base", 64)
    m = ResNet(block, [1, 1, 1, 1], num_classes=recipe["num_classes"],
               groups=recipe.get("groups", 1), width_per_group=recipe.get("width_per_group", 64))
    m.inplanes = base
    m.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(base)
    for stage, blocks in enumerate(recipe["layers"]):
        setattr(m, f"layer{stage + 1}", m._make_layer(block, base * 2**stage, blocks, stride=1 if stage == 0 else 2))
    width = base * 8 * block.expansion
    if "head" in recipe:
        layers: list[nn.Module] = []
        for hidden in recipe["head"]:
            layers += [nn.Dropout(0.5), nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        m.fc = nn.Sequential(*layers, nn.Linear(width, recipe["num_classes"]), nn.LogSoftmax(dim=1))
    else:
        m.fc = nn.Linear(width, recipe["num_classes"])
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--same-as-torch-save", action="store_true")
    parser.add_argument("--torchvision-arch", type=json.loads)
    parser.add_argument("--input", type=Path)
    parser.add_argument("--expect", type=Path)
    args = parser.parse_args()

    actual = load(args.file)
    if args.reference is not None:
        compare(actual, load(args.reference))
    if args.same_as_torch_save:
        same_as_torch_save(args.file, actual)
    if args.torchvision_arch:
        model = torchvision_resnet(args.torchvision_arch)
        try:
            model.load_state_dict(actual, strict=True)
        except RuntimeError as error:
            fail(" ".join(str(error).split()))
        if args.input is not None:
            with torch.no_grad():
                y = model.eval()(torch.from_numpy(np.load(args.input))).numpy().astype(np.float64)
            expected = np.load(args.expect).astype(np.float64)
            if y.shape != expected.shape:
                fail(f"PyTorch's output is {list(y.shape)}, expected {list(expected.shape)}")
            diff = np.abs(y - expected)
            if not np.all(diff <= 1e-4 + 1e-3 * np.abs(y)):
                fail(f"PyTorch's output differs from {args.expect.name} by up to {diff.max():.3e}")
            print(f"PyTorch's output matches {args.expect.name}: max |diff| {diff.max():.3e}")
    print(f"{args.file.name}: {len(actual)} tensors match")


if __name__ == "__main__":
    main()
