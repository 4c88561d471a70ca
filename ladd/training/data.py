"""The training set of a label mode: a flat list of samples (full images, then crops) and their
probability targets, built from a distilled or label-augmented set."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from ladd.codecs import EncodedTargets
from ladd.cropped import CroppedInputs
from ladd.limits import Limits, current_limits
from ladd.samplers import cut_boxes
from ladd.sets.augmented import LabelAugmentedSet, TrainableSet
from ladd.subsample import sub_sample
from ladd.training.config import FULL_LABELS, TrainConfig
from ladd.training.modes import label_mode

__all__ = ["TrainingData", "build_training_data", "loss_weight"]


@dataclass
class TrainingData:
    """A flat deployment training set: inputs and probability targets."""

    inputs: torch.Tensor | CroppedInputs  # float (T, C, H, W) normalised, or cut when drawn
    targets: torch.Tensor | EncodedTargets  # (T, K) probability rows, or decoded when drawn
    num_full: int  # how many of the T samples are full images (they come first)
    num_crops: int  # how many are crops
    num_classes: int
    num_images: int = 0  # distinct images the samples come from (M)
    # The order of each pass's batches when the data fixes it (a soft-label store's replay,
    # ladd.stores.replay.ReplaySchedule); None: the loop shuffles (ladd.trainers.loop.Shuffle).
    schedule: Any = None
    temperature: float = 1.0  # the student's logits are divided by it in the loss (KD's T)
    # Per sample (T,): its image's class, and whether its target is the labeler's label (a
    # dense crop, or the labeler's label of a full image): what a label strategy
    # (ladd.strategies) tells apart. None: not built (a researcher's own tensors).
    classes: torch.Tensor | None = None
    soft: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def to(self, device: str | torch.device) -> TrainingData:
        return replace(
            self,
            inputs=self.inputs.to(device),
            targets=self.targets.to(device),
            classes=self.classes.to(device) if self.classes is not None else None,
            soft=self.soft.to(device) if self.soft is not None else None,
        )

    def sample_kinds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(classes, soft) per sample; for data built without them, each target's arg-max
        as its class and every sample as hard-labelled."""
        if self.classes is not None and self.soft is not None:
            return self.classes, self.soft
        t = len(self)
        dev = self.inputs.device
        head = getattr(self.targets, "head", self.targets)
        classes = torch.zeros(t, dtype=torch.long, device=dev)
        if isinstance(head, torch.Tensor) and head.shape[0]:
            classes[: head.shape[0]] = head.argmax(-1).to(dev)
        return classes, torch.zeros(t, dtype=torch.bool, device=dev)


def _as_probs(t: torch.Tensor) -> torch.Tensor:
    """Soft labels as probabilities: kept when rows already are, else softmax (DATM's logits)."""
    t = t.float()
    if bool((t >= 0).all()) and bool(((t.sum(1) - 1).abs() < 1e-3).all()):
        return t
    return torch.softmax(t, dim=1)


def _num_classes(dataset: TrainableSet) -> int:
    if isinstance(dataset, LabelAugmentedSet) or dataset.class_names:
        return int(dataset.num_classes)
    return int(dataset.labels.max()) + 1


def build_training_data(
    dataset: TrainableSet,
    mode: str,
    *,
    n: int | None = 5,
    r: float | None = 0.625,
    full_labels: str = "hard",
    lazy_labels: bool | None = None,
    lazy_inputs: bool | None = None,
    limits: Limits | None = None,
    sampler: str | None = None,
) -> TrainingData:
    """The flat sample list of a label mode from a DistilledSet or LabelAugmentedSet (on CPU).

    Full images come first, then the crops (raster order per image). `n`, `r` only matter for
    crop modes on a plain distilled set (a label-augmented set brings its own). full_labels
    "set_soft": the full images' "hard" targets are the set's own soft labels when it has them
    (ValueError for a value not in FULL_LABELS: TrainConfig reads the old spellings).
    lazy_labels: the dense labels stay in their codec (ladd.codecs.EncodedTargets: a batch's
    rows are decoded when it is drawn, on the device, and no [M, N*N, K] float tensor is built);
    None: lazy for a set held in a codec other than float32/float16, as today otherwise.
    lazy_inputs: the inputs are ladd.cropped.CroppedInputs (the stored images once, uint8 when
    they came from 8-bit files; each batch's crops cut and resized when it is drawn) instead of
    every sample as a float image; None: lazy when the eager list would be over the crop-bytes
    limit (`limits`, default the LADD_MAX_* environment's), which used to refuse such a set.
    sampler: the crops of a crop mode on a plain set when not the N x R grid (a ladd.samplers
    spec); a label-augmented set brings its own.
    """
    lm = label_mode(mode)
    if lm.replay:  # a soft-label store's epochs, as stored (ladd.stores.replay)
        if not hasattr(dataset, "replay_data"):
            raise ValueError(f"mode {mode!r} needs a soft-label store (--soft-labels STORE)")
        return dataset.replay_data()
    if full_labels not in FULL_LABELS:
        raise ValueError(
            f"unknown full_labels {full_labels!r}; use one of {', '.join(FULL_LABELS)}"
        )
    caps = limits if limits is not None else current_limits()
    images = dataset.images.float().cpu()  # (M, C, H, W)
    m = images.shape[0]
    k = _num_classes(dataset)
    hard = F.one_hot(dataset.labels.cpu().long(), k).float()  # (M, K)
    labelled = isinstance(dataset, LabelAugmentedSet)
    from ladd.samplers import grid_sampler, parse_sampler

    boxes = None  # a sampler other than the grid: its boxes
    per = 0  # crops per image
    if lm.crops:
        if labelled:
            crop_sampler = dataset.crop_sampler()
        else:
            if not sampler and (n is None or r is None):
                raise ValueError(f"mode {mode!r} cuts crops: give their grid (n and r)")
            crop_sampler = parse_sampler(sampler) if sampler else grid_sampler(n, r)
        if crop_sampler.grid is not None:
            n, r = crop_sampler.grid
        else:
            boxes = crop_sampler.boxes(int(dataset.images.shape[-1]))
        per = crop_sampler.num_crops
    if lm.needs_dense and not labelled:
        raise ValueError(
            f"mode {mode!r} needs dense labels: label-augment the set first (ladd augment)"
        )
    if lm.needs_labeler and (not labelled or dataset.full_soft is None):
        raise ValueError(
            f"mode {mode!r} needs a label-augmented set (the labeler's soft labels of full images)"
        )
    if lazy_labels is None:
        lazy_labels = labelled and dataset.encoded is not None

    def full_targets(kind: str) -> torch.Tensor:
        if kind == "hard":
            soft = dataset.soft_labels
            if full_labels == "set_soft" and soft is not None:
                return _as_probs(soft.cpu())
            return hard
        if kind == "labeler":
            return dataset.full_soft.float().cpu()
        raise ValueError(f"unknown full-image label kind {kind!r}")

    parts_x: list[torch.Tensor] = []
    parts_y: list[torch.Tensor] = []
    labels = dataset.labels.cpu().long()
    parts_c: list[torch.Tensor] = []  # each sample's class
    parts_s: list[bool] = []  # per part: the labeler's labels or not
    for kind in lm.full:
        parts_x.append(images)
        parts_y.append(full_targets(kind))
        parts_c.append(labels)
        parts_s.append(kind == "labeler")
    num_full = m * len(lm.full)
    num_crops = 0
    encoded = None  # the dense labels' EncodedDense when they stay encoded (always last)
    if lm.crops:
        c, h, w = images.shape[1:]
        # the crops, each copy in the sample list, and the final concatenation
        need = m * per * c * h * w * 4 * (1 + 2 * len(lm.crops))
        if lazy_inputs is None:
            lazy_inputs = need > caps.max_crop_bytes
        if not lazy_inputs:
            what = f"{lm.name} training set ({m} images, {per} crops each)"
            caps.check_crop_bytes(need, what)
            cut = (
                sub_sample(images, n, r, limits=caps) if boxes is None else cut_boxes(images, boxes)
            )
            crops = cut.flatten(0, 1)  # (M*J, C, H, W), each image's crops in order
        for kind in lm.crops:
            if not lazy_inputs:
                parts_x.append(crops)
            num_crops += m * per
            parts_c.append(labels.repeat_interleave(per))
            parts_s.append(kind == "dense")
            if kind == "hard":
                parts_y.append(hard.repeat_interleave(per, dim=0))  # (M*J, K)
            elif kind == "dense" and lazy_labels and kind == lm.crops[-1]:  # rows come last
                encoded = dataset.dense_labels()
            elif kind == "dense":
                parts_y.append(dataset.probs().cpu().reshape(m * per, k))
            else:
                raise ValueError(f"unknown crop label kind {kind!r}")
    if not lm.crops and lazy_inputs is None:  # full images only: their float copies
        lazy_inputs = images.numel() * 4 * (1 + len(lm.full)) > caps.max_crop_bytes
    head = torch.cat(parts_y).contiguous() if parts_y else hard[:0]
    targets: torch.Tensor | EncodedTargets = head if encoded is None else encoded.targets(head)
    inputs: torch.Tensor | CroppedInputs
    if lazy_inputs:
        inputs = _cropped_inputs(dataset, images, len(lm.full), len(lm.crops), n, r, boxes)
    else:
        inputs = torch.cat(parts_x).contiguous()
    soft = torch.cat(
        [
            torch.full((len(cl),), flag, dtype=torch.bool)
            for cl, flag in zip(parts_c, parts_s, strict=True)
        ]
    )
    return TrainingData(
        inputs=inputs,
        targets=targets,
        num_full=num_full,
        num_crops=num_crops,
        num_classes=k,
        num_images=m,
        classes=torch.cat(parts_c),
        soft=soft,
    )


def _cropped_inputs(
    dataset: TrainableSet,
    images: torch.Tensor,
    full_copies: int,
    crop_copies: int,
    n: int,
    r: float,
    boxes: list | None = None,
) -> CroppedInputs:
    """The lazy inputs of build_training_data: uint8 pixels when the set's images are exactly
    8-bit pixels' normalisation and it has no ZCA (ladd.data.imageset.exact_pixels), float
    otherwise."""
    from ladd.data.imageset import exact_pixels

    mean, std = dataset.mean, dataset.std
    pixels = None if dataset.zca is not None else exact_pixels(images, mean, std)
    cut = tuple(tuple(b) for b in boxes) if boxes is not None else None
    if pixels is not None:
        return CroppedInputs(
            pixels, full_copies, crop_copies, n, r, tuple(mean), tuple(std), boxes=cut
        )
    return CroppedInputs(images, full_copies, crop_copies, n, r, boxes=cut)


def loss_weight(cfg: TrainConfig, data: TrainingData) -> float:
    """The factor on the batch-mean loss: 1 for "mean", samples per image for "image_sum"."""
    if cfg.loss == "mean":
        return 1.0
    images = max(1, data.num_images)
    return len(data) / images
