#!/usr/bin/env python3
# Writes the small images of fixtures/images/ and, for each, what PIL and torchvision make of it:
# the references GraftVision's decoder and transforms are tested against.
#
#     /path/to/venv-with-torch/bin/python tools/make_image_fixtures.py
#
# Made with Python 3.11 and torch==2.15.0 torchvision==0.29.2 pillow==13.0.0 (its bundled
# libjpeg-turbo 3.2.0) numpy==2.4.6; run by hand, never in CI.
#
# For each image NAME.EXT it writes
#   NAME.pixels.npy   uint8 [H, W, 3]: PIL.Image.open(path).convert("RGB"), torchvision's loader;
#   NAME.eval.npy     uint8 [224, 224, 3]: the pixels torchvision's evaluation transform
#                     Compose([Resize(256), CenterCrop(224), ToTensor(), Normalize(mean, std)])
#                     normalized. Stored as the 8-bit values it normalized (a lossless encoding of
#                     its float32 output, a quarter the size): the script checks that
#                     (v / 255 - mean) / std in float32 gives back torchvision's tensor (to 1e-6).
# rgb_400x300.jpg, the one picture the evaluation transform shrinks, has only the second.
# Pillow's version matters: from 13.0 it resizes vertically first when the height loses more than
# twice as many pixels as the width, which changes some downscaled pixels by one level.
# Further references: rgb_199x401.small_eval.npy, torchvision's float32 output itself [3, 56, 56]
# for Resize(64) + CenterCrop(56); rgb_300x200.resized_crop_*.npy, uint8 [64, 64, 3], the resize
# RandomResizedCrop applies after drawing its box (F.resized_crop with fixed boxes).
# png_named.jpg is a PNG under a JPEG name (a copy of rgb_97x150.png, without references).
# fixtures/images/bad/ holds the files every decoder must refuse with a one-line error.
"""Write fixtures/images/: test images, PIL decodings and torchvision transform outputs."""

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import functional as F

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "images"
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

# Images without a .pixels.npy (to keep fixtures/images small): only their transform is checked.
EVAL_ONLY = ["rgb_400x300.jpg"]

EVAL = transforms.Compose([
    transforms.Resize(256),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize(mean=MEAN, std=STD),
])


def scene(width, height, seed):
    """A photo-like RGB picture: gradients, sharp-edged shapes, fine stripes and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack([
        120 + 90 * np.sin(x / max(width, 1) * 5 + seed),
        110 + 80 * np.cos(y / max(height, 1) * 4 - seed),
        130 + 70 * np.sin((x + y) / max(width + height, 1) * 7),
    ], axis=-1)
    for _ in range(6):
        x0, y0 = rng.integers(0, max(width, 1)), rng.integers(0, max(height, 1))
        w, h = rng.integers(1, max(width // 3, 2)), rng.integers(1, max(height // 3, 2))
        img[y0:y0 + h, x0:x0 + w] = rng.integers(0, 256, 3)
    cx, cy, r = width * 0.6, height * 0.4, min(width, height) * 0.25
    disc = (x - cx) ** 2 + (y - cy) ** 2 < r * r
    img[disc] = img[disc] * 0.3 + np.array([240.0, 30.0, 60.0]) * 0.7
    img[:, :, 1] += 25 * ((x.astype(int) // 2) % 2)  # stripes at the Nyquist limit
    img += rng.normal(0, 12, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, pixels, bit_depth, interlaced=False):
    """A PNG written by hand, for what PIL cannot write: 16-bit RGB and Adam7 interlacing."""
    height, width, _ = pixels.shape
    big = pixels.astype(">u2") if bit_depth == 16 else pixels.astype(np.uint8)
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = big[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 1 if interlaced else 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")
    path.write_bytes(data)


def make_images():
    """Writes the test images; returns their file names."""
    names = []

    def save(img, name, **options):
        img.save(OUT / name, **options)
        names.append(name)

    save(Image.fromarray(scene(300, 200, 1)), "rgb_300x200.jpg", quality=90)  # 4:2:0
    save(Image.fromarray(scene(199, 401, 2)), "rgb_199x401.jpg", quality=85, subsampling=1, progressive=True)  # 4:2:2
    save(Image.fromarray(scene(1000, 37, 3)), "rgb_1000x37.jpg", quality=95, subsampling=0)  # 4:4:4
    save(Image.fromarray(scene(400, 300, 15)), "rgb_400x300.jpg", quality=85)
    save(Image.fromarray(scene(123, 77, 4)).convert("L"), "gray_123x77.jpg", quality=90)
    save(Image.fromarray(scene(160, 120, 5)).convert("CMYK"), "cmyk_160x120.jpg", quality=90)
    save(Image.fromarray(scene(1, 1, 6)), "one_1x1.jpg", quality=90)
    save(Image.fromarray(scene(97, 150, 7)), "rgb_97x150.png")

    rgba = np.dstack([scene(130, 90, 8), np.tile(np.linspace(0, 255, 130).astype(np.uint8), (90, 1))])
    rgba[:20, :, 3] = 0  # transparent, with colour behind it that convert("RGB") keeps
    save(Image.fromarray(rgba, "RGBA"), "rgba_130x90.png")

    palette_image = Image.fromarray(scene(111, 64, 9)).quantize(colors=37)
    save(palette_image, "palette_111x64.png", transparency=3)

    gray_alpha = np.dstack([scene(64, 48, 10)[:, :, 0], np.full((48, 64), 128, np.uint8)])
    save(Image.fromarray(gray_alpha, "LA"), "gray_alpha_64x48.png")
    save(Image.fromarray(scene(40, 30, 11)).convert("1"), "bilevel_40x30.png")

    rng = np.random.default_rng(12)
    wide = scene(70, 50, 12).astype(np.uint16) * 257 + rng.integers(0, 256, (50, 70, 3)).astype(np.uint16) - 128
    wide = np.clip(wide.astype(np.int64), 0, 65535).astype(np.uint16)
    write_png(OUT / "rgb16_70x50.png", wide, 16)
    names.append("rgb16_70x50.png")
    write_png(OUT / "interlaced_45x33.png", scene(45, 33, 13), 8, interlaced=True)
    names.append("interlaced_45x33.png")

    return names


def normalized(values):
    """(v / 255 - mean) / std in float32, as the Swift tests compute it from the stored bytes."""
    x = values.astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    mean = np.array(MEAN, np.float32)[:, None, None]
    std = np.array(STD, np.float32)[:, None, None]
    return (x - mean) / std


def to_bytes(tensor):
    """The 8-bit values a ToTensor+Normalize output came from, checked to give it back exactly."""
    t = tensor.numpy()
    mean = np.array(MEAN, np.float64)[:, None, None]
    std = np.array(STD, np.float64)[:, None, None]
    values = np.rint((t * std + mean) * 255).astype(np.uint8).transpose(1, 2, 0)
    error = np.abs(normalized(values) - t).max()
    assert error < 1e-6, f"torchvision's tensor is not (v/255 - mean)/std of bytes v (max |d| = {error})"
    return values


def write_references(names):
    for name in names:
        stem = Path(name).stem
        rgb = Image.open(OUT / name).convert("RGB")
        if name not in EVAL_ONLY:
            np.save(OUT / f"{stem}.pixels.npy", np.asarray(rgb))
        np.save(OUT / f"{stem}.eval.npy", to_bytes(EVAL(rgb)))
        print(f"{name:24} {rgb.size[0]}x{rgb.size[1]} {Image.open(OUT / name).mode}")

    # Detected by content, not by name.
    shutil.copy(OUT / "rgb_97x150.png", OUT / "png_named.jpg")

    small = transforms.Compose([transforms.Resize(64), transforms.CenterCrop(56), transforms.ToTensor(),
                                transforms.Normalize(mean=MEAN, std=STD)])
    tall = Image.open(OUT / "rgb_199x401.jpg").convert("RGB")
    np.save(OUT / "rgb_199x401.small_eval.npy", small(tall).numpy().astype(np.float32))

    first = Image.open(OUT / "rgb_300x200.jpg").convert("RGB")
    # (top, left, height, width) boxes resized to 64x64: a downscale and an upscale.
    for label, box in [("down", (17, 33, 150, 101)), ("up", (5, 7, 20, 30))]:
        out = F.resized_crop(first, *box, [64, 64], interpolation=transforms.InterpolationMode.BILINEAR)
        np.save(OUT / f"rgb_300x200.resized_crop_{label}.npy", np.asarray(out))


def patch_jpeg_size(data, height, width):
    """The JPEG with its SOF marker's declared size replaced."""
    at = data.index(b"\xff\xc0")
    return data[:at + 5] + struct.pack(">HH", height, width) + data[at + 9:]


def patch_png_size(data, width, height):
    """The PNG with its IHDR's declared size replaced (and the chunk's CRC fixed)."""
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", width, height)
    return data[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + data[33:]


def make_bad():
    bad = OUT / "bad"
    bad.mkdir(exist_ok=True)
    jpeg = (OUT / "rgb_300x200.jpg").read_bytes()
    png = (OUT / "rgb_97x150.png").read_bytes()
    small = Image.fromarray(scene(16, 16, 14))
    small.save(bad / "_small.jpg", quality=50)
    small.save(bad / "_small.png")
    tiny, tiny_png = (bad / "_small.jpg").read_bytes(), (bad / "_small.png").read_bytes()
    (bad / "_small.jpg").unlink()
    (bad / "_small.png").unlink()
    files = {
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) * 3 // 5],
        "truncated.png": png[: len(png) * 3 // 5],
        "text.jpg": b"this is a text file, not an image\n",
        "bomb.jpg": patch_jpeg_size(tiny, 60000, 60000),
        "bomb.png": patch_png_size(tiny_png, 60000, 60000),
        "zero_height.jpg": patch_jpeg_size(tiny, 0, 16),
        "zero_width.png": patch_png_size(tiny_png, 0, 16),
    }
    for name, data in files.items():
        (bad / name).write_bytes(data)
        try:
            Image.open(bad / name).convert("RGB")
            verdict = "PIL decodes it"
        except Exception as error:  # noqa: BLE001 - reporting what PIL says
            verdict = f"PIL: {type(error).__name__}: {error}"
        print(f"bad/{name:20} {verdict}")


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    torch.manual_seed(0)
    names = make_images()
    write_references(names)
    make_bad()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"fixtures/images: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
