#!/usr/bin/env bash
# Creates .venv in the repository root with the test-time Python tools
# (tools/requirements-test.txt: numpy, onnx, onnxruntime, h5py, openvino; no torch).
# Idempotent: .venv/.stamp holds the sha256 of the requirements it was built from; when it
# matches, the script returns at once. PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
req=tools/requirements-test.txt
venv=.venv
stamp=$venv/.stamp
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    exit 0
fi
if [[ ! -x $venv/bin/python ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
rm -f "$stamp"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/python" -c "import numpy, onnx, onnxruntime, onnxruntime.quantization, h5py, openvino"
echo "$want" > "$stamp"
echo "set up $venv ($("$venv/bin/python" --version), $(sed -n 's/^\([a-z].*==.*\)$/\1/p' "$req" | tr '\n' ' '))"
