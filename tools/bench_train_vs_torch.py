#!/usr/bin/env python3
# Side-by-side benchmark of transfer learning: PyTorch (CPU) and `graft train` on the same cores, in
# the same run, alternating rounds; prints each figure with Graft/PyTorch.
#
#     .venv-torch/bin/python tools/bench_train_vs_torch.py MODEL [--threads T] [--images N] [--rows N] [--rounds N]
#
# MODEL is a ResNet-50 ONNX export with state_dict names (.build-fixtures/resnet50/resnet50_bn.onnx).
# Two figures, each side in its own process:
#
# - feature extraction: the frozen trunk (ResNet-50 less its fc) over N synthetic images
#   (`graft demo-data`) in batches of 32, Graft's train split as `graft train --timings-json`
#   times it (decoding on a prefetch thread included), PyTorch's as torchvision's resnet50 with
#   MODEL's weights times it (eval, no_grad, set_num_threads(T)) over the same images already
#   preprocessed by torchvision's evaluation transform (so PyTorch's figure leaves decoding out,
#   Graft's includes it); each side warm (PyTorch runs one untimed batch first, Graft's timed
#   train split follows its validation split); both beside `graft bench --batch 32`, which
#   extraction should come within 10 % of; where the processor has AVX512_BF16, Graft's
#   extraction again with `--precision bf16`;
# - one head epoch over R cached 2048-d features (18,398: the reference's training split) with the
#   reference's head (Dropout .5, Linear 2048->1024, ReLU, Dropout .3, Linear 1024->256, ReLU,
#   Linear 256->2, LogSoftmax), NLL loss, Adam (lr 1e-3), batch 32: Graft's trainer on the
#   features as arrays (`graft train --features --labels`) against the same nn.Sequential loop.
#
# A round runs every side once (graft first in even rounds, PyTorch first in odd ones); figures
# are medians over rounds.
"""Benchmark graft train against PyTorch side by side."""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_peers import cpu_flags  # the same reading of the processor's flags

ROOT = Path(__file__).resolve().parent.parent
BATCH = 32  # graft train's feature and optimizer batch size


def torch_setup(threads):
    import torch
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    return torch


def torch_extract_worker(args):
    """Runs inside its own process: the trunk over the preprocessed images, timed; prints JSON."""
    import onnx
    import torchvision
    from onnx import numpy_helper
    from PIL import Image
    torch = torch_setup(args.threads)
    model = torchvision.models.resnet50(weights=None)
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in onnx.load(args.model).graph.initializer}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        sys.exit(f"{args.model}: not torchvision's ResNet-50 state_dict names (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.fc = torch.nn.Identity()
    model.eval()
    transform = torchvision.transforms.Compose([
        torchvision.transforms.Resize(256), torchvision.transforms.CenterCrop(224), torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    files = sorted(Path(args.images_dir).rglob("*.*"))
    x = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
    with torch.no_grad():
        # One untimed batch first, as Graft's timed split follows its validation split: both
        # sides are measured warm.
        model(x[:BATCH])
        t = time.perf_counter()
        for start in range(0, len(x), BATCH):
            model(x[start:start + BATCH])
        seconds = time.perf_counter() - t
    print(json.dumps({"images": len(x), "seconds": seconds, "images_per_second": len(x) / seconds}))


def torch_head_worker(args):
    """Runs inside its own process: one epoch of the reference head on the feature arrays; prints JSON."""
    import numpy as np
    torch = torch_setup(args.threads)
    torch.manual_seed(0)
    x = torch.from_numpy(np.load(args.features))
    y = torch.from_numpy(np.load(args.labels))
    nn = torch.nn
    head = nn.Sequential(nn.Dropout(0.5), nn.Linear(x.shape[1], 1024), nn.ReLU(), nn.Dropout(0.3), nn.Linear(1024, 256),
                         nn.ReLU(), nn.Linear(256, int(y.max()) + 1), nn.LogSoftmax(dim=1))
    head.train()
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    loss_fn = nn.NLLLoss()
    t = time.perf_counter()
    order = torch.randperm(len(x))
    total = 0.0
    for start in range(0, len(x), BATCH):
        rows = order[start:start + BATCH]
        optimizer.zero_grad()
        loss = loss_fn(head(x[rows]), y[rows])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(rows)
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "train_loss": total / len(x)}))


def worker(kind, args, *extra):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run([sys.executable, __file__, args.model, "--threads", str(args.threads), "--worker", kind, *extra],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def graft(args, *command):
    return subprocess.run([str(args.graft), *command], check=True, capture_output=True, text=True)


def graft_train(args, work, name, *inputs):
    out = work / f"{name}.onnx"
    shutil.rmtree(f"{out}.cache", ignore_errors=True)  # compute the features every round
    for suffix in ["", ".state"]:
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    timings = work / f"{name}.timings.json"
    graft(args, "train", args.model, *inputs, "--out", str(out), "--epochs", "1", "--threads", str(args.threads),
          "--timings-json", str(timings))
    return json.loads(timings.read_text())


def make_images(args, work):
    """`graft demo-data` pictures as class folders: N training images, one validation image a class."""
    graft(args, "demo-data", str(work / "pictures"), "--per-class", str(args.images // 2 + 1))
    data = work / "data"
    for f in sorted((work / "pictures/train").iterdir(), key=lambda p: int(p.name.split(".")[1])):
        label, index = f.name.split(".")[:2]
        split = "val" if int(index) == args.images // 2 else "train"
        (data / split / label).mkdir(parents=True, exist_ok=True)
        f.rename(data / split / label / f.name)
    return data


def make_features(args, work):
    """R seeded rows of non-negative 2048-d features (as a ResNet's pooled ReLU outputs), two classes."""
    import numpy as np
    rng = np.random.default_rng(0)
    labels = np.arange(args.rows, dtype=np.int64) % 2
    x = np.maximum(rng.standard_normal((args.rows, 2048), dtype=np.float32), 0)
    x[:, :64] += labels[:, None].astype(np.float32) * 0.5
    np.save(work / "features.npy", x)
    np.save(work / "labels.npy", labels)
    return work / "features.npy", work / "labels.npy"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--images", type=int, default=256, help="training images for the extraction (a multiple of 32)")
    ap.add_argument("--rows", type=int, default=18398, help="feature rows for the head epoch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bench-runs", type=int, default=3, help="timed runs of graft bench --batch 32")
    ap.add_argument("--graft", type=Path, default=ROOT / ".build/release/graft")
    ap.add_argument("--worker", choices=["extract", "head"], help=argparse.SUPPRESS)
    ap.add_argument("--images-dir", help=argparse.SUPPRESS)
    ap.add_argument("--features", help=argparse.SUPPRESS)
    ap.add_argument("--labels", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "extract":
        return torch_extract_worker(args)
    if args.worker == "head":
        return torch_head_worker(args)
    if args.images < BATCH or args.images % BATCH:
        ap.error(f"--images must be a multiple of {BATCH}")

    bf16 = "avx512_bf16" in cpu_flags()
    with tempfile.TemporaryDirectory(prefix="graft-bench-train-") as tmp:
        work = Path(tmp)
        data = make_images(args, work)
        features, labels = make_features(args, work)

        def graft_extract(*precision):
            split = next(s for s in graft_train(args, work, "extract", "--data", str(data), *precision)["features"] if s["split"] == "train")
            return {"images_per_second": split["images_per_second"], "seconds": split["seconds"]}

        def graft_bench():
            out = graft(args, "bench", args.model, "--batch", str(BATCH), "--threads", str(args.threads),
                        "--runs", str(args.bench_runs), "--warmup", "1", "--json")
            return {"images_per_second": json.loads(out.stdout)["throughput_images_per_second"]}

        def graft_head():
            epoch = graft_train(args, work, "head", "--features", str(features), "--labels", str(labels))["epochs"][0]
            return {"seconds": epoch["seconds"], "train_loss": epoch["train_loss"]}

        sides = {
            ("extract", "torch"): lambda: worker("extract", args, "--images-dir", str(data / "train")),
            ("extract", "graft"): graft_extract,
            **({("extract", "graft bf16"): lambda: graft_extract("--precision", "bf16")} if bf16 else {}),
            ("bench", "graft"): graft_bench,
            ("head", "torch"): lambda: worker("head", args, "--features", str(features), "--labels", str(labels)),
            ("head", "graft"): graft_head,
        }
        results = {side: [] for side in sides}
        for r in range(args.rounds):
            for task in ["extract", "bench", "head"]:
                order = [side for side in sides if side[0] == task]
                if r % 2:
                    order.reverse()
                for side in order:
                    results[side].append(sides[side]())
    med = {side: {k: statistics.median(x[k] for x in runs) for k in runs[0]} for side, runs in results.items()}

    def row(label, torch_value, graft_value):
        t = f"{torch_value:14.2f}" if torch_value is not None else f"{'':14}"
        ratio = f"{graft_value / torch_value:14.2f}" if torch_value else ""
        print(f"{label:34} {t} {graft_value:14.2f} {ratio}")

    header = f"{'figure':34} {'PyTorch':>14} {'Graft':>14} {'Graft/PyTorch':>14}"
    print(f"model {args.model}: {args.threads} threads, {args.rounds} alternating rounds")
    print(f"feature extraction: {args.images} images, batch {BATCH}")
    print(header)
    extract = med[("extract", "graft")]["images_per_second"]
    bench = med[("bench", "graft")]["images_per_second"]
    row("trunk features (images/s)", med[("extract", "torch")]["images_per_second"], extract)
    row(f"graft bench --batch {BATCH} (images/s)", None, bench)
    if bf16:
        extract_bf16 = med[("extract", "graft bf16")]["images_per_second"]
        row("trunk features, bf16 (images/s)", med[("extract", "torch")]["images_per_second"], extract_bf16)
        print(f"graft train --precision bf16 extraction / f32: {extract_bf16 / extract:.2f} (target >= 1.70)")
    print(f"graft train extraction / graft bench: {extract / bench:.2f} (target >= 0.90)")
    print(f"head epoch: {args.rows} rows of 2048 features, batch {BATCH}, Adam")
    print(header)
    row("epoch (s)", med[("head", "torch")]["seconds"], med[("head", "graft")]["seconds"])
    row("rows/s", args.rows / med[("head", "torch")]["seconds"], args.rows / med[("head", "graft")]["seconds"])
    print(f"{'mean train loss (same work check)':34} {med[('head', 'torch')]['train_loss']:14.4f} {med[('head', 'graft')]['train_loss']:14.4f}")


if __name__ == "__main__":
    main()
