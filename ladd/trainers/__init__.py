"""Trainers, registered by name: they train one model per seed under ladd.training's rules.

    reference   the field's evaluation loop, one seed after another (ladd.trainers.reference)
    fast        all seeds in one vmapped, compiled step on CUDA (ladd.trainers.fast)
    ddp         one seed at a time, each global batch sharded over torchrun's ranks
                (DistributedDataParallel; ladd.trainers.distributed)

Every trainer runs the one loop, ladd.trainers.loop's `fit` (shuffle, stop, pass end, progress,
checkpoint), with an engine behind it: the reference engine trains one seed per group, the fast
trainer's stacked engine all seeds as one group. A trainer is
`f(data, spec, cfg, *, lr, device, hooks) -> TrainedModels` (hooks: a TrainHooks). The registry
imports no engine; this package imports both, so `train_models` knows every name.
`train_models` is the one entry point: it settles the lr (ladd.training.resolve_lr), dispatches
on `cfg.trainer`, and counts the FLOPs once, whatever the engine does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Unpack

import torch

from ladd.device import resolve_device
from ladd.models import ModelSpec
from ladd.trainers.compile import compile_cache_dir, use_compile_cache
from ladd.trainers.distributed import train_distributed
from ladd.trainers.fast import train_fast
from ladd.trainers.loop import HookArgs, TrainHooks
from ladd.trainers.reference import train_reference
from ladd.trainers.registry import get_trainer, list_trainers, register_trainer
from ladd.training import TrainConfig, TrainedModels, TrainingData, base_lr, step_flops

register_trainer("reference")(train_reference)
register_trainer("fast")(train_fast)
register_trainer("ddp")(train_distributed)

__all__ = ["TrainHooks", "get_trainer", "list_trainers", "register_trainer", "train_models"]


def train_models(
    data: TrainingData,
    spec: ModelSpec,
    cfg: TrainConfig,
    *,
    device: str | torch.device,
    hooks: TrainHooks | None = None,
    compile_cache: str | Path | None = None,
    **old_hooks: Unpack[HookArgs],
) -> TrainedModels:
    """Train one model per seed of cfg.seeds with the trainer cfg.trainer names.

    `hooks`: progress, stop, monitor (+ monitor_every) and checkpoint in one TrainHooks; the
    same hooks as separate keyword arguments (`progress=...`, ...) are still accepted.
    cfg.lr is used when set, else the architecture's default rate (callers that know the set,
    e.g. ladd.deploy.train_and_evaluate, settle a set's own lr first with resolve_lr). FLOPs:
    one measured forward + backward per sample, times samples x passes x seeds. cfg.protocol
    "auto" is settled from the data's image size. `compile_cache`: the folder whose compiled
    kernels this process uses (a workspace's, ladd.trainers.compile.compile_cache_dir), set
    before the engine compiles; the result's `engine` is the engine's report, JSON-ready.
    """
    if compile_cache is not None:
        use_compile_cache(compile_cache_dir(compile_cache))
    cfg = cfg.resolved(int(data.inputs.shape[-1]))
    trainer = get_trainer(cfg.trainer)
    dev = resolve_device(device)
    lr = base_lr(cfg, spec)
    per_sample = step_flops(data, spec, cfg.batch_size, dev) if len(data) else 0.0
    out = trainer(data, spec, cfg, lr=lr, device=dev, hooks=TrainHooks.of(hooks, **old_hooks))
    out.flops = int(per_sample * len(data) * cfg.passes * len(cfg.seeds))
    report = getattr(out, "report", None)
    out.engine = report.to_dict() if report is not None else None
    return out
