#!/usr/bin/env python3
# Side-by-side benchmark of Graft and its peers on the same model, same cores, same run:
# `graft bench` (each configuration of GRAFT), ONNX Runtime (CPU provider, ORT_ENABLE_ALL) and
# OpenVINO (CPU plugin, latency hint) in f32, OpenVINO with its default precision (on CPUs with
# bf16 instructions it may pick bf16; the row says what it picked), and ONNX Runtime and OpenVINO
# on an int8 QDQ model of the same network (tools/materialize_fashion.py makes it).
#
#     .venv/bin/python tools/bench_peers.py MODEL [--int8 QDQ_MODEL] [--batch B] [--threads T] [--rounds N] [--runs R]
#
# Each engine runs in its own process (so peak resident memory and load time are its own), on
# the same seeded input; a round runs every engine once, the order rotated from round to round.
# Figures are the medians over rounds of each process's own median. Ratios are latencies against
# Graft's first configuration and against the fastest peer of the same precision (a ratio below
# 1 is faster). The last line is the configuration's row of the README's table.
"""Benchmark Graft against ONNX Runtime and OpenVINO side by side."""

from __future__ import annotations

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

def cpu_flags() -> set[str]:
    """The processor's flags as /proc/cpuinfo lists them (none where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# Graft's configurations: a row name, the extra `graft bench` arguments and the model ("f32" or
# "int8"); bf16 where the processor has AVX512_BF16, int8 (on the QDQ model) where it has AVX512_VNNI.
GRAFT = ([("Graft f32", [], "f32")] + ([("Graft bf16", ["--precision", "bf16"], "f32")] if "avx512_bf16" in cpu_flags() else [])
         + ([("Graft int8", ["--precision", "int8"], "int8")] if "avx512_vnni" in cpu_flags() else []))

# The peers: a row name, the engine, the model ("f32" or "int8") and the engine's settings.
PEERS = [
    ("ONNX Runtime f32", "ort", "f32", {}),
    ("OpenVINO f32", "openvino", "f32", {"INFERENCE_PRECISION_HINT": "f32"}),
    ("OpenVINO default", "openvino", "f32", {}),
    ("ONNX Runtime int8", "ort", "int8", {}),
    ("OpenVINO int8", "openvino", "int8", {}),
]


def timed(run, batch: int, runs: int, warmup: int, load: float, precision: str) -> dict:
    """Warms up, times `runs` calls of `run` and returns the figures every engine reports."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        run()
        samples.append(time.perf_counter() - t)
    p50 = statistics.median(samples)
    return {"load_seconds": load, "p50_ms": p50 * 1000, "min_ms": min(samples) * 1000, "throughput": batch / p50,
            "peak_resident_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "precision": precision}


def ort_worker(model: str, batch: int, threads: int, runs: int, warmup: int, settings: dict) -> dict:
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
    shape = [batch if i == 0 or not isinstance(d, int) else d for i, d in enumerate(inp.shape)]
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    return timed(lambda: session.run(None, {inp.name: x}), batch, runs, warmup, load, "f32")


def openvino_worker(model: str, batch: int, threads: int, runs: int, warmup: int, settings: dict) -> dict:
    import numpy as np
    import openvino as ov

    t0 = time.perf_counter()
    core = ov.Core()
    network = core.read_model(model)
    network.reshape({network.inputs[0]: [batch, *list(network.inputs[0].get_partial_shape())[1:]]})
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, **settings}
    compiled = core.compile_model(network, "CPU", config)
    load = time.perf_counter() - t0
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).standard_normal(list(compiled.inputs[0].shape), dtype=np.float32)
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    return timed(lambda: request.infer({0: x}), batch, runs, warmup, load, precision)


WORKERS = {"ort": ort_worker, "openvino": openvino_worker}


def run_peer(args, engine: str, model: str, settings: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, model, "--worker", engine, "--settings", json.dumps(settings),
                          "--batch", str(args.batch), "--threads", str(args.threads), "--runs", str(args.runs),
                          "--warmup", str(args.warmup)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def run_graft(args, model: str, extra: list[str]) -> dict:
    out = subprocess.run([str(args.graft), "bench", model, "--batch", str(args.batch), "--threads", str(args.threads),
                          "--runs", str(args.runs), "--warmup", str(args.warmup), "--json", *extra],
                         check=True, capture_output=True, text=True)
    g = json.loads(out.stdout)
    return {"load_seconds": g["load_seconds"], "p50_ms": g["latency_ms"]["p50"], "min_ms": g["latency_ms"]["min"],
            "throughput": g["throughput_images_per_second"], "peak_resident_mb": g["peak_resident_mb"],
            "precision": g["precision"], "cpu": g["cpu"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", help="the f32 ONNX model")
    ap.add_argument("--int8", help="an int8 QDQ ONNX model of the same network (without it, no int8 rows)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--graft", type=Path, default=ROOT / ".build/release/graft")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.model, args.batch, args.threads, args.runs, args.warmup,
                                              json.loads(args.settings))))
        return 0

    models = {"f32": args.model, "int8": args.int8}
    engines = [(name, lambda m=models[model], extra=extra: run_graft(args, m, extra)) for name, extra, model in GRAFT if models[model]]
    engines += [(name, lambda e=engine, m=models[model], s=settings: run_peer(args, e, m, s))
                for name, engine, model, settings in PEERS if models[model]]
    results: dict[str, list[dict]] = {name: [] for name, _ in engines}
    for r in range(args.rounds):
        for name, run in engines[r % len(engines):] + engines[:r % len(engines)]:
            results[name].append(run())
    med = {name: {k: statistics.median(x[k] for x in runs) for k in ("p50_ms", "min_ms", "throughput", "peak_resident_mb", "load_seconds")}
           for name, runs in results.items()}
    int8_rows = {name for name, _, model, _ in PEERS if model == "int8"} | {name for name, _, model in GRAFT if model == "int8"}
    precision = {name: "int8" if name in int8_rows else runs[0]["precision"] for name, runs in results.items()}
    graft = med[GRAFT[0][0]]["p50_ms"]
    best: dict[str, str] = {}   # the fastest peer of each precision
    for name in (name for name, *_ in PEERS if name in med):
        p = precision[name]
        if p not in best or med[name]["p50_ms"] < med[best[p]]["p50_ms"]:
            best[p] = name
    print(f"model {args.model}" + (f" (int8: {args.int8})" if args.int8 else "") +
          f": batch {args.batch}, {args.threads} threads, {args.rounds} rotating rounds of {args.runs} runs, "
          f"CPU {results[GRAFT[0][0]][0]['cpu']}")
    print(f"{'engine':18} {'precision':>9} {'p50 ms':>9} {'min ms':>9} {'images/s':>9} {'peak MB':>8} "
          f"{'load s':>7} {'vs Graft':>9} {'vs best':>8}")
    for name in results:
        m, peer = med[name], best.get(precision[name])
        versus = f"{m['p50_ms'] / med[peer]['p50_ms']:8.2f}" if peer else f"{'-':>8}"
        print(f"{name:18} {precision[name]:>9} {m['p50_ms']:9.2f} {m['min_ms']:9.2f} {m['throughput']:9.2f} "
              f"{m['peak_resident_mb']:8.0f} {m['load_seconds']:7.2f} {m['p50_ms'] / graft:9.2f} {versus}")
    print(f"latency ratios: against {GRAFT[0][0]}, and against the fastest peer of the same precision ("
          + ", ".join(f"{p}: {n}" for p, n in sorted(best.items())) + ")")
    # The README's row of this configuration: Graft's figures in bold with their ratio to the
    # fastest peer of the same precision, then the peers'.
    columns = ["Graft f32", "ONNX Runtime f32", "OpenVINO f32", "Graft bf16", "OpenVINO default",
               "Graft int8", "ONNX Runtime int8", "OpenVINO int8"]
    digits = 1 if graft >= 100 else 2

    def cell(name: str) -> str:
        if name not in med:
            return "–"
        value = f"{med[name]['p50_ms']:.{digits}f}"
        peer = best.get(precision[name])
        if not name.startswith("Graft"):
            return value
        return f"**{value}**" + (f" ({med[name]['p50_ms'] / med[peer]['p50_ms']:.2f}×)" if peer else "")
    threads = "thread" if args.threads == 1 else "threads"
    print("README row: | " + " | ".join([f"batch {args.batch}, {args.threads} {threads}"] + [cell(c) for c in columns]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
