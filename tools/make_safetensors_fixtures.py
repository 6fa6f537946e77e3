#!/usr/bin/env python3
# Makes the committed safetensors fixtures under fixtures/safetensors/. Run by hand:
#     python tools/make_safetensors_fixtures.py
# Made with (Python 3.11, CPU only): torch==2.15.0 torchvision==0.29.2 safetensors==0.7.0
# numpy==2.4.6.
#
# The files are written by safetensors' own writer (serialize_file, which safetensors.torch's
# save_file calls) with the metadata given, so the tests read what the reference wrote.
"""Builds fixtures/safetensors/: a tiny torchvision ResNet state_dict and one file of every dtype
Graft reads, with the float32/int64 tensors Graft must read from it as .npy files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open, serialize_file
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "safetensors"

NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16",
         torch.float64: "float64", torch.int64: "int64"}


def save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    flat = {key: {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                  "data": (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).contiguous().numpy().tobytes()}
            for key, t in tensors.items()}
    serialize_file(flat, str(path), metadata=metadata)


def tiny_resnet() -> dict[str, torch.Tensor]:
    """ResNet(BasicBlock, [1, 1, 1, 1]) at width 2 with 3 classes, seeded, random BatchNorm
    statistics: the recipe {"block": "BasicBlock", "layers": [1, 1, 1, 1], "base": 2,
    "num_classes": 3} of tools/check_torch_state_dict.py."""
    torch.manual_seed(0)
    m = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=3)
    m.inplanes = 2
    m.conv1 = nn.Conv2d(3, 2, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(2)
    for stage in range(4):
        setattr(m, f"layer{stage + 1}", m._make_layer(BasicBlock, 2 * 2**stage, 1, stride=1 if stage == 0 else 2))
    m.fc = nn.Linear(16, 3)
    for module in m.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.num_batches_tracked.fill_(5)
    return m.state_dict()


def every_dtype() -> dict[str, torch.Tensor]:
    """Values at the edges of each type: signed zero, subnormals, the largest finite, infinity,
    float64 values that round or overflow in float32."""
    return {
        "f32": torch.tensor([[0.1, -0.0, 1e-45], [3.4028235e38, float("inf"), -1 / 3]], dtype=torch.float32),
        "f16": torch.tensor([1.0, -0.0, 6e-8, 65504.0, float("-inf"), 0.333], dtype=torch.float16),
        "bf16": torch.tensor([[1.0, -2.5], [3.0e38, 1e-40]], dtype=torch.bfloat16),
        "f64": torch.tensor([0.1, 1e-50, 1e300, -7.25], dtype=torch.float64),
        "i64": torch.tensor([[-1, 2**40], [-2**63, 2**63 - 1]], dtype=torch.int64),
        "i64_scalar": torch.tensor(7, dtype=torch.int64),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }


def expected(t: torch.Tensor) -> np.ndarray:
    """What Graft must read: floating types as float32 (rounded to nearest), int64 as is."""
    return t.numpy() if t.dtype == torch.int64 else t.to(torch.float32).numpy()


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    save(tiny_resnet(), OUT / "resnet_tiny.safetensors", {"format": "pt"})

    tensors = every_dtype()
    save(tensors, OUT / "dtypes.safetensors", {"format": "pt", "note": "ünïcode \"quoted\"\n\ttabbed"})
    (OUT / "dtypes").mkdir()
    for key, t in tensors.items():
        np.save(OUT / "dtypes" / f"{key}.npy", expected(t))

    for path in sorted(OUT.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            print(f"{path.name}: {len(list(f.offset_keys()))} tensors, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
