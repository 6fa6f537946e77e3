#!/usr/bin/env python3
# Writes the full-size ResNet-50 that tools/materialize_resnet50.py materialized as the files
# PyTorch users have: its weights loaded into torchvision's resnet50() with
# load_state_dict(strict=True), then saved by PyTorch itself. Runs at test time (`make
# fixtures`) with the project's PyTorch venv (tools/setup_torch_venv.sh; pins in
# tools/requirements-fixtures.txt: torch 2.15.0, torchvision 0.29.2, safetensors 0.7.0).
#
#     .venv-torch/bin/python tools/materialize_resnet50_checkpoints.py OUTDIR
#
# Reads OUTDIR/resnet50_bn.onnx (+ .data) and OUTDIR/input_b1.npy, output_b1.npy; writes into OUTDIR:
#   resnet50.pth                 torch.save(model.state_dict()), the zip format
#   resnet50_legacy.pth          the same with _use_new_zipfile_serialization=False
#   resnet50_checkpoint.pth      {"epoch": 3, "model_state_dict": ..., "optimizer_state_dict": ...}
#                                with nn.DataParallel's "module." prefixes (a training script's file)
#   resnet50.safetensors         safetensors.torch.save_file(model.state_dict())
#   torch_output_b1.npy          PyTorch's output for input_b1.npy
#   checkpoints.sha256           what they were made from; when it matches, nothing is redone
# Exits non-zero when PyTorch's output differs from ONNX Runtime's (output_b1.npy) by more than
# 1e-4 + 1e-3 * |ref|: the weights did not go where torchvision has them.
"""Save the materialized ResNet-50 with PyTorch as .pth (zip, legacy, checkpoint) and safetensors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import safetensors.torch
import torch
import torchvision
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from materialize_resnet50 import sha256  # noqa: E402

RECIPE = "materialize_resnet50_checkpoints v1"
OUTPUTS = ["resnet50.pth", "resnet50_legacy.pth", "resnet50_checkpoint.pth", "resnet50.safetensors", "torch_output_b1.npy"]


def main() -> int:
    out = Path(sys.argv[1])
    source = out / "resnet50_bn.onnx"
    stamp = out / "checkpoints.sha256"
    stamp_text = f"{sha256(source)} {sha256(out / 'resnet50_bn.onnx.data')}\n{RECIPE}\n"
    if stamp.exists() and stamp.read_text() == stamp_text and all((out / o).exists() for o in OUTPUTS):
        return 0
    stamp.unlink(missing_ok=True)

    model = onnx.load(str(source), load_external_data=True)
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    net = torchvision.models.resnet50()
    state = net.state_dict()
    missing = [k for k in state if k not in weights and not k.endswith("num_batches_tracked")]
    if missing:
        sys.exit(f"{source}: the initializers lack {missing[:5]}")
    net.load_state_dict({k: weights.get(k, v) for k, v in state.items()}, strict=True)
    net.eval()

    x = torch.from_numpy(np.load(out / "input_b1.npy"))
    with torch.no_grad():
        y = net(x).numpy()
    ref = np.load(out / "output_b1.npy")
    diff = np.abs(y.astype(np.float64) - ref)
    if not np.all(diff <= 1e-4 + 1e-3 * np.abs(ref)):
        sys.exit(f"PyTorch's output differs from ONNX Runtime's by {diff.max():.3e}")
    np.save(out / "torch_output_b1.npy", y.astype(np.float32))

    sd = net.state_dict()
    torch.save(sd, out / "resnet50.pth")
    torch.save(sd, out / "resnet50_legacy.pth", _use_new_zipfile_serialization=False)
    parallel = torch.nn.DataParallel(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    torch.save({"epoch": 3, "model_state_dict": parallel.state_dict(), "optimizer_state_dict": optimizer.state_dict()},
               out / "resnet50_checkpoint.pth")
    safetensors.torch.save_file(sd, str(out / "resnet50.safetensors"), metadata={"format": "pt"})
    stamp.write_text(stamp_text)
    print(f"saved ResNet-50 as .pth (zip, legacy, checkpoint) and safetensors in {out}; "
          f"PyTorch vs ONNX Runtime max |diff| {diff.max():.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
