"""In-memory image sets: a source's description, one decoded split, and pixel normalisation.

Images stay uint8 in memory (a 50,000-image CIFAR split is 150 MB) and are normalised only
when a consumer asks, on the device it asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

SPLITS = ("train", "test")


@dataclass(frozen=True)
class SourceInfo:
    """What the rest of LADD needs to know about a source dataset, without loading it."""

    name: str  # "cifar10", "shapes", "imagenette", "imagefolder:/abs/path", ...
    class_names: tuple[str, ...]
    image_size: int  # H == W
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channels: int = 3

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _stats_view(values: Sequence[float] | torch.Tensor, like: torch.Tensor, dtype) -> torch.Tensor:
    """Per-channel statistics shaped (C, 1, 1) to broadcast over (..., C, H, W)."""
    return torch.as_tensor(values, dtype=dtype, device=like.device).reshape(-1, 1, 1)


def normalise(
    images_uint8: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 images (..., C, H, W) -> float (x / 255 - mean) / std, on the images' device."""
    x = images_uint8.to(dtype, copy=True).div_(255.0)
    return x.sub_(_stats_view(mean, x, dtype)).div_(_stats_view(std, x, dtype))


def denormalise(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalised float images (..., C, H, W) -> float in [0, 1], clipped."""
    dtype = images.dtype if images.is_floating_point() else torch.float32
    x = images.to(dtype) * _stats_view(std, images, dtype) + _stats_view(mean, images, dtype)
    return x.clamp_(0.0, 1.0)


def to_uint8(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalised float images (..., C, H, W) -> uint8 pixels."""
    return denormalise(images, mean, std).mul_(255.0).round_().to(torch.uint8)


def exact_pixels(
    images: torch.Tensor,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    chunk: int = 512,
) -> torch.Tensor | None:
    """The uint8 pixels p whose normalise(p, mean, std) is `images` bit for bit (on the CPU), or
    None: images that are not some 8-bit pixels' normalisation (synthesised, resized in float,
    whitened, another mean/std). Checked `chunk` images at a time. A set whose images pass can
    be held (and stored) as its pixels and normalised again with nothing lost."""
    if mean is None or std is None or images.dim() != 4 or len(mean) != images.shape[1]:
        return None
    if not images.is_floating_point():
        return None
    out = torch.empty(images.shape, dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].float().cpu()
        pixels = to_uint8(part, mean, std)
        if not torch.equal(normalise(pixels, mean, std), part):
            return None
        out[start : start + chunk] = pixels
    return out


def class_pixel_stats(
    pixels: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]
) -> list[dict[str, object]]:
    """Per-class statistics of uint8 images (M, C, H, W) in [0, 1] units, plus an "all" row.

    Each row: class, images, per-channel mean and std, overall std, min, max (a class without
    images has only its name and 0 images).
    """
    rows: list[dict[str, object]] = []
    labels = labels.cpu()
    groups = [(str(n), labels == k) for k, n in enumerate(class_names)]
    groups.append(("all", torch.ones_like(labels, dtype=torch.bool)))
    for name, mask in groups:
        x = pixels[mask].float() / 255.0  # (m, C, H, W)
        if x.numel() == 0:
            rows.append({"class": name, "images": 0})
            continue
        rows.append(
            {
                "class": name,
                "images": int(mask.sum()),
                "mean": [float(v) for v in x.mean(dim=(0, 2, 3))],
                "std_per_channel": [float(v) for v in x.std(dim=(0, 2, 3), unbiased=False)],
                "std": float(x.std(unbiased=False)),
                "min": float(x.min()),
                "max": float(x.max()),
            }
        )
    return rows


def class_balanced_indices(
    labels: torch.Tensor,
    per_class: int,
    num_classes: int,
    *,
    seed: int = 0,
    strict: bool = False,
) -> torch.Tensor:
    """Seeded random `per_class` indices of each class, class-major, each class's picks sorted.

    A class with fewer examples contributes all it has, unless `strict` (then ValueError).
    Uses its own torch.Generator: the global RNG is never touched.
    """
    generator = torch.Generator().manual_seed(int(seed))
    labels = labels.cpu()
    picks = []
    for k in range(num_classes):
        members = torch.nonzero(labels == k).flatten()  # (n_k,)
        if strict and len(members) < per_class:
            raise ValueError(
                f"class {k} has {len(members)} examples, fewer than the {per_class} asked for"
            )
        order = torch.randperm(len(members), generator=generator)[:per_class]
        picks.append(members[order].sort().values)
    return torch.cat(picks) if picks else torch.zeros(0, dtype=torch.long)


@dataclass
class ImageSet:
    """One split of a source, uint8 in memory."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    info: SourceInfo
    split: str  # "train" | "test"

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def normalised(
        self, device: str | torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """Float (N, C, H, W) images, (x / 255 - mean) / std, on `device` (default: where they are)."""
        images = self.images if device is None else self.images.to(device)
        return normalise(images, self.info.mean, self.info.std, dtype=dtype)

    def to(self, device: str | torch.device) -> ImageSet:
        return ImageSet(self.images.to(device), self.labels.to(device), self.info, self.split)

    def subset(self, indices: torch.Tensor) -> ImageSet:
        indices = torch.as_tensor(indices, dtype=torch.long, device=self.images.device)
        return ImageSet(self.images[indices], self.labels[indices], self.info, self.split)

    def class_counts(self) -> list[int]:
        """Examples per class, index k -> count."""
        counts = torch.bincount(self.labels.cpu(), minlength=self.info.num_classes)
        return counts.tolist()
