#!/usr/bin/env python3
# Exports torchvision's ResNet-50 to ONNX for Graft, as the README describes:
#
#     python tools/export_resnet50.py --pretrained resnet50.onnx   # ImageNet weights (downloads them once)
#     python tools/export_resnet50.py resnet50_random.onnx          # seeded random weights, offline
#
# TorchScript exporter, opset 17, explicit BatchNormalization (training=PRESERVE,
# do_constant_folding=False) so the state_dict names and PyTorch's parameter count survive,
# dynamic batch. Needs torch and torchvision (tools/requirements-fixtures.txt); Graft itself
# needs neither.
"""Export torchvision ResNet-50 to ONNX."""

import argparse

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("output")
    ap.add_argument("--pretrained", action="store_true", help="torchvision's IMAGENET1K_V2 weights (needs internet once)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V2 if args.pretrained else None
    model = torchvision.models.resnet50(weights=weights).eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, (x,), args.output, dynamo=False, opset_version=17,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    print(f"wrote {args.output} ({'ImageNet' if args.pretrained else 'random'} weights)")


if __name__ == "__main__":
    main()
