"""The fair opponent: the field's deployment loop, as `ladd.trainers.reference.train_reference` implements it.

We reuse `ladd.trainers.reference.train_reference` rather than keep a second copy, because it is exactly the
field's loop (MTT / DC / DSA evaluation code), point by point:

- one model at a time, a fresh init per seed;
- each epoch a seeded shuffle, then a Python loop over batches of 256 (the last one partial);
- per batch ONE DSA op (strategy color_crop_cutout_flip_scale_rotate), parameters per sample,
  on the device;
- eager float32 forward, soft-target cross-entropy averaged over the batch, backward;
- SGD, momentum 0.9, weight decay 5e-4, lr x 0.1 at the half.

It is, if anything, slightly kinder than the field's code: the running loss stays on the device
during an epoch (the field calls `loss.item()` every batch, a host sync per step). So a speed-up
measured against it is not inflated.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import torch

from ladd.plan import plan_training
from ladd.progress import ProgressFn
from ladd.trainers.loop import TrainHooks
from ladd.trainers.reference import train_reference
from ladd.training import TrainConfig, TrainedModels, TrainingData

__all__ = ["run_reference"]


def run_reference(
    data: TrainingData,
    cfg: TrainConfig,
    *,
    device: str | torch.device,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> TrainedModels:
    """The reference loop in eager float32, whatever cfg.trainer / cfg.precision say (planned
    on the reference engine)."""
    cfg = replace(cfg, trainer="reference", precision="fp32")
    plan = plan_training(data, cfg, device, engine="reference")
    return train_reference(data, plan, TrainHooks(progress=progress, stop=stop))
