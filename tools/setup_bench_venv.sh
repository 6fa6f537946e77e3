#!/usr/bin/env bash
# Creates .venv-bench in the repository root with PyTorch for `make bench`'s training comparison
# (tools/bench_train_vs_torch.py): torch, torchvision, onnx (to read the model's weights), numpy
# and pillow at the versions of tools/requirements-fixtures.txt, from PyPI. PyPI's Linux torch
# wheel brings its CUDA libraries along (about 5 GB installed); the benchmark uses the CPU only.
# Kept apart from .venv, which the tests use and which has no torch.
# Idempotent: .venv-bench/.stamp holds the sha256 of the pins it was built from; when it matches,
# the script returns at once. PYTHON picks the interpreter for the venv (default python3).
# BENCH_PYTHON=/path/to/python names an interpreter that already has these packages instead: the
# script checks its versions and creates nothing (the Makefile then runs the benchmark with it).
set -euo pipefail
cd "$(dirname "$0")/.."
pins=$(grep -E '^(torch|torchvision|onnx|numpy|pillow)==' tools/requirements-fixtures.txt)
check='import sys, importlib.metadata as m
want = dict(line.split("==") for line in sys.argv[1].split())
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return "missing"
have = {name: version(name) for name in want}
bad = [f"{n} {have[n]}" for n, v in want.items() if have[n].split("+")[0] != v]
if bad: sys.exit("the benchmark needs " + ", ".join(sorted(f"{n}=={v}" for n, v in want.items())) + "; this Python has " + ", ".join(bad))
import torch, torchvision, onnx, numpy, PIL'
if [[ -n ${BENCH_PYTHON:-} && $BENCH_PYTHON != .venv-bench/bin/python ]]; then
    "$BENCH_PYTHON" -c "$check" "$pins"
    exit 0
fi
venv=.venv-bench
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
