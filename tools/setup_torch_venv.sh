#!/usr/bin/env bash
# Creates .venv-torch in the repository root with PyTorch, torchvision, safetensors and h5py: the
# references the checkpoint tests (`.pth` and safetensors files read and written by Graft,
# checked against torch.load and safetensors) and `make bench`'s training comparison
# (tools/bench_train_vs_torch.py) run against. Pins: tools/requirements-fixtures.txt. PyPI's
# Linux torch wheel brings its CUDA libraries along (about 5 GB installed); only the CPU is used.
# Kept apart from .venv (numpy, onnx, onnxruntime, h5py), which has no torch.
# Idempotent: .venv-torch/.stamp holds the sha256 of the pins it was built from; when it matches,
# the script returns at once. PYTHON picks the interpreter for the venv (default python3).
# TORCH_PYTHON=/path/to/python names an interpreter that already has these packages instead: the
# script checks its versions and creates nothing (the Makefile then runs the tools with it).
set -euo pipefail
cd "$(dirname "$0")/.."
pins=$(grep -E '^(torch|torchvision|safetensors|packaging|onnx|numpy|pillow|h5py)==' tools/requirements-fixtures.txt)
check='import sys, importlib.metadata as m
want = dict(line.split("==") for line in sys.argv[1].split())
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return "missing"
have = {name: version(name) for name in want}
bad = [f"{n} {have[n]}" for n, v in want.items() if have[n].split("+")[0] != v]
if bad: sys.exit("the PyTorch tools need " + ", ".join(sorted(f"{n}=={v}" for n, v in want.items())) + "; this Python has " + ", ".join(bad))
import torch, torchvision, safetensors.torch, onnx, numpy, PIL, h5py'
if [[ -n ${TORCH_PYTHON:-} && $TORCH_PYTHON != .venv-torch/bin/python ]]; then
    "$TORCH_PYTHON" -c "$check" "$pins"
    exit 0
fi
venv=.venv-torch
stamp=$venv/.stamp
want=$(echo "$pins" | sha256sum | cut -d' ' -f1)
if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    exit 0
fi
if [[ ! -x $venv/bin/python ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
rm -f "$stamp"
# shellcheck disable=SC2086 # one pin per word
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check $pins
"$venv/bin/python" -c "$check" "$pins"
echo "$want" > "$stamp"
echo "set up $venv ($("$venv/bin/python" --version), $(echo $pins))"
