#!/usr/bin/env python3
# Writes the reference texts that `graft summary` is compared with: what `print(model)` and
# torchinfo print for the models tools/make_fixtures.py exports. Run by hand, from any directory:
#     .venv-torch/bin/python tools/make_summary_references.py    (with torchinfo==1.8.0 added)
# Made with torch==2.15.0 torchvision==0.29.2 torchinfo==1.8.0 (Python 3.11, CPU only; no
# pretrained weights are downloaded). make_fixtures.py's other pins apply as it is imported.
#
# Writes:
#   fixtures/tiny/reference/print_bn.txt        print(model) of make_fixtures.tiny_resnet()
#   fixtures/tiny/reference/print_folded.txt    the same model after fuse_conv_bn_eval on every
#                                               (conv, bn) pair, the BN modules then deleted:
#                                               the module tree the folded exports describe
#   fixtures/tiny/reference/torchinfo_bn.txt    torchinfo.summary at 1x3x64x64
#   fixtures/tiny/reference/torchinfo_bn_default.txt   the same with torchinfo's default columns
#   fixtures/resnet50/reference/print.txt       print(torchvision.models.resnet50(weights=None))
#   fixtures/resnet50/reference/torchinfo.txt   torchinfo.summary at 1x3x224x224
#   fixtures/resnet50/reference/torchinfo_default.txt  the same with torchinfo's default columns
# torchinfo is called as summary(model, input_size=(1, 3, H, W), col_names=("output_size",
# "num_params", "mult_adds", "trainable"), device="cpu", verbose=0), other settings default
# (depth=3, row_settings=("depth",)); the *_default files leave col_names at its default,
# ("output_size", "num_params"), which is also `graft summary --format table`'s.
"""Writes print(model) and torchinfo reference summaries for the fixture models."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchinfo
import torchvision
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures  # noqa: E402  (the models are built there; this script only describes them)

COLUMNS = ("output_size", "num_params", "mult_adds", "trainable")


def torchinfo_text(model: nn.Module, height: int, width: int, columns=COLUMNS) -> str:
    stats = torchinfo.summary(model, input_size=(1, 3, height, width), col_names=columns,
                              device="cpu", verbose=0)
    return str(stats)


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Folds every BatchNorm2d into the Conv2d registered just before it in the same parent
    (conv1/bn1, ..., downsample.0/downsample.1) and deletes the BatchNorm2d, as the ONNX
    exporters' constant folding does. (torch.ao.quantization.fuse_modules would leave an
    Identity in the BN's place, which the folded graphs do not have.)"""
    for parent in list(model.modules()):
        children = list(parent._modules.items())
        pairs = [(c, b) for (c, conv), (b, bn) in zip(children, children[1:])
                 if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)]
        for conv_name, bn_name in pairs:
            parent._modules[conv_name] = fuse_conv_bn_eval(parent._modules[conv_name],
                                                            parent._modules[bn_name])
            del parent._modules[bn_name]
    return model


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")
    print(f"wrote {path.relative_to(make_fixtures.ROOT)}")


def main() -> int:
    print(f"torch {torch.__version__} torchvision {torchvision.__version__} "
          f"torchinfo {torchinfo.__version__}")
    tiny_ref = make_fixtures.TINY / "reference"
    tiny = make_fixtures.tiny_resnet()
    write(tiny_ref / "print_bn.txt", repr(tiny))
    write(tiny_ref / "torchinfo_bn.txt", torchinfo_text(tiny, make_fixtures.H, make_fixtures.W))
    write(tiny_ref / "torchinfo_bn_default.txt",
          torchinfo_text(tiny, make_fixtures.H, make_fixtures.W, ("output_size", "num_params")))
    write(tiny_ref / "print_folded.txt", repr(fold_batch_norms(make_fixtures.tiny_resnet())))

    r50_ref = make_fixtures.R50 / "reference"
    r50 = torchvision.models.resnet50(weights=None).eval()
    write(r50_ref / "print.txt", repr(r50))
    write(r50_ref / "torchinfo.txt", torchinfo_text(r50, 224, 224))
    write(r50_ref / "torchinfo_default.txt", torchinfo_text(r50, 224, 224, ("output_size", "num_params")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
