"""The protocols a student is trained under, named by the code the paper follows.

Each is one `Protocol` (optimiser, lr schedule, augmentation, which weights are tested); the
engines read only these fields of a settled plan. All test once at the end: nothing is chosen on
the test set.

  mtt   CIFAR (MTT / DATM `utils.evaluate_synset`): SGD momentum 0.9, weight decay 5e-4, DSA;
        lr x 0.1 after pass Epoch // 2 + 1 with a fresh optimiser (momentum buffers reset),
        Epoch + 1 passes in all, no EMA.
  glad  ImageNet subsets at 128 px (GLaD `utils.evaluate_synset`): SGD as mtt; LinearLR
        warm-up from 1e-7 x lr over Epoch // 2 passes, then CosineAnnealingLR over Epoch // 2;
        an EMA of the weights (ema_pytorch, beta 0.995, power 1, updated once per pass) is the
        model that is tested.
  rded  ImageNet-1K at 224 px (RDED validation/main.py without its online teacher): AdamW
        (betas 0.9, 0.999; weight decay 0.01 on weight matrices and kernels only), lr x
        0.5 (1 + cos(pi e / E / 2)) at pass e, E passes, RDED's augmentation (ladd.rded:
        ShufflePatches, RandomResizedCrop, flip) in place of DSA, no EMA; the per-student AdamW
        rates of its argument.py (the model registry's `lr_adamw`). Batch and epochs are the
        user's: RDED runs 300 epochs and a batch of rded_batch_size(ipc, classes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ladd.models.registry import small_variant

__all__ = [
    "PROTOCOLS",
    "RDED_ADAMW",
    "Protocol",
    "default_protocol",
    "distillation_arch",
    "half_cosine_factor",
    "rded_batch_size",
]


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

RDED_ADAMW = {"betas": (0.9, 0.999), "weight_decay": 0.01}  # main.py 87-92, argument.py 153


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


def distillation_arch(image_size: int) -> str:
    """The field's distillation architecture: ConvNet-D3 at <= 64 px, ConvNet-D5 above."""
    return "convnet_d3" if small_variant(image_size) else "convnet_d5"


def half_cosine_factor(e: int, epochs: int) -> float:
    """RDED's lr factor at epoch e of `epochs` (ladd.training.optim.LRSchedule)."""
    return 0.5 * (1.0 + math.cos(math.pi * e / epochs / 2)) if e <= epochs else 0.0
