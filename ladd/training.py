"""The rules of training a model on a (label-augmented) distilled set, in one place.

The one training loop (`ladd.trainers.loop.fit`) and its engines (`ladd.trainers.reference`,
one seed at a time, and `ladd.trainers.fast`'s stacked engine, all seeds in one step) import
this module (the fast trainer runs the reference engine as its sequential engine). What is here:

- `TrainConfig`: the protocol of one deployment run (saved with every run record).
- The label modes (paper Table 6): what the student trains on, as a flat list of samples.
- `soft_cross_entropy`: the one loss, for (B, K) and stacked (S, B, K) logits.
- `resolve_lr`: the lr rule (--lr, a set's learned lr, the architecture's rate).
- `make_optimizer` / `make_scheduler`: the protocol's optimiser (SGD, or RDED's AdamW) and lr
  schedule, built on torch.optim.
- `PassEnd`: what the loop does after every pass (schedule, EMA, monitor); `check_finite`.
- `TrainCheckpoint`: the file a run's training state is kept in (the loop owns its format).
- `TrainingStopped`: the one exception for "the caller asked us to stop".
- `init_model`, `step_flops`, `TrainedModels`, `TrainingData`.

A new loss, schedule or label mode is one change here; the parity tests (stacked step vs the
per-seed reference) keep the trainers equal.

Protocols (REFERENCE.md section 3), named by the code the paper follows; both use SGD momentum
0.9, weight decay 5e-4, batch 256, one DSA op per batch, and test once at the end (nothing is
chosen on the test set):
  mtt   CIFAR (MTT / DATM `utils.evaluate_synset`): lr x 0.1 after pass Epoch // 2 + 1 with a
        fresh optimiser (momentum buffers reset), Epoch + 1 passes in all, no EMA.
  glad  ImageNet subsets at 128 px (GLaD `utils.evaluate_synset`): LinearLR warm-up from 1e-7 x lr
        over Epoch // 2 passes, then CosineAnnealingLR over Epoch // 2; an EMA of the weights
        (ema_pytorch, beta 0.995, power 1, updated once per pass) is the model that is tested.
  rded  ImageNet-1K at 224 px (RDED validation/main.py without its online teacher): AdamW
        (betas 0.9, 0.999; weight decay 0.01 on weight matrices and kernels only), lr x
        0.5 (1 + cos(pi e / E / 2)) at pass e, E passes, RDED's augmentation (ladd.rded:
        ShufflePatches, RandomResizedCrop, flip) in place of DSA, no EMA; the per-student AdamW
        rates of its argument.py. Batch and epochs are the user's: RDED runs 300 epochs and a
        batch of rded_batch_size(ipc, classes) (100 at ImageNet-1K, IPC 10).
Per pass the samples are shuffled with a seeded generator and fed in batches; each batch's loss is
the soft-target cross-entropy averaged over the batch ("mean", what the field's loaders do), or
that times the samples per image ("image_sum": Eq. 5's per-image sum of the crop terms).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ladd.dsa import DSAConfig
from ladd.flops import train_flops_per_sample
from ladd.models import ModelSpec, create_from_spec, default_lr
from ladd.models.registry import small_variant
from ladd.subsample import sub_sample

__all__ = [
    "RDED_ADAMW",
    "RDED_ADAMW_LR",
    "half_cosine_factor",
    "rded_batch_size",
    "rded_lr",
    "MODES",
    "PRECISIONS",
    "LOSSES",
    "PROTOCOLS",
    "LRSchedule",
    "NonFiniteLoss",
    "Protocol",
    "WeightEMA",
    "LabelMode",
    "TrainCheckpoint",
    "TrainConfig",
    "TrainedModels",
    "TrainingData",
    "TrainingStopped",
    "base_lr",
    "checkpoint_path",
    "train_key",
    "build_training_data",
    "init_model",
    "make_optimizer",
    "check_finite",
    "default_protocol",
    "distillation_arch",
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

    full: labels of the full images, one copy of the images per entry ("hard": one-hot, or the
      set's own soft labels such as DATM's when TrainConfig.full_labels is "set_soft"; "labeler": the
      labeler's soft label of the full image, stored in a label-augmented set as `full_soft`);
      empty = no full images.
    crops: labels of the N x N crops, one copy of the crops per entry ("dense": the labeler's
      dense labels; "hard": the image's hard label); empty = no crops.
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


# Paper Table 6's rows (GLaD(MTT), ImageNette, IPC 5), in its order.
_MODES: tuple[LabelMode, ...] = (
    LabelMode("baseline", "full images with their hard labels", ("hard",)),
    LabelMode(
        "full_soft", "full images with the labeler's soft label of the full image", ("labeler",)
    ),
    LabelMode(
        "full_hard_soft",
        "full images twice: with the hard label and with the labeler's soft label",
        ("hard", "labeler"),
    ),
    LabelMode("crops_hard", "crops only, each with its image's hard label", (), ("hard",)),
    LabelMode("crops_dense", "crops only, each with its dense soft label", (), ("dense",)),
    LabelMode(
        "crops_hard_dense",
        "crops only, twice: with the image's hard label and with the dense label",
        (),
        ("hard", "dense"),
    ),
    LabelMode(
        "ladd",
        "LADD (Eq. 5): full images with their hard labels + every crop with its dense label",
        ("hard",),
        ("dense",),
    ),
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


PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
LOSSES: tuple[str, ...] = ("mean", "image_sum")
FULL_LABELS: tuple[str, ...] = ("hard", "set_soft")
FULL_LABELS_ALIASES = {"set": "set_soft"}  # the name before it said what it gives


@dataclass(frozen=True)
class Protocol:
    """How a student is trained and which weights are tested, as one of the field's codebases."""

    name: str
    description: str
    schedule: str  # "step_half" (MTT) | "warmup_cosine" (GLaD) | "half_cosine" (RDED)
    ema_beta: float | None  # the EMA's top decay; None: the trained weights are tested
    extra_pass: bool  # MTT's loop is range(Epoch + 1): one more pass than --epochs says
    optimizer: str = "sgd"  # "sgd" (momentum, weight decay of the config) | "adamw" (RDED's)
    augment: str = "dsa"  # the training augmentation: "dsa" (ladd.dsa) | "rded" (ladd.rded)


PROTOCOLS: dict[str, Protocol] = {
    "mtt": Protocol(
        "mtt",
        "CIFAR protocol of MTT/DATM: lr x 0.1 after pass epochs//2 + 1 (fresh optimiser), "
        "epochs + 1 passes, no EMA",
        "step_half",
        None,
        True,
    ),
    "glad": Protocol(
        "glad",
        "ImageNet-subset protocol of GLaD: linear warm-up over the first half, cosine decay over "
        "the second, the EMA (beta 0.995) of the weights is tested",
        "warmup_cosine",
        0.995,
        False,
    ),
    "rded": Protocol(
        "rded",
        "ImageNet-1K protocol of RDED without its teacher: AdamW (weight decay 0.01 on weights), "
        "lr x 0.5 (1 + cos(pi e / 2E)), ShufflePatches + RandomResizedCrop + flip, no EMA",
        "half_cosine",
        None,
        False,
        optimizer="adamw",
        augment="rded",
    ),
}

# RDED argument.py lines 276-306: --adamw-lr per student (`args.stud_name`), by our model names.
# RDED's "resnet18_modified" (its CIFAR/Tiny ResNet-18) is the field's ResNet-18 here.
RDED_ADAMW_LR: dict[str, float] = {
    "tv_resnet18": 0.001,
    "tv_resnet50": 0.001,
    "tv_mobilenet_v2": 0.0025,
    "resnet18": 0.001,
    "vgg11": 0.0005,
    "alexnet": 0.0001,
    "vit": 0.0001,  # vit_b_16's rate
    "convnet_d3": 0.001,
    "convnet_d4": 0.001,
    "convnet_d5": 0.001,
    "convnet_d6": 0.001,
}
RDED_ADAMW = {"betas": (0.9, 0.999), "weight_decay": 0.01}  # main.py 87-92, argument.py 153


def rded_lr(arch: str) -> float:
    """RDED's AdamW rate for student `arch` (its argument.py), or a ValueError saying to pass
    --lr (RDED leaves other students at --adamw-lr 0, which trains nothing)."""
    try:
        return RDED_ADAMW_LR[arch]
    except KeyError:
        raise ValueError(
            f"RDED gives no AdamW lr for {arch!r} (it has {', '.join(sorted(RDED_ADAMW_LR))}); "
            "pass --lr"
        ) from None


def rded_batch_size(ipc: int, num_classes: int) -> int:
    """RDED's --re-batch-size when left 0 (argument.py lines 234-258): 100 / 50 / 10 at IPC
    50 / 10 / 1, doubled at 100 and 1000 classes, at most ipc x classes; None of those IPCs:
    RDED leaves it 0, here the IPC 10 rule."""
    base = {50: 100, 10: 50, 1: 10}.get(ipc, 50)
    if num_classes in (100, 1000):
        base *= 2
    return min(base, ipc * num_classes)


def default_protocol(image_size: int) -> str:
    """The protocol of a set's family: CIFAR-size (<= 64 px) sets "mtt", 128 px subsets "glad"."""
    return "mtt" if small_variant(image_size) else "glad"


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
    protocol: str = "auto"  # "mtt" | "glad" | "rded" | "auto": by image size (default_protocol)
    loss: str = "mean"  # "mean" over a batch | "image_sum": x samples per image (Eq. 5)
    full_labels: str = "hard"  # full images: one-hot (Eq. 5) | "set_soft": the set's soft labels
    trainer: str = "fast"  # a registered trainer (ladd.trainers): "fast", "reference" or "ddp"
    precision: str = "auto"  # "bf16": autocast on CUDA; "auto": bf16 for the fast trainer on CUDA
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
            raise ValueError(f"unknown precision {self.precision!r}; use auto, fp32 or bf16")
        if self.protocol != "auto" and self.protocol not in PROTOCOLS:
            raise ValueError(
                f"unknown protocol {self.protocol!r}; use auto or one of {', '.join(PROTOCOLS)}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
        object.__setattr__(
            self, "full_labels", FULL_LABELS_ALIASES.get(self.full_labels, self.full_labels)
        )
        if self.full_labels not in FULL_LABELS:
            raise ValueError(
                f"unknown full_labels {self.full_labels!r}; use one of {', '.join(FULL_LABELS)}"
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

    def resolved(self, image_size: int) -> TrainConfig:
        """This config with "auto" settled for a set of `image_size` px (what a run records)."""
        if self.protocol != "auto":
            return self
        return replace(self, protocol=default_protocol(image_size))

    @property
    def protocol_spec(self) -> Protocol:
        if self.protocol == "auto":
            raise ValueError("the protocol is 'auto': resolve it for the set first (cfg.resolved)")
        return PROTOCOLS[self.protocol]

    @property
    def size_free_spec(self) -> Protocol:
        """The protocol where only its size-free parts are asked (optimiser, augmentation):
        "auto" settles to mtt or glad by the set's size, and those two share SGD and DSA, so
        it reads as mtt here."""
        return PROTOCOLS["mtt" if self.protocol == "auto" else self.protocol]

    @property
    def passes(self) -> int:
        """Passes over the training set: epochs, plus one under MTT's range(Epoch + 1)."""
        return self.epochs + (1 if self.protocol_spec.extra_pass else 0)

    @property
    def dsa_config(self) -> DSAConfig:
        return DSAConfig(strategy=self.dsa_strategy)

    @property
    def augmentation(self) -> str:
        """The training augmentation the engines apply: "dsa" (with dsa_strategy), "rded"
        (ladd.rded, the rded protocol's), or "" (dsa = False: none)."""
        if not self.dsa:
            return ""
        kind = self.size_free_spec.augment
        return "" if kind == "dsa" and not self.dsa_config.ops else kind

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


def distillation_arch(image_size: int) -> str:
    """The field's distillation architecture: ConvNet-D3 at <= 64 px, ConvNet-D5 above."""
    return "convnet_d3" if small_variant(image_size) else "convnet_d5"


def resolve_lr(cfg: TrainConfig, dataset: Any, arch: str, image_size: int) -> float:
    """The deployment lr, the one rule: --lr when given; else, under the MTT protocol, a set's
    learned lr (MTT/DATM lr_best.pt) for the architecture it was distilled with; else the
    architecture's own rate (default_lr: GLaD's get_eval_lrs). `dataset` may be None (no set
    known: the first and the last case only).

    MTT/DATM evaluate the distillation model with the learned lr (args.lr_net = syn_lr). GLaD's
    eval_loop (glad_utils.py) sets args.lr_net = eval_pool_dict[model_eval] for every model,
    the distillation model included (`args.model: 0.001`), so under "glad" a set's lr is unused.
    A set may name its distillation architecture (`distill_arch`); else the field's default.
    """
    if cfg.lr is not None:
        return float(cfg.lr)
    lr = getattr(dataset, "lr", None)
    own = getattr(dataset, "distill_arch", None) or distillation_arch(image_size)
    protocol = cfg.protocol if cfg.protocol != "auto" else default_protocol(image_size)
    if protocol == "rded":  # RDED's own per-student AdamW rates; a set's SGD lr is not one
        return rded_lr(arch)
    if lr is not None and protocol == "mtt" and arch == own:
        return float(lr)
    return default_lr(arch, image_size)


def base_lr(cfg: TrainConfig, spec: ModelSpec) -> float:
    """`resolve_lr` without a set, for a model spec: cfg.lr when set, else the architecture's
    default rate (the trainers' fallback when called without a settled lr)."""
    return resolve_lr(cfg, None, spec.name, spec.image_size)


def make_optimizer(
    params: Any,
    cfg: TrainConfig,
    lr: float,
    *,
    foreach: bool | None = None,
    names: list[str] | None = None,
    stacked: bool = False,
) -> torch.optim.Optimizer:
    """The protocol's optimiser over `params` (a module's parameters, or stacked tensors (S, ...)
    when `stacked`): SGD with the config's momentum and weight decay (mtt, glad), or RDED's AdamW
    (rded), which needs the parameters' `names`.

    RDED's groups (validation/utils.py `get_parameters`, lines 67-84): weight decay on the
    parameters whose name contains "weight" and that have more than one dimension (of their own:
    a stacked tensor's seed axis does not count), none on the rest (biases, norm scales, ViT's
    class token and positions).
    """
    if cfg.size_free_spec.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, foreach=foreach
        )
    params = list(params)
    if names is None or len(names) != len(params):
        raise ValueError("AdamW's weight-decay groups need the name of every parameter")
    own = 1 if stacked else 0
    decay = [p for n, p in zip(names, params, strict=True) if "weight" in n and p.dim() - own > 1]
    ids = {id(p) for p in decay}
    rest = [p for p in params if id(p) not in ids]
    groups = [
        {"params": decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups,
        lr=lr,
        betas=RDED_ADAMW["betas"],
        weight_decay=RDED_ADAMW["weight_decay"],
        foreach=foreach,
    )


class LRSchedule:
    """A protocol's lr schedule on an optimiser, built from torch.optim.lr_scheduler; call
    `end_of_pass(p)` after every pass p = 0, 1, ... (the field's loops step once per pass).

    step_half (MTT utils.py `evaluate_synset`): after pass Epoch // 2 + 1 the lr is x 0.1 and the
      optimiser is made anew (its momentum buffers are cleared here: SGD then starts them from
      the next gradient, as a new optimiser would).
    warmup_cosine (GLaD utils.py `evaluate_synset`): LinearLR(start_factor=1e-7, total_iters=E//2)
      and CosineAnnealingLR(T_max=E//2) are made at the start; the first steps until pass E // 2,
      the second from then on.
    half_cosine (RDED validation/main.py lines 95-102, stepped after every epoch, line 187):
      LambdaLR with factor 0.5 (1 + cos(pi e / E / 2)) at pass e (e <= E; 0 after): from 1 down
      to 0.5 + 0.5 cos(pi (E - 1) / 2E) at the last pass, never to 0.
    """

    def __init__(self, opt: torch.optim.Optimizer, cfg: TrainConfig) -> None:
        self.opt = opt
        self.kind = cfg.protocol_spec.schedule
        half = cfg.epochs // 2
        self.switch_at = half
        if self.kind == "step_half":
            self.decay_after = half + 1
            # stepped after pass p, its last_epoch becomes p + 1: the lr of pass decay_after + 1 on
            self.scheds = [
                torch.optim.lr_scheduler.MultiStepLR(opt, [self.decay_after + 1], gamma=0.1)
            ]
        elif self.kind == "half_cosine":
            epochs = cfg.epochs
            self.scheds = [
                torch.optim.lr_scheduler.LambdaLR(
                    opt, lambda e: half_cosine_factor(e, epochs), last_epoch=-1
                )
            ]
        elif self.kind == "warmup_cosine":
            self.scheds = [
                torch.optim.lr_scheduler.LinearLR(
                    opt, start_factor=1e-7, end_factor=1.0, total_iters=max(1, half)
                ),
                torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, half)),
            ]
        else:
            raise ValueError(f"unknown schedule {self.kind!r}")
        self.current = 0

    def end_of_pass(self, p: int) -> None:
        self.scheds[self.current].step()
        if self.kind == "step_half" and p == self.decay_after:
            self.opt.state.clear()  # MTT: a new SGD object, so no momentum carried over
        if self.kind == "warmup_cosine" and p == self.switch_at:
            self.current = 1

    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def fast_forward(self, passes_done: int) -> None:
        """Replay the schedule of `passes_done` passes on a fresh optimiser (resuming): the lr
        only depends on the pass index, so the replay gives the same floats; the optimiser's
        state comes from the checkpoint instead."""
        with warnings.catch_warnings():  # no optimiser step in a replay: torch would warn
            warnings.simplefilter("ignore", UserWarning)
            for p in range(passes_done):
                self.scheds[self.current].step()
                if self.kind == "warmup_cosine" and p == self.switch_at:
                    self.current = 1


def half_cosine_factor(e: int, epochs: int) -> float:
    """RDED's lr factor at epoch e of `epochs` (see LRSchedule)."""
    return 0.5 * (1.0 + math.cos(math.pi * e / epochs / 2)) if e <= epochs else 0.0


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> LRSchedule:
    """The lr schedule of cfg's (resolved) protocol on `opt`."""
    return LRSchedule(opt, cfg)


class WeightEMA:
    """The exponential moving average GLaD tests: ema_pytorch's EMA(beta, power=1,
    update_after_step=0, update_every=1), updated once per pass (its `update` and
    `get_current_decay`): the first two updates copy the weights, update u >= 2 blends with
    decay min(u / (u + 1), beta) (a running mean that settles at beta).

    Works on any list of float tensors, stacked seeds (S, ...) included (element-wise).
    """

    def __init__(self, tensors: list[torch.Tensor], beta: float) -> None:
        self.beta = float(beta)
        self.shadow = [t.detach().clone() for t in tensors]
        self.updates = 0

    def decay(self, u: int) -> float:
        """ema_pytorch's get_current_decay at update u (0-based): 0 for u = 0, then 1 - 1/(1+u)."""
        return 0.0 if u <= 0 else min(1.0 - 1.0 / (1.0 + u), self.beta)

    @torch.no_grad()
    def update(self, tensors: list[torch.Tensor]) -> None:
        u = self.updates
        self.updates += 1
        for sh, t in zip(self.shadow, tensors, strict=True):
            if u <= 1:  # update_after_step = 0 copies once; the next update initialises: a copy
                sh.copy_(t.detach())
            else:
                sh.lerp_(t.detach().to(sh.dtype), 1.0 - self.decay(u))


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or Inf: the run stops (and is recorded as failed)."""


def check_finite(mean_losses: torch.Tensor, pass_index: int, seeds: tuple[int, ...]) -> None:
    """Raise NonFiniteLoss naming the seed and epoch when a pass's mean loss is not finite."""
    bad = (~torch.isfinite(mean_losses.detach().float().reshape(-1))).nonzero().flatten().tolist()
    if bad:
        s = seeds[bad[0]] if bad[0] < len(seeds) else bad[0]
        value = float(mean_losses.reshape(-1)[bad[0]])
        raise NonFiniteLoss(
            f"the training loss of seed {s} became {value} in epoch {pass_index + 1}: stopped "
            "(check the set for NaN/Inf values, or lower the learning rate)"
        )


Monitor = Callable[[int, tuple[int, ...], list[nn.Module]], None]


def float_state(
    module_params: list[torch.Tensor], buffers: list[torch.Tensor]
) -> list[torch.Tensor]:
    """The tensors an EMA follows: every parameter and every float buffer (ema_pytorch's set)."""
    return [*module_params, *(b for b in buffers if b.is_floating_point())]


class PassEnd:
    """What the training loop (ladd.trainers.loop.fit) does after every pass p of a seed group:
    step the protocol's lr schedule, update the EMA (GLaD), and call the monitor every
    `monitor_every` passes. (The loop refuses a non-finite loss, check_finite, when it reads a
    pass's losses: a pass late, so that no step waits on the device.)

    `tensors` are the trained tensors (float_state): one model's, or the stacked seeds' (S, ...)
    when `stacked`.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        opt: torch.optim.Optimizer,
        tensors: list[torch.Tensor],
        seeds: tuple[int, ...],
        *,
        stacked: bool,
        monitor: Monitor | None = None,
        monitor_every: int = 0,
    ) -> None:
        self.cfg, self.seeds, self.tensors, self.stacked = cfg, seeds, tensors, stacked
        self.schedule = make_scheduler(opt, cfg)
        beta = cfg.protocol_spec.ema_beta
        self.ema = WeightEMA(tensors, beta) if beta else None
        self.monitor, self.monitor_every = monitor, int(monitor_every)

    def __call__(self, p: int, models: Callable[[], list[nn.Module]]) -> None:
        self.schedule.end_of_pass(p)
        if self.ema is not None:
            self.ema.update(self.tensors)
        if self.monitor is not None and self.monitor_every > 0:
            if (p + 1) % self.monitor_every == 0 or p + 1 == self.cfg.passes:
                live = models()
                if self.ema is not None:  # what would be tested now: the EMA's weights
                    live = [_with_weights(m, self._values(i)) for i, m in enumerate(live)]
                self.monitor(p, self.seeds, live)

    def _values(self, i: int) -> list[torch.Tensor]:
        src = self.ema.shadow if self.ema is not None else self.tensors
        return [t[i] for t in src] if self.stacked else src

    def state(self, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and JSON of the optimiser, EMA and schedule position, for a checkpoint."""
        tensors: dict[str, torch.Tensor] = {}
        for i, t in enumerate(self.tensors):
            # SGD's momentum buffer as opt.<i> (the name every saved run has); any other state
            # (AdamW's exp_avg, exp_avg_sq, step) as opt.<i>.<key>
            for key, value in self.schedule.opt.state.get(t, {}).items():
                if isinstance(value, torch.Tensor):
                    name = "" if key == "momentum_buffer" else f".{key}"
                    tensors[f"{prefix}opt.{i}{name}"] = value
        if self.ema is not None:
            for i, t in enumerate(self.ema.shadow):
                tensors[f"{prefix}ema.{i}"] = t
        return tensors, {"ema_updates": self.ema.updates if self.ema is not None else 0}

    def restore(
        self, prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any], passes_done: int
    ) -> None:
        """Continue after `passes_done` passes from a checkpoint written by `state`."""
        opt = self.schedule.opt
        for i, t in enumerate(self.tensors):
            buf = tensors.get(f"{prefix}opt.{i}")
            if buf is not None:
                opt.state[t]["momentum_buffer"] = buf.to(t.device, t.dtype).clone()
            head = f"{prefix}opt.{i}."
            for name, value in tensors.items():
                if name.startswith(head):
                    key = name[len(head) :]
                    if key == "step":  # AdamW keeps its step count on the CPU (not capturable)
                        opt.state[t][key] = value.detach().cpu().clone()
                    else:
                        opt.state[t][key] = value.to(t.device, t.dtype).clone()
        if self.ema is not None:
            for i, sh in enumerate(self.ema.shadow):
                sh.copy_(tensors[f"{prefix}ema.{i}"])
            self.ema.updates = int(meta["ema_updates"])
        self.schedule.fast_forward(passes_done)

    def final(self, models: list[nn.Module]) -> list[nn.Module]:
        """The models to test: under GLaD the EMA's weights are copied into them."""
        if self.ema is not None:
            with torch.no_grad():
                for i, m in enumerate(models):
                    for dst, val in zip(_float_tensors(m), self._values(i), strict=True):
                        dst.copy_(val)
        return models


def _float_tensors(model: nn.Module) -> list[torch.Tensor]:
    return float_state(list(model.parameters()), list(model.buffers()))


def _with_weights(model: nn.Module, values: list[torch.Tensor]) -> nn.Module:
    import copy

    twin = copy.deepcopy(model)
    with torch.no_grad():
        for dst, val in zip(_float_tensors(twin), values, strict=True):
            dst.copy_(val)
    return twin.eval()


TRAIN_STATE_KEY = "ladd_train_state"


class TrainCheckpoint:
    """The file of a run's training state: one safetensors file written atomically at most every
    `seconds` (0: every pass), so that a killed run resumes where it stopped and ends with the
    same weights as an uninterrupted one. `key` names the run (its settled config and set): a
    file of another run is never resumed.

    This class is the file (atomic write, the run's key, callers' attached state); what is in it
    is the training loop's one format (ladd.trainers.loop, `SavedState`), which also reads the
    two layouts older versions wrote. A file that exists but cannot be used is never dropped
    without a word: `problem` says why, `load` warns, and the loop reports it as a progress note.
    """

    def __init__(self, path: str | Path, key: str, seconds: float = 60.0) -> None:
        self.path, self.key, self.seconds = Path(path), key, float(seconds)
        self._last = time.monotonic()
        self._attached: dict[str, tuple[Callable[[], Any], Callable[[Any], None]]] = {}
        self.problem: str | None = None  # why the last read found no usable state in the file

    def attach(self, name: str, get: Callable[[], Any], put: Callable[[Any], None]) -> None:
        """Keep a caller's own state (JSON-able, e.g. the live view's accuracy points) in every
        save, and hand it back through `put` when a saved state is resumed, so that what was
        gathered before a crash is not lost with it."""
        self._attached[name] = (get, put)

    def due(self, last_pass: bool) -> bool:
        return not last_pass and time.monotonic() - self._last >= self.seconds

    def save(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        from ladd.files import save_tensors

        attached = {name: get() for name, (get, _) in self._attached.items()}
        body = json.dumps({**meta, "attached": attached, "key": self.key})
        save_tensors(self.path, tensors, {TRAIN_STATE_KEY: body})
        self._last = time.monotonic()

    def read(self, tensors: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The saved tensors and metadata of this run, or None: no file, or one that cannot be
        used (unreadable, or another run's), `problem` then says which. Nothing is handed back
        (see `hand_back`)."""
        from safetensors import safe_open

        self.problem = None
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})[TRAIN_STATE_KEY])
                found = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}  # noqa: SIM118
        except Exception as err:  # a torn or foreign file: reported, replaced at the next save
            why = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            self.problem = (
                f"the saved training state {self.path} is unreadable ({why}): training starts over"
            )
            return None
        if not isinstance(meta, dict) or meta.get("key") != self.key:
            self.problem = (
                f"the saved training state {self.path} belongs to another run: training starts over"
            )
            return None
        return found, meta

    def hand_back(self, meta: dict[str, Any]) -> None:
        """Give each attached caller its part of a saved state that is being resumed."""
        for name, (_, put) in self._attached.items():
            if name in (meta.get("attached") or {}):
                put(meta["attached"][name])

    def load(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The saved state when there is one of this run (attached state handed back), else None
        (with a warning when a file was there but could not be used)."""
        saved = self.read(tensors=True)
        if saved is None:
            if self.problem:
                warnings.warn(self.problem, stacklevel=2)
            return None
        self.hand_back(saved[1])
        return saved

    def saved_meta(self) -> dict[str, Any] | None:
        """The saved state's metadata when there is one of this run (no tensors read, nothing
        handed back): which engine wrote it, how far it got."""
        saved = self.read(tensors=False)
        return None if saved is None else saved[1]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def train_key(dataset: Any, cfg: TrainConfig) -> str:
    """A digest of a settled TrainConfig and the set's tensors: names one training run (the key
    of its TrainCheckpoint, shared by `ladd train` and a sweep's cell of the same run)."""
    import hashlib

    h = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    for name in ("images", "labels", "dense", "soft_labels", "full_soft"):
        t = getattr(dataset, name, None)
        if isinstance(t, torch.Tensor):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    encoded = getattr(dataset, "encoded", None)
    if encoded is not None:  # dense labels held in a codec: its spec and payload name them
        h.update(f"codec {encoded.spec}".encode())
        for key in sorted(encoded.payload):
            h.update(key.encode())
            h.update(
                encoded.payload[key].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()
            )
    return h.hexdigest()[:20]


def checkpoint_path(folder: str | Path, key: str) -> Path:
    """Where the training state of the run `key` is kept in a workspace's checkpoint folder."""
    return Path(folder) / f"train-{key}.safetensors"


def loss_weight(cfg: TrainConfig, data: TrainingData) -> float:
    """The factor on the batch-mean loss: 1 for "mean", samples per image for "image_sum"."""
    if cfg.loss == "mean":
        return 1.0
    images = max(1, data.num_images)
    return len(data) / images


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

    inputs: Any  # float (T, C, H, W), normalised, or CroppedInputs (cut when drawn)
    targets: Any  # float (T, K) rows that are probability vectors, or EncodedTargets (lazy)
    num_full: int  # how many of the T samples are full images (they come first)
    num_crops: int  # how many are crops
    num_classes: int
    num_images: int = 0  # distinct images the samples come from (M)

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
    if hasattr(dataset, "dense_labels"):
        return int(dataset.num_classes)
    if getattr(dataset, "class_names", None):
        return len(dataset.class_names)
    return int(dataset.labels.max()) + 1


def build_training_data(
    dataset: Any,
    mode: str,
    *,
    n: int = 5,
    r: float = 0.625,
    full_labels: str = "hard",
    lazy_labels: bool | None = None,
    lazy_inputs: bool | None = None,
) -> TrainingData:
    """The flat sample list of a label mode from a DistilledSet or LabelAugmentedSet (on CPU).

    Full images come first, then the crops (raster order per image). `n`, `r` only matter for
    crop modes on a plain distilled set (a label-augmented set brings its own). full_labels
    "set": the full images' "hard" targets are the set's own soft labels when it has them.
    lazy_labels: the dense labels stay in their codec (ladd.codecs.EncodedTargets: a batch's
    rows are decoded when it is drawn, on the device, and no [M, N*N, K] float tensor is built);
    None: lazy for a set held in a codec other than float32/float16, as today otherwise.
    lazy_inputs: the inputs are ladd.cropped.CroppedInputs (the stored images once, uint8 when
    they came from 8-bit files; each batch's crops cut and resized when it is drawn) instead of
    every sample as a float image; None: lazy when the eager list would be over the crop-bytes
    limit (LADD_MAX_CROP_BYTES), which used to refuse such a set.
    """
    lm = label_mode(mode)
    images = dataset.images.float().cpu()  # (M, C, H, W)
    m = images.shape[0]
    k = _num_classes(dataset)
    hard = F.one_hot(dataset.labels.cpu().long(), k).float()  # (M, K)
    labelled = hasattr(dataset, "dense_labels")  # a label-augmented set
    if labelled:
        n, r = int(dataset.n), float(dataset.r)
    if lm.needs_dense and not labelled:
        raise ValueError(
            f"mode {mode!r} needs dense labels: label-augment the set first (ladd augment)"
        )
    if lm.needs_labeler and getattr(dataset, "full_soft", None) is None:
        raise ValueError(
            f"mode {mode!r} needs a label-augmented set (the labeler's soft labels of full images)"
        )
    if lazy_labels is None:
        lazy_labels = labelled and getattr(dataset, "encoded", None) is not None

    def full_targets(kind: str) -> torch.Tensor:
        if kind == "hard":
            soft = getattr(dataset, "soft_labels", None)
            full = FULL_LABELS_ALIASES.get(full_labels, full_labels)
            if full == "set_soft" and soft is not None:
                return _as_probs(soft.cpu())
            return hard
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
    encoded = None  # the dense labels' EncodedDense when they stay encoded (always last)
    if lm.crops:
        from ladd.limits import current_limits

        c, h, w = images.shape[1:]
        # the crops, each copy in the sample list, and the final concatenation
        need = m * n * n * c * h * w * 4 * (1 + 2 * len(lm.crops))
        if lazy_inputs is None:
            lazy_inputs = need > current_limits().max_crop_bytes
        if not lazy_inputs:
            what = f"{lm.name} training set ({m} images, N = {n})"
            current_limits().check_crop_bytes(need, what)
            crops = sub_sample(images, n, r).flatten(0, 1)  # (M*n*n, C, H, W), raster order
        for kind in lm.crops:
            if not lazy_inputs:
                parts_x.append(crops)
            num_crops += m * n * n
            if kind == "hard":
                parts_y.append(hard.repeat_interleave(n * n, dim=0))  # (M*n*n, K)
            elif kind == "dense" and lazy_labels and kind == lm.crops[-1]:  # rows come last
                encoded = dataset.dense_labels()
            elif kind == "dense":
                parts_y.append(dataset.probs().cpu().reshape(m * n * n, k))
            else:
                raise ValueError(f"unknown crop label kind {kind!r}")
    if not lm.crops and lazy_inputs is None:  # full images only: their float copies
        from ladd.limits import current_limits

        lazy_inputs = images.numel() * 4 * (1 + len(lm.full)) > current_limits().max_crop_bytes
    head = torch.cat(parts_y).contiguous() if parts_y else hard[:0]
    targets: Any = head if encoded is None else encoded.targets(head)
    inputs: Any
    if lazy_inputs:
        inputs = _cropped_inputs(dataset, images, len(lm.full), len(lm.crops), n, r)
    else:
        inputs = torch.cat(parts_x).contiguous()
    return TrainingData(
        inputs=inputs,
        targets=targets,
        num_full=num_full,
        num_crops=num_crops,
        num_classes=k,
        num_images=m,
    )


def _cropped_inputs(
    dataset: Any, images: torch.Tensor, full_copies: int, crop_copies: int, n: int, r: float
) -> Any:
    """The lazy inputs of build_training_data: uint8 pixels when the set's images are exactly
    8-bit pixels' normalisation and it has no ZCA (ladd.data.imageset.exact_pixels), float
    otherwise."""
    from ladd.cropped import CroppedInputs
    from ladd.data.imageset import exact_pixels

    mean, std = getattr(dataset, "mean", None), getattr(dataset, "std", None)
    pixels = None if getattr(dataset, "zca", None) is not None else exact_pixels(images, mean, std)
    if pixels is not None:
        return CroppedInputs(pixels, full_copies, crop_copies, n, r, tuple(mean), tuple(std))
    return CroppedInputs(images, full_copies, crop_copies, n, r)


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
    # How the engine ran, JSON-ready (the fast trainer's EngineReport.to_dict(); None for the
    # reference loop), filled in by ladd.trainers.train_models.
    engine: dict[str, Any] | None = None
