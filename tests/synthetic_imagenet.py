"""A synthetic ImageNet-1K folder in torchvision's layout, and an RDED-written distilled folder
over its classes, for the tests of the 1000-class path (not a test module)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

WNIDS = tuple(f"n{k:08d}" for k in range(1000))
PER_SPLIT = {"train": 2, "val": 1}


def write_image(path: Path, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    width, height = 12 + seed % 9, 12 + (seed // 9) % 7  # 12-20 x 12-18 px
    pixels = torch.randint(0, 256, (height, width, 3), generator=g, dtype=torch.uint8)
    Image.fromarray(pixels.numpy()).save(path)


def write_imagenet(root: Path, wnids=WNIDS, per_split=PER_SPLIT) -> Path:
    for split, count in per_split.items():
        for k, wnid in enumerate(wnids):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(count):
                suffix = ".JPEG" if (k + i) % 2 == 0 else ".png"
                write_image(
                    folder / f"{wnid}_{i}{suffix}",
                    seed=3 * k + i + (0 if split == "train" else 5000),
                )
    return root


def write_rded_folder(root: Path, classes: int = 1000, ipc: int = 1, size: int = 16) -> Path:
    """A distilled set as RDED's synthesize/main.py names its files
    (<class:05d>/class<class:05d>_id<i:05d>.jpg), `ipc` images a class, `size` px."""
    for c in range(classes):
        folder = root / f"{c:05d}"
        folder.mkdir(parents=True)
        for i in range(ipc):
            g = torch.Generator().manual_seed(10_000 + c * ipc + i)
            pixels = torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(folder / f"class{c:05d}_id{i:05d}.jpg")
    return root
