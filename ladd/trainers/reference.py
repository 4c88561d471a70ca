"""The reference trainer: the field's evaluation loop, one model per seed in sequence.

Eager, batch 256, one DSA op per batch, the soft-target cross-entropy, the protocol's SGD and lr
schedule (all from ladd.training). The fast trainer's sequential engine is this loop.
"""

from __future__ import annotations

import math
import threading
import time

import torch
from torch import nn

from ladd.device import resolve_device
from ladd.dsa import dsa
from ladd.models import ModelSpec
from ladd.progress import ProgressEvent, ProgressFn
from ladd.training import (
    TrainConfig,
    TrainedModels,
    TrainingData,
    TrainingStopped,
    base_lr,
    init_model,
    make_optimizer,
    make_scheduler,
    soft_cross_entropy,
)


def train_reference(
    data: TrainingData,
    spec: ModelSpec,
    cfg: TrainConfig,
    *,
    device: str | torch.device,
    lr: float | None = None,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    channels_last: bool = False,
) -> TrainedModels:
    """Train one model per seed of cfg.seeds with the field's loop.

    `channels_last` stores inputs and weights in NHWC (faster convolutions on CUDA; the fast
    trainer's sequential engine asks for it there).
    """
    dev = resolve_device(device)
    lr = base_lr(cfg, spec) if lr is None else float(lr)
    data = data.to(dev)
    t_count = len(data)
    if t_count == 0:
        raise ValueError("the training set is empty")
    inputs = data.inputs  # (T, C, H, W)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(t_count / cfg.batch_size)
    use_bf16 = cfg.precision == "bf16" and dev.type == "cuda"
    dsa_cfg = cfg.dsa_config
    total = len(cfg.seeds) * cfg.epochs
    t0 = time.perf_counter()
    models: list[nn.Module] = []
    curves: list[list[float]] = []
    for si, seed in enumerate(cfg.seeds):
        model = init_model(spec, seed).to(dev).train()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = make_optimizer(model.parameters(), cfg, lr)
        sched = make_scheduler(opt, cfg)
        g = torch.Generator(device=dev).manual_seed(int(seed))
        curve: list[float] = []
        for epoch in range(cfg.epochs):
            perm = torch.randperm(t_count, generator=g, device=dev)
            running = torch.zeros((), device=dev)
            for b in range(steps_per_epoch):
                if stop is not None and stop.is_set():
                    raise TrainingStopped(f"stopped at seed {seed}, epoch {epoch}")
                idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                x, y = inputs[idx], data.targets[idx]
                if cfg.dsa:
                    x = dsa(x, g, dsa_cfg)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits = model(x)
                loss = soft_cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                running += loss.detach() * idx.shape[0]
            sched.step()
            mean_loss = float(running) / t_count
            curve.append(mean_loss)
            if progress is not None:
                progress(
                    ProgressEvent(
                        "train", si * cfg.epochs + epoch + 1, total, mean_loss, f"seed {seed}"
                    )
                )
        models.append(model.to(memory_format=torch.contiguous_format).eval())
        curves.append(curve)
    return TrainedModels(models, curves, time.perf_counter() - t0)
