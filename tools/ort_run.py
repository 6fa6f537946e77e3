#!/usr/bin/env python3
# Runs an ONNX model in ONNX Runtime (CPU provider) and saves its first output: the check that
# what Graft writes is standard ONNX. Test-time tool; needs numpy and onnxruntime (.venv).
#
#     python tools/ort_run.py MODEL INPUT.npy [INPUT2.npy ...] OUTPUT.npy
#     python tools/ort_run.py --batch JOBS.txt
#
# The inputs feed the model's inputs in order (initializers listed as inputs are not counted).
# With --batch, each line of JOBS.txt is one run, its fields (MODEL, inputs, OUTPUT) separated
# by tabs; one line per job is printed, "ok" or "error: <why>" (one line), and the exit status is
# 1 when any job failed. Without --batch an error is printed to stderr with exit status 1.
"""Run an ONNX model in ONNX Runtime on .npy inputs and save the first output as .npy."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import onnxruntime as ort


def run(model: str, inputs: list[str], output: str) -> None:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if len(names) != len(inputs):
        raise ValueError(f"the model has {len(names)} inputs {names}, {len(inputs)} .npy files were given")
    feeds = {name: np.load(path) for name, path in zip(names, inputs)}
    first = session.run(None, feeds)[0]
    np.save(output, np.asarray(first))


def one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", metavar="JOBS", help="a file of tab-separated MODEL INPUT... OUTPUT lines")
    parser.add_argument("paths", nargs="*", metavar="MODEL INPUT... OUTPUT")
    args = parser.parse_args()
    if args.batch:
        failed = False
        with open(args.batch, encoding="utf-8") as jobs:
            for line in jobs:
                fields = line.rstrip("\n").split("\t")
                if fields == [""]:
                    continue
                try:
                    if len(fields) < 3:
                        raise ValueError(f"a job needs MODEL, an input and OUTPUT: {line.strip()!r}")
                    run(fields[0], fields[1:-1], fields[-1])
                    print("ok", flush=True)
                except Exception as error:  # one job's failure is reported, the batch goes on
                    failed = True
                    print(f"error: {one_line(error)}", flush=True)
        return 1 if failed else 0
    if len(args.paths) < 3:
        parser.error("give MODEL, at least one INPUT.npy and OUTPUT.npy (or --batch JOBS)")
    try:
        run(args.paths[0], args.paths[1:-1], args.paths[-1])
    except Exception as error:
        print(f"ort_run.py: {args.paths[0]}: {one_line(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
