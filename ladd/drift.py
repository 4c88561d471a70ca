"""Per-crop drift: how far each crop's dense label strays from its image's label.

HALD calls it "local semantic drift" (a crop that looks like another class gets a soft label
far from the image's) and measures crop consistency with the Jensen-Shannon divergence
(Jiacheng8/HALD analysis/crop_consistency/semantic_consistency.py, `js_divergence`). Here:

- **divergence**: JS(crop label, image label) in nats, between 0 and ln 2 = 0.693, where the
  image label is the labeler's label of the full image (a label-augmented set keeps it as
  `full_soft`); for a set without it, the mean of its crops' labels (`reference` says which).
  Both distributions are clamped at 1e-12 before the logs, as HALD's.
- **the drift rule**: a crop is drifted when its label's top class is not the image's class AND
  its divergence from the image's label is at least DRIFT_JS = 0.1 nats. The first part says
  the crop is labelled as something else; the second that this is the crop's doing, not the
  labeler's view of the whole image (a crop as wrong as the whole image, JS near 0, is not
  local drift).

`crop_drift` measures labels in memory; `set_drift` streams a label-augmented set's stored
labels a chunk of images at a time (a 1000-class set never decodes every crop at once);
`labeler_drift` labels crops of a plain set with a labeler (one image for the pages' heat
grid, or the whole set per labeler epoch, the paper's Fig. 5 with a drift axis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "DRIFT_JS",
    "JS_MAX",
    "CropDrift",
    "crop_drift",
    "drift_across",
    "drift_of_set",
    "js_divergence",
    "labeler_drift",
    "set_drift",
]

DRIFT_JS = 0.1  # nats: the divergence from the image's label above which a crop can drift
JS_MAX = math.log(2.0)
EPS = 1e-12  # HALD's clamp before the logs


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in nats between probability rows: (..., K), (..., K) -> (...)."""
    p = p.float().clamp(EPS, 1.0)
    q = q.float().clamp(EPS, 1.0)
    m = 0.5 * (p + q)
    return 0.5 * ((p * (p.log() - m.log())).sum(-1) + (q * (q.log() - m.log())).sum(-1))


@dataclass
class CropDrift:
    """Drift of every crop of M images with J crops each."""

    js: torch.Tensor  # (M, J) float: JS(crop label, image label), nats
    top: torch.Tensor  # (M, J) long: each crop label's top class
    top_prob: torch.Tensor  # (M, J) float: its probability
    agrees: torch.Tensor  # (M, J) bool: top class == the image's class
    drifted: torch.Tensor  # (M, J) bool: the rule (module doc)
    labels: torch.Tensor  # (M,) the images' classes
    threshold: float = DRIFT_JS
    reference: str = "full image label"  # what each crop is compared with

    @property
    def rule(self) -> str:
        return (
            f"top class != the image's class and JS(crop, {self.reference}) >= "
            f"{self.threshold:g} nats"
        )

    def summary(self) -> dict[str, float]:
        """Over all crops: the drifted share, the mean and median divergence, the share of
        images with at least one drifted crop."""
        js = self.js.reshape(-1)
        return {
            "drifted_fraction": float(self.drifted.float().mean()) if js.numel() else 0.0,
            "mean_js": float(js.mean()) if js.numel() else 0.0,
            "median_js": float(js.median()) if js.numel() else 0.0,
            "images_with_drift": float(self.drifted.any(1).float().mean()) if js.numel() else 0.0,
            "threshold": self.threshold,
        }

    def per_crop(self) -> dict[str, list[float]]:
        """Per crop position j (over images): the mean divergence and the drifted share."""
        return {
            "js": self.js.mean(0).tolist(),
            "drifted": self.drifted.float().mean(0).tolist(),
        }

    def histogram(self, bins: int = 20) -> tuple[list[int], list[float]]:
        """(counts, edges) of every crop's divergence over [0, ln 2]."""
        counts = torch.histc(self.js.reshape(-1).float(), bins=bins, min=0.0, max=JS_MAX)
        edges = torch.linspace(0.0, JS_MAX, bins + 1)
        return [int(c) for c in counts], [float(e) for e in edges]

    def listing(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The drifted crops, the farthest first: image, crop, class, top class, its
        probability, the divergence."""
        idx = self.drifted.nonzero()
        rows = [
            {
                "image": int(i),
                "crop": int(j),
                "class": int(self.labels[i]),
                "top_class": int(self.top[i, j]),
                "top_prob": float(self.top_prob[i, j]),
                "js": float(self.js[i, j]),
            }
            for i, j in idx.tolist()
        ]
        rows.sort(key=lambda r: -r["js"])
        return rows[:limit] if limit is not None else rows


def crop_drift(
    dense: torch.Tensor,
    labels: torch.Tensor,
    full: torch.Tensor | None = None,
    *,
    threshold: float = DRIFT_JS,
) -> CropDrift:
    """Drift of crop labels `dense` (M, J, K) against the images' labels `full` (M, K) (None:
    the mean of each image's crop labels) and classes `labels` (M,)."""
    p = dense.float()
    ref = full.float() if full is not None else p.mean(1)
    js = js_divergence(p, ref.unsqueeze(1).expand_as(p))  # (M, J)
    top_prob, top = p.max(-1)
    agrees = top == labels.view(-1, 1).to(top.device).long()
    return CropDrift(
        js=js,
        top=top,
        top_prob=top_prob,
        agrees=agrees,
        drifted=(~agrees) & (js >= threshold),
        labels=labels.long().cpu(),
        threshold=float(threshold),
        reference="full image label" if full is not None else "mean crop label",
    )


def _joined(parts: list[CropDrift]) -> CropDrift:
    first = parts[0]
    return CropDrift(
        js=torch.cat([d.js for d in parts]),
        top=torch.cat([d.top for d in parts]),
        top_prob=torch.cat([d.top_prob for d in parts]),
        agrees=torch.cat([d.agrees for d in parts]),
        drifted=torch.cat([d.drifted for d in parts]),
        labels=torch.cat([d.labels for d in parts]),
        threshold=first.threshold,
        reference=first.reference,
    )


def set_drift(la: Any, *, threshold: float = DRIFT_JS, floats: int | None = None) -> CropDrift:
    """Drift of a label-augmented set's own stored labels, decoded a chunk of images at a time
    (ladd.codecs EncodedDense.chunks, about `floats` decoded at a time): only (M, J) numbers
    are kept, never the (M, J, K) labels."""
    full = getattr(la, "full_soft", None)
    parts = []
    labels = la.labels.cpu()
    chunks = la.dense_labels().chunks(floats) if floats else la.dense_labels().chunks()
    for start, probs in chunks:
        stop = start + probs.shape[0]
        ref = full[start:stop] if full is not None else None
        parts.append(crop_drift(probs, labels[start:stop], ref, threshold=threshold))
    return _joined(parts)


@torch.no_grad()
def labeler_drift(
    images: torch.Tensor,
    labels: torch.Tensor,
    model: torch.nn.Module,
    n: int = 5,
    r: float = 0.625,
    *,
    sampler: Any = None,
    threshold: float = DRIFT_JS,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
) -> CropDrift:
    """Drift of the crops of `images` (M, C, H, W, normalised as the labeler's inputs) under a
    labeler `model`: its labels of the crops (ladd.dense.generate_dense_labels) against its
    labels of the full images, `batch_size` images at a time."""
    from ladd.dense import full_image_soft_labels, generate_dense_labels

    parts = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i : i + batch_size]
        dense = generate_dense_labels(x, model, n, r, device=device, sampler=sampler)
        full = full_image_soft_labels(x.to(device), model)
        parts.append(crop_drift(dense, labels[i : i + batch_size], full, threshold=threshold))
    return _joined(parts)


def drift_across(
    distilled: Any,
    labelers: list[Any],
    n: int = 5,
    r: float = 0.625,
    *,
    threshold: float = DRIFT_JS,
    device: str | torch.device = "cpu",
    allow_mismatch: bool = False,
    bins: int = 0,
) -> dict[int, dict[str, Any]]:
    """Drift summaries per labeler epoch (the paper's Fig. 5 view with a drift axis); with
    `bins`, each also holds the histogram of the divergences ("histogram": counts over
    [0, ln 2])."""
    from ladd.crop_stats import checked_labelers
    from ladd.device import resolve_device

    dev = resolve_device(device)
    out: dict[int, dict[str, float]] = {}
    for lab in checked_labelers(distilled, labelers, dev, allow_mismatch=allow_mismatch):
        d = labeler_drift(
            distilled.images, distilled.labels, lab.model.to(dev), n, r,
            threshold=threshold, device=dev,
        )  # fmt: skip
        row: dict[str, Any] = d.summary()
        if bins:
            row["histogram"] = d.histogram(bins)[0]
        out[int(lab.meta.epoch)] = row
    return out


def drift_of_set(
    dataset: Any,
    labelers: list[Any] | tuple[Any, ...] = (),
    n: int = 5,
    r: float = 0.625,
    *,
    threshold: float = DRIFT_JS,
    device: str | torch.device = "auto",
) -> dict[int, CropDrift]:
    """Drift of a set's crops per labeler epoch (what `ladd drift` and `ladd stats --drift`
    show). With `labelers` (checkpoints, or folders of them in epoch order) each labels the
    set's crops and full images afresh (a label-augmented set's own crops replace (n, r));
    without, a label-augmented set's stored labels against its stored full-image labels,
    streamed; a plain set has none (ValueError)."""
    from pathlib import Path

    from ladd.crop_stats import checked_labelers
    from ladd.device import resolve_device
    from ladd.labeler import Labeler, list_checkpoints
    from ladd.sets import LabelAugmentedSet

    augmented = isinstance(dataset, LabelAugmentedSet)
    if not labelers:
        if not augmented:
            raise ValueError("a plain distilled set needs a labeler to label its crops")
        epoch = int(dataset.labeler.get("epoch") or 0)
        return {epoch: set_drift(dataset, threshold=threshold)}
    dev = resolve_device(device)
    sampler = dataset.crop_sampler() if augmented else None
    base = dataset.to_distilled() if augmented else dataset
    given: list[Any] = []  # Labelers as they are, each folder as its checkpoints in epoch order
    for lab in labelers:
        p = None if isinstance(lab, Labeler) else Path(lab)
        given += [lab] if p is None else list_checkpoints(p) if p.is_dir() else [p]
    out: dict[int, CropDrift] = {}
    # each labeler checked against the set's input space, as crop statistics check it
    for lab in checked_labelers(base, given, dev):
        out[int(lab.meta.epoch)] = labeler_drift(
            base.images, base.labels, lab.model.to(dev), n, r,
            sampler=sampler, threshold=threshold, device=dev,
        )  # fmt: skip
    return out
