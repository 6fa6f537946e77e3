#!/usr/bin/env python3
# Side-by-side benchmark: ONNX Runtime (CPU provider, ORT_ENABLE_ALL) and `graft bench` on the
# same ONNX model, in the same run, alternating rounds; prints each figure with Graft/ORT.
#
#     .venv/bin/python tools/bench_vs_ort.py MODEL [--batch B] [--threads T] [--rounds N] [--runs R]
#
# Each side runs in its own process (so peak resident memory is its own), on the same seeded
# input shape; a round is one ORT process then one graft process (or the reverse, alternating).
# Figures are the medians over rounds of each process's own median.
"""Benchmark graft against ONNX Runtime side by side."""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ort_worker(model, batch, threads, runs, warmup):
    """Runs inside its own process: load, warm up, time, print JSON."""
    import numpy as np
    import onnxruntime as ort

    t0 = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    load = time.perf_counter() - t0
    inp = session.get_inputs()[0]
    shape = [batch if not isinstance(d, int) or i == 0 else d for i, d in enumerate(inp.shape)]
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    for _ in range(warmup):
        session.run(None, {inp.name: x})
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, {inp.name: x})
        samples.append(time.perf_counter() - t)
    samples.sort()
    p50 = statistics.median(samples)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"load_seconds": load, "p50_ms": p50 * 1000, "min_ms": samples[0] * 1000,
                      "throughput": batch / p50, "peak_resident_mb": peak}))


def run_ort(args):
    out = subprocess.run([sys.executable, __file__, "--ort-worker", args.model, "--batch", str(args.batch),
                          "--threads", str(args.threads), "--runs", str(args.runs), "--warmup", str(args.warmup)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def run_graft(args):
    out = subprocess.run([str(args.graft), "bench", args.model, "--batch", str(args.batch), "--threads", str(args.threads),
                          "--runs", str(args.runs), "--warmup", str(args.warmup), "--json"],
                         check=True, capture_output=True, text=True)
    g = json.loads(out.stdout)
    return {"load_seconds": g["load_seconds"], "p50_ms": g["latency_ms"]["p50"], "min_ms": g["latency_ms"]["min"],
            "throughput": g["throughput_images_per_second"], "peak_resident_mb": g["peak_resident_mb"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--graft", type=Path, default=ROOT / ".build/release/graft")
    ap.add_argument("--ort-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ort_worker:
        ort_worker(args.model, args.batch, args.threads, args.runs, args.warmup)
        return
    results = {"ort": [], "graft": []}
    for r in range(args.rounds):
        order = [("ort", run_ort), ("graft", run_graft)]
        if r % 2:
            order.reverse()
        for name, fn in order:
            results[name].append(fn(args))
    med = {side: {k: statistics.median(x[k] for x in runs) for k in runs[0]} for side, runs in results.items()}
    print(f"model {args.model}: batch {args.batch}, {args.threads} threads, {args.rounds} alternating rounds of {args.runs} runs")
    print(f"{'figure':28} {'ONNX Runtime':>14} {'Graft':>14} {'Graft/ORT':>10}")
    rows = [("latency p50 (ms)", "p50_ms"), ("latency min (ms)", "min_ms"), ("throughput (images/s)", "throughput"),
            ("peak resident memory (MB)", "peak_resident_mb"), ("load (s)", "load_seconds")]
    for label, key in rows:
        o, g = med["ort"][key], med["graft"][key]
        print(f"{label:28} {o:14.2f} {g:14.2f} {g / o:10.2f}")


if __name__ == "__main__":
    main()
