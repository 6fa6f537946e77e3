# Fashion-MNIST as Debian's dataset-fashion-mnist installs it (tools/install_deps.sh): the reader
# that tools/train_fashion_resnet.py (the PyTorch venv) and tools/materialize_fashion.py (.venv)
# share; needs numpy only.
"""Read Fashion-MNIST's IDX files and normalise its images."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

DATA = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format): big-endian magic, dimensions, then unsigned bytes."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    if raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes for dimensions {dims}")
    return data.reshape(dims)


def normalized(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """[N, 28, 28] uint8 images as the model takes them: float32 [N, 1, 28, 28], (pixel / 255 - mean) / std."""
    x = (images.astype(np.float32) / np.float32(255) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x[:, None])
