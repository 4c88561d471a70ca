"""Per-crop label statistics: each crop's max probability, entropy and agreement with its image's
hard label (`ladd stats`; the paper's Fig. 5: a later labeler epoch, lower entropy), over a set's
stored labels or each labeler's afresh, and the labelers checked against the set's input space
first (`checked_labelers`, which ladd.drift shares).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ladd.dense import check_input_space, generate_dense_labels
from ladd.device import resolve_device
from ladd.sets.augmented import LabelAugmentedSet

__all__ = [
    "CropStats",
    "checked_labelers",
    "crop_metric",
    "crop_stats",
    "crop_stats_across",
    "set_crop_stats",
]


@dataclass
class CropStats:
    """Per-crop label statistics for inspection."""

    max_prob: torch.Tensor  # (M, n*n) confidence of each crop's label
    entropy: torch.Tensor  # (M, n*n) entropy in nats
    agrees: torch.Tensor  # (M, n*n) bool: argmax equals the image's hard label

    def summary(self) -> dict[str, float]:
        """Means over all crops; entropy also as a fraction of log K."""
        return {
            "mean_max_prob": float(self.max_prob.mean()),
            "mean_entropy": float(self.entropy.mean()),
            "agreement": float(self.agrees.float().mean()),
        }

    def per_crop(self) -> dict[str, list[float]]:
        """Means over images, per crop position j (raster order)."""
        return {
            "max_prob": self.max_prob.mean(0).tolist(),
            "entropy": self.entropy.mean(0).tolist(),
            "agreement": self.agrees.float().mean(0).tolist(),
        }


def crop_stats(dense: torch.Tensor, hard_labels: torch.Tensor) -> CropStats:
    """Max probability, entropy and hard-label agreement of every crop's dense label."""
    p = dense.float()  # (M, n*n, K)
    ent = -(p * p.clamp_min(1e-12).log()).sum(-1)
    return CropStats(
        max_prob=p.max(-1).values,
        entropy=ent,
        agrees=p.argmax(-1) == hard_labels.view(-1, 1).to(p.device),
    )


CROP_METRICS = ("class probability", "max probability", "entropy")


def crop_metric(dense: torch.Tensor, metric: str, klass: int = 0) -> tuple[torch.Tensor, float]:
    """One number per crop of ONE image's dense labels (n*n, K), and the metric's largest value.

    "class probability": p(klass); "max probability": the label's confidence; "entropy": in
    nats (its top is log K).
    """
    if metric == "class probability":
        return dense[:, klass].float(), 1.0
    stats = crop_stats(dense[None], torch.zeros(1, dtype=torch.long))
    if metric == "max probability":
        return stats.max_prob[0], 1.0
    if metric == "entropy":
        return stats.entropy[0], math.log(dense.shape[-1])
    raise ValueError(f"unknown crop metric {metric!r}; use one of {', '.join(CROP_METRICS)}")


def checked_labelers(
    distilled: Any, labelers: Any, device: torch.device, *, allow_mismatch: bool = False
) -> Iterator[Any]:
    """Each labeler (a ladd.labeler.Labeler or a checkpoint path, loaded on `device`) after
    checking that it was trained in the set's input space (ValueError unless allow_mismatch)."""
    from ladd.labeler import Labeler, load_labeler

    for lab in labelers:
        if not isinstance(lab, Labeler):
            lab = load_labeler(lab, device=device)
        problems = check_input_space(distilled, lab.meta)
        if problems and not allow_mismatch:
            raise ValueError("labeler/set input space mismatch: " + "; ".join(problems))
        yield lab


def crop_stats_across(
    distilled: Any,
    labelers: list[Any],
    n: int = 5,
    r: float = 0.625,
    *,
    device: str | torch.device = "auto",
    batch_size: int = 256,
    temperature: float = 1.0,
    allow_mismatch: bool = False,
    sampler: Any = None,
) -> dict[int, dict[str, float]]:
    """Crop statistics summaries per labeler epoch (paper Fig. 5: later epochs, lower entropy).
    `sampler`: crops other than the N x R grid (ladd.samplers)."""

    dev = resolve_device(device)
    out: dict[int, dict[str, float]] = {}
    for lab in checked_labelers(distilled, labelers, dev, allow_mismatch=allow_mismatch):
        dense = generate_dense_labels(
            distilled.images,
            lab.model.to(dev),
            n,
            r,
            batch_size=batch_size,
            temperature=temperature,
            device=dev,
            sampler=sampler,
        )
        s = crop_stats(dense, distilled.labels).summary()
        s["test_accuracy"] = lab.meta.test_accuracy
        s["normalised_entropy"] = s["mean_entropy"] / math.log(max(2, dense.shape[-1]))
        out[lab.meta.epoch] = s
    return out


def set_crop_stats(
    dataset: Any,
    labelers: list[str | Path] | tuple[str | Path, ...] = (),
    n: int = 5,
    r: float = 0.625,
    *,
    device: str | torch.device = "auto",
) -> dict[int, dict[str, float]]:
    """Crop statistics of a set, per labeler epoch. With `labelers` (checkpoint files, or
    folders of them in epoch order) each labels the set's images afresh: a label-augmented
    set's own grid replaces (n, r), since its labels were made on it. Without, a
    label-augmented set's stored labels, under its labeler's epoch; a plain set has none
    (ValueError)."""
    from ladd.labeler import list_checkpoints

    augmented = isinstance(dataset, LabelAugmentedSet)
    if labelers:
        paths: list[Path] = []
        for p in map(Path, labelers):
            paths += list_checkpoints(p) if p.is_dir() else [p]
        sampler = dataset.crop_sampler() if augmented else None  # its own crops (n, r or not)
        base = dataset.to_distilled() if augmented else dataset
        return crop_stats_across(base, paths, n, r, device=device, sampler=sampler)
    if not augmented:
        raise ValueError("a plain distilled set needs a labeler to compute dense labels")
    epoch = int(dataset.labeler.get("epoch") or 0)
    return {epoch: crop_stats(dataset.probs(), dataset.labels).summary()}
