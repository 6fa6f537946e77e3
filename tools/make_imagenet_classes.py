#!/usr/bin/env python3
# Writes Sources/GraftTrain/Resources/imagenet_classes.txt: the 1,000 ImageNet class names in
# torchvision's order, one a line (the `categories` of its ImageNet weights' metadata, shipped
# inside the torchvision wheel; no download), or to --out. torchvision==0.29.2
# (tools/requirements-fixtures.txt); the tests regenerate it and compare.
"""Generate the ImageNet class names Graft prints for a 1000-class trunk."""

import argparse
from pathlib import Path

from torchvision.models import ResNet50_Weights

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "Sources/GraftTrain/Resources/imagenet_classes.txt")
    args = parser.parse_args()
    names = ResNet50_Weights.IMAGENET1K_V2.meta["categories"]
    assert len(names) == 1000 and not any("\n" in n for n in names)
    args.out.write_text("".join(n + "\n" for n in names), encoding="utf-8")
    print("wrote", args.out, len(names), "names")


if __name__ == "__main__":
    main()
