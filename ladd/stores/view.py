"""One stored crop as a person looks at it (the dashboard's soft-label page; UI-free).

`crop_view(sset, epoch, batch, row)` gives the source image with the stored crop box, the crop
as training sees it (resized, flipped, mixed with its partner), the CutMix box on it, and the
target's top classes; the pixels are the set's own, denormalised with its mean/std.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ladd.data.imageset import denormalise
from ladd.stores.converted import target_probs
from ladd.stores.replay import build_batch, pixel_boxes

__all__ = ["CropView", "crop_view"]


@dataclass(frozen=True)
class CropView:
    """What one stored row of one batch is (for display)."""

    epoch: int
    batch: int
    row: int
    image_index: int  # the set's row of the source image
    image: torch.Tensor  # uint8 (H, W, 3): the source image
    box: tuple[int, int, int, int]  # top, left, height, width in its pixels
    flip: bool
    mix: str | None
    partner_index: int | None  # the set's row of the CutMix/Mixup partner's image
    mix_lam: float | None
    mix_box: tuple[int, int, int, int] | None  # top, left, height, width on the crop
    crop: torch.Tensor  # uint8 (H, W, 3): the training input after flip and mix
    top_classes: list[tuple[int, float]]  # (class, target probability), largest first
    label: int  # the source image's class
    batch_size: int


def _pixels(x: torch.Tensor, mean: Any, std: Any) -> torch.Tensor:
    """(C, H, W) normalised -> (H, W, 3) uint8."""
    if mean is not None and std is not None:
        x = denormalise(x, mean, std)
    else:
        x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-6)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu()


def crop_view(sset: Any, epoch: int, batch: int, row: int, *, top_k: int = 5) -> CropView:
    """Row `row` of batch `batch` of epoch `epoch` of a SoftLabelSet's store (module doc)."""
    stored = sset.store.batch(epoch, batch)
    if not 0 <= row < len(stored):
        raise ValueError(f"row {row} of a batch of {len(stored)}")
    base = sset.base
    rows = sset.rows[stored.rows]  # the set's rows of the batch's images
    images = base.images[rows].float()
    built = build_batch(images, stored)
    size = int(images.shape[-1])
    top, left, height, width = pixel_boxes(stored.coords[row : row + 1], size, stored.crop_rounding)
    probs = target_probs(stored, sset.label_temperature, base.num_classes)[row]
    k = min(top_k, int(probs.numel()))
    values, classes = torch.topk(probs, k)
    mix_box = None
    partner = None
    if stored.mix is not None:
        partner = int(rows[int(stored.mix_index[row])])  # type: ignore[index]
    if stored.mix_box is not None:
        x1, y1, x2, y2 = stored.mix_box  # rows x1:x2, columns y1:y2
        mix_box = (x1, y1, x2 - x1, y2 - y1)
    mean, std = getattr(base, "mean", None), getattr(base, "std", None)
    return CropView(
        epoch=epoch,
        batch=batch,
        row=row,
        image_index=int(rows[row]),
        image=_pixels(images[row], mean, std),
        box=(int(top), int(left), int(height), int(width)),
        flip=bool(stored.flip[row]),
        mix=stored.mix,
        partner_index=partner,
        mix_lam=stored.mix_lam,
        mix_box=mix_box,
        crop=_pixels(built[row], mean, std),
        top_classes=[(int(c), float(v)) for c, v in zip(classes, values, strict=True)],
        label=int(base.labels[rows[row]]),
        batch_size=len(stored),
    )
