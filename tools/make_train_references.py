#!/usr/bin/env python3
# Makes the committed GraftTrain references under fixtures/train/. Run by hand (not in CI):
#     python tools/make_train_references.py
# Made with (Python 3.11, CPU only):
# torch==2.15.0 numpy==2.4.6 scikit-learn==1.9.1
#
# - The head PyTorch users append to a ResNet (Dropout, Linear, ReLU, ..., LogSoftmax), built
#   at a small width (256 features, hidden [64, 32], 2 classes) with torch's own seeded
#   nn.Linear initialization; its initial weights, the random features and labels, the batch
#   order, and per-step NLL losses of 50 optimizer steps (dropout off: eval mode) for Adam and
#   SGD with momentum, with and without weight decay, plus the parameters after the last step.
# - print() of the head at the reference's size (2048 -> 1024 -> 256 -> 2) and at a small one.
# - sklearn's classification_report (text and output_dict) for a few label sets.
"""Builds the PyTorch-autograd parity and scikit-learn report references for GraftTrain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.metrics import classification_report, confusion_matrix
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "train"

FEATURES, HIDDEN, CLASSES, DROPOUT = 256, [64, 32], 2, [0.5, 0.3]
SAMPLES, BATCH, STEPS = 64, 16, 50


def head(features: int, hidden: list[int], dropout: list[float], classes: int) -> nn.Sequential:
    """The reference head: Dropout, Linear, ReLU per hidden layer, then Linear, LogSoftmax."""
    layers: list[nn.Module] = []
    width = features
    for h, p in zip(hidden, dropout):
        layers += [nn.Dropout(p=p), nn.Linear(width, h), nn.ReLU()]
        width = h
    layers += [nn.Linear(width, classes), nn.LogSoftmax(dim=1)]
    return nn.Sequential(*layers)


def save(name: str, array: np.ndarray) -> None:
    path = OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(array))


def parameters(model: nn.Sequential) -> dict[str, np.ndarray]:
    return {f"fc.{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()}


def parity() -> None:
    rng = np.random.Generator(np.random.PCG64(0))
    labels = rng.integers(0, CLASSES, SAMPLES)
    # Pooled ResNet features are non-negative; the classes differ a little in their means.
    means = rng.normal(0, 0.5, (CLASSES, FEATURES))
    features = np.maximum(means[labels] + rng.normal(0, 1, (SAMPLES, FEATURES)), 0).astype(np.float32)
    batches = np.concatenate([rng.permutation(SAMPLES) for _ in range((STEPS * BATCH) // SAMPLES + 1)])
    batches = batches[: STEPS * BATCH].reshape(STEPS, BATCH)
    save("features.npy", features)
    save("labels.npy", labels.astype(np.int64))
    save("batches.npy", batches.astype(np.int64))

    torch.manual_seed(0)
    initial = head(FEATURES, HIDDEN, DROPOUT, CLASSES)
    for name, value in parameters(initial).items():
        save(f"initial/{name}.npy", value)
    initial.eval()
    x_all = torch.from_numpy(features)
    with torch.no_grad():
        save("initial_output.npy", initial(x_all).numpy())

    runs = {
        "adam": (torch.optim.Adam, {}),
        "adam_weight_decay": (torch.optim.Adam, {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05}),
        "sgd_momentum": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
        "sgd_momentum_weight_decay": (torch.optim.SGD, {"lr": 0.02, "momentum": 0.5, "weight_decay": 0.01}),
    }
    manifest = {"features": FEATURES, "hidden": HIDDEN, "dropout": DROPOUT, "classes": CLASSES,
                "batch_size": BATCH, "steps": STEPS, "runs": []}
    for name, (kind, options) in runs.items():
        model = head(FEATURES, HIDDEN, DROPOUT, CLASSES)
        model.load_state_dict(initial.state_dict())
        model.eval()  # dropout off; gradients flow as in training
        optimizer = kind(model.parameters(), **options)
        losses = []
        for step in range(STEPS):
            index = torch.from_numpy(batches[step])
            optimizer.zero_grad()
            loss = F.nll_loss(model(x_all[index]), torch.from_numpy(labels)[index])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        for key, value in parameters(model).items():
            save(f"final/{name}/{key}.npy", value)
        defaults = optimizer.defaults
        settings = {"lr": defaults["lr"], "weight_decay": defaults["weight_decay"]}
        if kind is torch.optim.Adam:
            settings |= {"optimizer": "adam", "betas": list(defaults["betas"]), "eps": defaults["eps"]}
        else:
            settings |= {"optimizer": "sgd", "momentum": defaults["momentum"]}
        manifest["runs"].append({"name": name, **settings, "losses": losses})
        print(f"{name}: loss {losses[0]:.6f} -> {losses[-1]:.6f}")
    (OUT / "parity.json").write_text(json.dumps(manifest, indent=1) + "\n")


def prints() -> None:
    (OUT / "head_print_2048.txt").write_text(repr(head(2048, [1024, 256], [0.5, 0.3], 2)) + "\n")
    (OUT / "head_print_small.txt").write_text(repr(head(256, [64, 32, 16], [0.2, 0.0, 0.125], 3)) + "\n")


def reports() -> None:
    rng = np.random.Generator(np.random.PCG64(1))
    cases = []

    def case(name: str, names: list[str], y_true: np.ndarray, y_pred: np.ndarray) -> None:
        labels = list(range(len(names)))
        text = classification_report(y_true, y_pred, labels=labels, target_names=names, zero_division=0)
        text4 = classification_report(y_true, y_pred, labels=labels, target_names=names, zero_division=0, digits=4)
        table = classification_report(y_true, y_pred, labels=labels, target_names=names, zero_division=0, output_dict=True)
        matrix = confusion_matrix(y_true, y_pred, labels=labels)
        cases.append({"name": name, "class_names": names, "truth": y_true.tolist(), "predicted": y_pred.tolist(),
                      "text": text, "text_digits_4": text4, "dict": table, "confusion_matrix": matrix.tolist()})

    truth = rng.integers(0, 2, 4600)
    predicted = np.where(rng.random(4600) < 0.983, truth, 1 - truth)
    case("cats_dogs", ["cat", "dog"], truth, predicted)
    truth = rng.integers(0, 3, 57)
    predicted = np.where(rng.random(57) < 0.6, truth, 0)
    case("never_predicted", ["a", "golden_retriever_puppy", "c"], truth, np.where(predicted == 2, 0, predicted))
    truth = rng.integers(0, 4, 30)
    predicted = rng.integers(0, 4, 30)
    case("absent_class", ["w", "x", "y", "z"], np.where(truth == 3, 0, truth), np.where(predicted == 3, 1, predicted))
    truth = rng.integers(0, 2, 10)
    case("perfect", ["negative", "positive"], truth, truth.copy())
    (OUT / "reports.json").write_text(json.dumps({"sklearn": sklearn.__version__, "cases": cases}, indent=1) + "\n")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    parity()
    prints()
    reports()


if __name__ == "__main__":
    main()
