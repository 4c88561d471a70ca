"""The rules of training a model on a (label-augmented) distilled set, in one place.

Both trainers (`ladd.trainers.reference`, the field-style loop, and `ladd.trainers.fast`, all
seeds in one step) import this module and nothing of each other. What is here:

- `TrainConfig`: the protocol of one deployment run (saved with every run record).
- The label modes (paper Table 6): what the student trains on, as a flat list of samples.
- `soft_cross_entropy`: the one loss, for (B, K) and stacked (S, B, K) logits.
- `make_optimizer` / `make_scheduler`: SGD and the lr schedule, built on torch.optim.
- `TrainingStopped`: the one exception for "the caller asked us to stop".
- `init_model`, `step_flops`, `TrainedModels`, `TrainingData`.

A new loss, schedule or label mode is one change here; the parity tests (stacked step vs the
per-seed reference) keep the trainers equal.

Protocol (REFERENCE.md section 3): SGD momentum 0.9, weight decay 5e-4, batch 256, lr x 0.1 at
the half, 1000 epochs, evaluated once at the end (nothing is chosen on the test set). Per epoch
the samples are shuffled with a seeded generator and fed in batches; each batch gets one DSA op
and the soft-target cross-entropy averaged over the batch. Since every sample carries the
weight 1/B, this is the paper's CE(h(x), y) + sum_j CE(h(S_j(x)), y^d_j) up to a constant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ladd.dsa import DSAConfig
from ladd.flops import train_flops_per_sample
from ladd.models import ModelSpec, create_from_spec, default_lr
from ladd.subsample import sub_sample

__all__ = [
    "MODES",
    "PRECISIONS",
    "SCHEDULES",
    "LabelMode",
    "TrainConfig",
    "TrainedModels",
    "TrainingData",
    "TrainingStopped",
    "base_lr",
    "build_training_data",
    "init_model",
    "make_optimizer",
    "make_scheduler",
    "model_spec",
    "resolve_lr",
    "soft_cross_entropy",
    "step_flops",
]


class TrainingStopped(RuntimeError):
    """Long work ended early because the caller's stop event was set (training, labeler, demo)."""


# ---------------------------------------------------------------------------------------------
# Label modes (paper Table 6)


@dataclass(frozen=True)
class LabelMode:
    """What a student trains on: full images and/or crops, and which label each gets.

    full: labels of the full images, in order ("set": the set's own labels, i.e. hard or its
      soft labels such as DATM's; "labeler": the labeler's soft label of the full image);
      empty = no full images.
    crops: labels of the N x N crops ("dense": the labeler's dense labels; "hard": the image's
      hard label); empty = no crops.
    """

    name: str
    description: str
    full: tuple[str, ...] = ()
    crops: tuple[str, ...] = ()

    @property
    def needs_dense(self) -> bool:
        return "dense" in self.crops

    @property
    def needs_labeler(self) -> bool:
        return "labeler" in self.full


_MODES: tuple[LabelMode, ...] = (
    LabelMode(
        "baseline", "full images with their hard labels (or the set's own soft labels)", ("set",)
    ),
    LabelMode(
        "ladd",
        "LADD: full images with their labels + every crop with its dense soft label (Eq. 5)",
        ("set",),
        ("dense",),
    ),
    LabelMode(
        "full_soft", "full images with the labeler's soft label of the full image", ("labeler",)
    ),
    LabelMode("crops_hard", "crops only, each with its image's hard label", (), ("hard",)),
    LabelMode("crops_dense", "crops only, each with its dense soft label", (), ("dense",)),
)
MODES: dict[str, LabelMode] = {m.name: m for m in _MODES}


def label_mode(name: str) -> LabelMode:
    """The LabelMode called `name` (ValueError naming the choices when unknown)."""
    try:
        return MODES[name]
    except KeyError:
        raise ValueError(f"unknown mode {name!r}; use one of {', '.join(MODES)}") from None


# ---------------------------------------------------------------------------------------------
# The protocol


SCHEDULES: tuple[str, ...] = ("step",)
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """How models are trained on a distilled set (saved with every run)."""

    arch: str = "convnet_d3"
    mode: str = "ladd"
    epochs: int = 1000
    lr: float | None = None  # None: the set's own lr (DATM), else default_lr(arch, size)
    batch_size: int = 256
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "step"  # "step": lr x lr_decay_factor after lr_decay_at of the epochs
    lr_decay_at: float = 0.5
    lr_decay_factor: float = 0.1
    trainer: str = "fast"  # a registered trainer (ladd.trainers): "fast" or "reference"
    precision: str = "fp32"  # "bf16": autocast on CUDA
    dsa: bool = True
    dsa_strategy: str = DSAConfig().strategy
    n: int = 5  # crop grid for crops_hard on a plain distilled set (else the set's n, r)
    r: float = 0.625
    eval_batch_size: int = 1024
    model_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"width": 32}

    def __post_init__(self) -> None:
        label_mode(self.mode)
        if not isinstance(self.trainer, str) or not self.trainer:
            raise ValueError(f"trainer must be a registered trainer's name, got {self.trainer!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use fp32 or bf16")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"unknown schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}"
            )
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))

    @property
    def label_mode(self) -> LabelMode:
        return label_mode(self.mode)

    @property
    def dsa_config(self) -> DSAConfig:
        return DSAConfig(strategy=self.dsa_strategy)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """A config from its `to_dict` form (a run record's); keys it does not know are dropped,
        missing ones take today's defaults."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "seeds" in kw:
            kw["seeds"] = tuple(kw["seeds"])
        return cls(**kw)


def resolve_lr(cfg: TrainConfig, dataset: Any, arch: str, image_size: int) -> float:
    """--lr when given, else the set's own (DATM lr_best), else the architecture's default."""
    if cfg.lr is not None:
        return float(cfg.lr)
    lr = getattr(dataset, "lr", None)
    if lr is not None:
        return float(lr)
    return default_lr(arch, image_size)


def base_lr(cfg: TrainConfig, spec: ModelSpec) -> float:
    """cfg.lr when set, else the architecture's default rate (the one fallback; callers that
    know the set resolve a set's own lr first with resolve_lr)."""
    return float(cfg.lr) if cfg.lr is not None else default_lr(spec.name, spec.image_size)


def make_optimizer(
    params: Any, cfg: TrainConfig, lr: float, *, foreach: bool | None = None
) -> torch.optim.SGD:
    """The protocol's SGD over `params` (a module's parameters or stacked tensors)."""
    return torch.optim.SGD(
        params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, foreach=foreach
    )


def make_scheduler(
    opt: torch.optim.Optimizer, cfg: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    """The lr schedule, stepped once at the END of every epoch (epoch e trains at its lr).

    "step": lr x cfg.lr_decay_factor from epoch int(epochs * lr_decay_at) on (none when that
    epoch is 0, i.e. a 1-epoch run keeps its lr).
    """
    if cfg.schedule == "step":
        decay_epoch = int(cfg.epochs * cfg.lr_decay_at)
        milestones = [decay_epoch] if decay_epoch > 0 else []
        return torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=milestones, gamma=cfg.lr_decay_factor
        )
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


# ---------------------------------------------------------------------------------------------
# The loss


def soft_cross_entropy(
    logits: torch.Tensor, target_probs: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy with probability targets, averaged over the batch axis (the second last).

    (B, K), (B, K) -> (); stacked seeds (S, B, K), (S, B, K) -> (S,), each seed's own mean.
    `weight` (B,) or (S, B): 1 for real samples, 0 for padding; the mean is over real samples.
    Computed in float32 whatever the logits' dtype.
    """
    ce = -(target_probs * F.log_softmax(logits.float(), dim=-1)).sum(-1)  # (..., B)
    if weight is None:
        return ce.mean(-1)
    return (ce * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)


# ---------------------------------------------------------------------------------------------
# The training set


@dataclass
class TrainingData:
    """A flat deployment training set: inputs and probability targets."""

    inputs: torch.Tensor  # float (T, C, H, W), normalised
    targets: torch.Tensor  # float (T, K), rows are probability vectors
    num_full: int  # how many of the T samples are full images (they come first)
    num_crops: int  # how many are crops
    num_classes: int

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def to(self, device: str | torch.device) -> TrainingData:
        return replace(self, inputs=self.inputs.to(device), targets=self.targets.to(device))


def _as_probs(t: torch.Tensor) -> torch.Tensor:
    """Soft labels as probabilities: kept when rows already are, else softmax (DATM's logits)."""
    t = t.float()
    if bool((t >= 0).all()) and bool(((t.sum(1) - 1).abs() < 1e-3).all()):
        return t
    return torch.softmax(t, dim=1)


def _num_classes(dataset: Any) -> int:
    if getattr(dataset, "dense", None) is not None:
        return int(dataset.dense.shape[-1])
    if getattr(dataset, "class_names", None):
        return len(dataset.class_names)
    return int(dataset.labels.max()) + 1


def build_training_data(dataset: Any, mode: str, *, n: int = 5, r: float = 0.625) -> TrainingData:
    """The flat sample list of a label mode from a DistilledSet or LabelAugmentedSet (on CPU).

    Full images come first, then the crops (raster order per image). `n`, `r` only matter for
    crop modes on a plain distilled set (a label-augmented set brings its own).
    """
    lm = label_mode(mode)
    images = dataset.images.float().cpu()  # (M, C, H, W)
    m = images.shape[0]
    k = _num_classes(dataset)
    hard = F.one_hot(dataset.labels.cpu().long(), k).float()  # (M, K)
    dense = getattr(dataset, "dense", None)
    if dense is not None:
        n, r = int(dataset.n), float(dataset.r)
    if lm.needs_dense and dense is None:
        raise ValueError(
            f"mode {mode!r} needs dense labels: label-augment the set first (ladd augment)"
        )
    if lm.needs_labeler and getattr(dataset, "full_soft", None) is None:
        raise ValueError(
            f"mode {mode!r} needs a label-augmented set (the labeler's soft labels of full images)"
        )

    def full_targets(kind: str) -> torch.Tensor:
        if kind == "set":
            soft = getattr(dataset, "soft_labels", None)
            return _as_probs(soft.cpu()) if soft is not None else hard
        if kind == "labeler":
            return dataset.full_soft.float().cpu()
        raise ValueError(f"unknown full-image label kind {kind!r}")

    parts_x: list[torch.Tensor] = []
    parts_y: list[torch.Tensor] = []
    for kind in lm.full:
        parts_x.append(images)
        parts_y.append(full_targets(kind))
    num_full = m * len(lm.full)
    num_crops = 0
    if lm.crops:
        crops = sub_sample(images, n, r).flatten(0, 1)  # (M*n*n, C, H, W), raster order per image
        for kind in lm.crops:
            if kind == "hard":
                targets = hard.repeat_interleave(n * n, dim=0)  # (M*n*n, K)
            elif kind == "dense":
                targets = dense.float().cpu().reshape(m * n * n, k)
            else:
                raise ValueError(f"unknown crop label kind {kind!r}")
            parts_x.append(crops)
            parts_y.append(targets)
            num_crops += crops.shape[0]
    return TrainingData(
        inputs=torch.cat(parts_x).contiguous(),
        targets=torch.cat(parts_y).contiguous(),
        num_full=num_full,
        num_crops=num_crops,
        num_classes=k,
    )


# ---------------------------------------------------------------------------------------------
# Models and what a trainer returns


def model_spec(cfg: TrainConfig, num_classes: int, image_size: int, channels: int = 3) -> ModelSpec:
    """The ModelSpec of a config's architecture (model_options applied)."""
    return ModelSpec(cfg.arch, num_classes, image_size, channels, dict(cfg.model_options))


def init_model(spec: ModelSpec, seed: int) -> nn.Module:
    """A freshly initialised model: the same seed gives the same weights, whichever trainer."""
    return create_from_spec(spec, seed=seed)


def step_flops(data: TrainingData, spec: ModelSpec, batch_size: int, device: torch.device) -> float:
    """FLOPs of one forward + backward per sample, measured once on a small batch."""
    probe = init_model(spec, 0).to(device)
    x = data.inputs[: min(batch_size, 8, len(data))].to(device)
    return train_flops_per_sample(probe, x, data.num_classes)


@dataclass
class TrainedModels:
    """What a trainer returns: one model per seed (eval mode, on the device)."""

    models: list[nn.Module]
    loss_curves: list[list[float]]  # per seed, the mean training loss of each epoch
    seconds: float
    flops: int = 0  # filled in by ladd.trainers.train_models (counted once, whatever the engine)
