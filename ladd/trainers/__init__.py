"""Trainers, registered by name: engines that train one model per seed under ladd.training's rules.

    reference   the field's evaluation loop, one seed after another (ladd.trainers.reference)
    fast        all seeds in one vmapped, compiled step on CUDA (ladd.trainers.fast)

A trainer is `f(data, spec, cfg, *, lr, device, progress, stop) -> TrainedModels`. The registry
imports no engine; this package imports both, so `train_models` knows every name.
`train_models` is the one entry point: it resolves the lr, dispatches on `cfg.trainer`, and
counts the FLOPs once, whatever the engine does.
"""

from __future__ import annotations

import threading

import torch

from ladd.device import resolve_device
from ladd.models import ModelSpec
from ladd.progress import ProgressFn
from ladd.trainers.fast import train_fast
from ladd.trainers.reference import train_reference
from ladd.trainers.registry import get_trainer, list_trainers, register_trainer
from ladd.training import (
    Monitor,
    TrainCheckpoint,
    TrainConfig,
    TrainedModels,
    TrainingData,
    base_lr,
    step_flops,
)

register_trainer("reference")(train_reference)
register_trainer("fast")(train_fast)

__all__ = ["get_trainer", "list_trainers", "register_trainer", "train_models"]


def train_models(
    data: TrainingData,
    spec: ModelSpec,
    cfg: TrainConfig,
    *,
    device: str | torch.device,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    monitor: Monitor | None = None,
    monitor_every: int = 0,
    checkpoint: TrainCheckpoint | None = None,
) -> TrainedModels:
    """Train one model per seed of cfg.seeds with the trainer cfg.trainer names.

    cfg.lr is used when set, else the architecture's default rate (callers that know the set,
    e.g. ladd.deploy.train_and_evaluate, resolve a set's own lr first). FLOPs: one measured
    forward + backward per sample, times samples x passes x seeds. cfg.protocol "auto" is
    settled from the data's image size.
    """
    cfg = cfg.resolved(int(data.inputs.shape[-1]))
    trainer = get_trainer(cfg.trainer)
    dev = resolve_device(device)
    lr = base_lr(cfg, spec)
    per_sample = step_flops(data, spec, cfg.batch_size, dev) if len(data) else 0.0
    out = trainer(
        data,
        spec,
        cfg,
        lr=lr,
        device=dev,
        progress=progress,
        stop=stop,
        monitor=monitor,
        monitor_every=monitor_every,
        checkpoint=checkpoint,
    )
    out.flops = int(per_sample * len(data) * cfg.passes * len(cfg.seeds))
    return out
