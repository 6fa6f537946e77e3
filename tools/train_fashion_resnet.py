#!/usr/bin/env python3
# Trains the small ResNet that reduced-precision accuracy is measured on, from Fashion-MNIST
# (Debian's dataset-fashion-mnist, which tools/install_deps.sh installs), and exports it to ONNX.
# Needs the PyTorch venv (tools/setup_torch_venv.sh):
#
#     .venv-torch/bin/python tools/train_fashion_resnet.py [--data DIR] [--out fixtures/fashion/fashion_resnet.onnx]
#
# The network: a 3x3 stem of 16 channels and stride 2 (28x28 -> 14x14), then three stages of one
# torchvision BasicBlock each (16, 32, 64 channels; the last two halve the resolution through a
# strided block with a 1x1 downsample), batch norm after every convolution, global average pooling
# and a Linear to the ten classes. The strided stem and channels-last training (PyTorch's fastest
# convolutions on the CPU) keep it to about 2.5 CPU-minutes (under 4 minutes on two busy cores):
# two epochs reach about 90 % test accuracy; two runs on one machine gave the same bytes.
# Input: 1x28x28, pixel / 255 normalised with the training split's mean and std (written into
# the model's metadata; tools/materialize_fashion.py normalises the test split with them).
#
# Deterministic on one machine: seeded, torch.use_deterministic_algorithms(True), a fixed thread
# count, a fixed number of epochs and a seeded shuffle. Float sums still differ between CPUs, so
# the weights of another machine differ slightly: the committed ONNX file is the fixture, and this
# script is its recipe. The ONNX (opset 17, batch dynamic, batch norm folded into the
# convolutions by the exporter) carries in its metadata_props, as JSON: the recipe
# (fashion.recipe), the sha256 of the four dataset files (fashion.dataset_sha256), the
# normalisation (fashion.normalization), the test accuracy PyTorch measured
# (fashion.pytorch_test_accuracy) and the class names Graft reads (graft.class_names).
"""Train a small ResNet on Fashion-MNIST deterministically and export it to ONNX."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fashion_mnist import DATA, FILES, normalized, read_idx  # noqa: E402
from materialize_resnet50 import sha256  # noqa: E402

# The dataset's classes, spelled so that each can name a folder of images (graft evaluate matches
# folders to the model's class names).
CLASSES = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
RECIPE = {
    "script": "tools/train_fashion_resnet.py v1",
    "stem": "3x3 stride 2",
    "stages": [16, 32, 64],
    "blocks_per_stage": 1,
    "seed": 0,
    "threads": 2,
    "epochs": 2,
    "batch": 128,
    "optimizer": "SGD momentum 0.9 nesterov, weight decay 5e-4 (not on batch norm or biases)",
    "lr": "one cycle, peak 0.2, 30% warm-up, cosine",
}


class FashionResNet(nn.Module):
    """Stem, one BasicBlock per stage, global average pool, Linear."""

    def __init__(self, stages: list[int], classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, stages[0], 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stages[0])
        self.relu = nn.ReLU(inplace=True)
        layers, width = [], stages[0]
        for i, channels in enumerate(stages):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or width != channels:
                downsample = nn.Sequential(nn.Conv2d(width, channels, 1, stride=stride, bias=False),
                                           nn.BatchNorm2d(channels))
            layers.append(BasicBlock(width, channels, stride, downsample))
            width = channels
        self.layers = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))
    return correct / len(x)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DATA, help="the folder of the four IDX .gz files")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "fixtures/fashion/fashion_resnet.onnx")
    args = ap.parse_args()

    torch.manual_seed(RECIPE["seed"])
    torch.set_num_threads(RECIPE["threads"])
    torch.use_deterministic_algorithms(True)
    arrays = {key: read_idx(args.data / name) for key, name in FILES.items()}
    digests = {name: sha256(args.data / name) for name in FILES.values()}
    train = arrays["train_x"].astype(np.float64) / 255
    mean, std = float(train.mean()), float(train.std())

    train_x, test_x = (torch.from_numpy(normalized(arrays[key], mean, std)) for key in ("train_x", "test_x"))
    train_y = torch.from_numpy(arrays["train_y"].astype(np.int64))
    test_y = torch.from_numpy(arrays["test_y"].astype(np.int64))

    model = FashionResNet(RECIPE["stages"]).to(memory_format=torch.channels_last)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}],
                                lr=0.2, momentum=0.9, nesterov=True)
    batch, epochs = RECIPE["batch"], RECIPE["epochs"]
    steps = (len(train_x) + batch - 1) // batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.2, total_steps=epochs * steps, pct_start=0.3)
    shuffle = torch.Generator().manual_seed(RECIPE["seed"])
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=shuffle)
        total = 0.0
        for i in range(steps):
            idx = order[i * batch:(i + 1) * batch]
            loss = loss_fn(model(train_x[idx].to(memory_format=torch.channels_last)), train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        print(f"epoch {epoch + 1}/{epochs}: loss {total / steps:.4f}, test accuracy {accuracy(model, test_x, test_y):.4f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    test_accuracy = accuracy(model, test_x, test_y)

    model.eval().to(memory_format=torch.contiguous_format)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.onnx")
    torch.onnx.export(model, (test_x[:1],), str(tmp), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    exported = onnx.load(str(tmp))
    properties = {
        "fashion.recipe": RECIPE,
        "fashion.dataset_sha256": digests,
        "fashion.normalization": {"mean": mean, "std": std, "scale": "pixel / 255"},
        "fashion.pytorch_test_accuracy": test_accuracy,
        "graft.class_names": CLASSES,
    }
    for key, value in properties.items():
        exported.metadata_props.add(key=key, value=json.dumps(value, sort_keys=True))
    onnx.checker.check_model(exported)
    onnx.save(exported, str(tmp))
    os.replace(tmp, args.out)
    print(f"PyTorch test accuracy {test_accuracy:.4f}; wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
