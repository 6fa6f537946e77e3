#!/usr/bin/env python3
# Where Graft and OpenVINO spend a run, stage by stage of a torchvision ResNet, on the same model,
# the same cores and in the same minutes: `graft bench --profile --json` (each plan step's time)
# beside OpenVINO's PERF_COUNT (each executed node's), summed by stage (the stem's convolution,
# the max pool, layer1..layer4, the head) from the node names the exporter gave (OpenVINO's
# fused nodes keep them in `originalLayersNames`).
#
#     .venv/bin/python tools/profile_vs_openvino.py MODEL [--precision f32|bf16|int8] [--batch B] [--threads T] [--runs R]
#
# f32 runs OpenVINO with INFERENCE_PRECISION_HINT=f32; bf16 with its default (bf16 on a CPU with
# AVX512_BF16); int8 expects a QDQ model, which both engines run in int8. Both sides are timed
# with per-node timing on, which slows each a little; compare the stages' ratios. The sides
# alternate for `--rounds` rounds; each stage's figure is its median over them.
"""Per-stage time of Graft and OpenVINO on a torchvision ResNet."""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import subprocess
from pathlib import Path

import numpy as np
import openvino as ov

ROOT = Path(__file__).resolve().parent.parent
STAGES = ["stem", "max pool", "layer1", "layer2", "layer3", "layer4", "head", "other"]


def stage(names: str) -> str:
    """The stage of a node from its (comma-separated, original) names."""
    if m := re.search(r"/(layer\d)/", names):
        return m.group(1)
    if "maxpool" in names:
        return "max pool"
    if re.search(r"/(fc|avgpool|Flatten)", names):
        return "head"
    if re.search(r"(^|,)/(conv1|bn1|relu)/", names):
        return "stem"
    return "other"


def graft(args) -> tuple[dict[str, float], float]:
    """Graft's milliseconds per stage, and its p50 latency."""
    out = subprocess.run([str(args.graft), "bench", args.model, "--precision", args.precision, "--batch", str(args.batch),
                          "--threads", str(args.threads), "--runs", str(args.runs), "--profile", "--json"],
                         check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    times: dict[str, float] = collections.defaultdict(float)
    for layer in report["layers"]:
        times[stage(layer["node"])] += layer["ms_per_run"]
    return times, report["latency_ms"]["p50"]


def openvino(args) -> dict[str, float]:
    """OpenVINO's milliseconds per stage (each node's median over the runs)."""
    core = ov.Core()
    model = core.read_model(args.model)
    dims = [d.get_length() if d.is_static else 0 for d in model.inputs[0].partial_shape]
    model.reshape([args.batch] + (dims[1:] if all(dims[1:]) else [3, 224, 224]))
    config = {"PERF_COUNT": "YES", "INFERENCE_NUM_THREADS": str(args.threads), "PERFORMANCE_HINT": "LATENCY"}
    if args.precision == "f32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = core.compile_model(model, "CPU", config)
    ops = [op for op in compiled.get_runtime_model().get_ordered_ops() if "originalLayersNames" in op.get_rt_info()]
    original = {op.get_friendly_name(): op.get_rt_info()["originalLayersNames"].astype(str) for op in ops}
    # The classifier keeps the graph output's name: the head by its type.
    kinds = {op.get_friendly_name(): op.get_rt_info()["layerType"].astype(str) for op in ops}
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).standard_normal(tuple(compiled.inputs[0].shape)).astype(np.float32)
    for _ in range(3):
        request.infer({0: x})
    per: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(args.runs):
        request.infer({0: x})
        for p in request.profiling_info:
            per[p.node_name].append(p.real_time.total_seconds() * 1e3)
    times: dict[str, float] = collections.defaultdict(float)
    for name, samples in per.items():
        where = stage(original.get(name, name))
        times["head" if where == "other" and kinds.get(name) == "FullyConnected" else where] += statistics.median(samples)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--precision", choices=["f32", "bf16", "int8"], default="bf16")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5, help="rounds of both sides, alternating; each stage's median")
    ap.add_argument("--graft", type=Path, default=ROOT / ".build/release/graft")
    args = ap.parse_args()
    grafts, openvinos = [], []
    for r in range(args.rounds):
        if r % 2 == 0:
            grafts.append(graft(args)[0])
            openvinos.append(openvino(args))
        else:
            openvinos.append(openvino(args))
            grafts.append(graft(args)[0])
    g = {s: statistics.median(run.get(s, 0) for run in grafts) for s in STAGES}
    o = {s: statistics.median(run.get(s, 0) for run in openvinos) for s in STAGES}
    print(f"{args.model}: {args.precision}, batch {args.batch}, {args.threads} threads, {args.rounds} alternating rounds of {args.runs} runs a side")
    print(f"{'stage':10s} {'Graft ms':>9s} {'OpenVINO ms':>12s} {'Graft/OpenVINO':>15s}")
    for s in STAGES:
        if g.get(s, 0) or o.get(s, 0):
            ratio = f"{g.get(s, 0) / o[s]:.2f}" if o.get(s) else "-"
            print(f"{s:10s} {g.get(s, 0):9.3f} {o.get(s, 0):12.3f} {ratio:>15s}")
    print(f"{'all':10s} {sum(g.values()):9.3f} {sum(o.values()):12.3f} {sum(g.values()) / sum(o.values()):15.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
