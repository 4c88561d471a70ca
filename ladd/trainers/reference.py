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
    Monitor,
    PassEnd,
    TrainCheckpoint,
    TrainConfig,
    TrainedModels,
    TrainingData,
    TrainingStopped,
    base_lr,
    float_state,
    init_model,
    loss_weight,
    make_optimizer,
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
    monitor: Monitor | None = None,
    monitor_every: int = 0,
    checkpoint: TrainCheckpoint | None = None,
    channels_last: bool = False,
) -> TrainedModels:
    """Train one model per seed of cfg.seeds with the field's loop (cfg.protocol resolved).

    `channels_last` stores inputs and weights in NHWC (faster convolutions on CUDA; the fast
    trainer's sequential engine asks for it there). `monitor(pass, seeds, models)` is called
    every `monitor_every` passes with the models as they would be tested then. `checkpoint`:
    the exact state is saved at pass boundaries and a run of the same key resumes from it.
    """
    dev = resolve_device(device)
    cfg = cfg.resolved(int(data.inputs.shape[-1]))
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
    passes = cfg.passes
    total = len(cfg.seeds) * passes
    weight = loss_weight(cfg, data)
    t0 = time.perf_counter()
    models: list[nn.Module] = []
    curves: list[list[float]] = []
    saved = checkpoint.load() if checkpoint is not None else None
    start_seed, start_pass = 0, 0
    if saved is not None:
        tensors, meta = saved
        start_seed, start_pass, curves = meta["seed_index"], meta["pass"], meta["curves"]
        for i in range(start_seed):  # finished seeds: their final (tested) weights
            done = init_model(spec, cfg.seeds[i])
            done.load_state_dict(
                {k[len(f"done{i}.") :]: v for k, v in tensors.items() if k.startswith(f"done{i}.")}
            )
            models.append(done.to(dev).eval())
        curves = [list(c) for c in curves]
    for si, seed in enumerate(cfg.seeds):
        if si < start_seed:
            continue
        model = init_model(spec, seed).to(dev).train()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = make_optimizer(model.parameters(), cfg, lr)
        end = PassEnd(
            cfg,
            opt,
            float_state(list(model.parameters()), list(model.buffers())),
            (seed,),
            stacked=False,
            monitor=monitor,
            monitor_every=monitor_every,
        )
        g = torch.Generator(device=dev).manual_seed(int(seed))
        curve: list[float] = []
        first = 0
        if saved is not None and si == start_seed:
            tensors, meta = saved
            model.load_state_dict(
                {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
            )
            end.restore("state.", tensors, meta, start_pass)
            g.set_state(tensors["rng"])
            curve, first = list(meta["curve"]), start_pass
        for epoch in range(first, passes):
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
                (loss * weight if weight != 1.0 else loss).backward()
                opt.step()
                running += loss.detach() * idx.shape[0]
            mean = running / t_count
            end(epoch, mean, lambda model=model: [model])
            mean_loss = float(mean)
            curve.append(mean_loss)
            if progress is not None:
                progress(
                    ProgressEvent(
                        "train",
                        si * passes + epoch + 1,
                        total,
                        mean_loss,
                        f"seed {seed}",
                        metrics={"epoch": epoch + 1, "seeds": [seed], "loss": [mean_loss]},
                    )
                )
            if checkpoint is not None and checkpoint.due(epoch + 1 == passes):
                state, extra = end.state("state.")
                state.update({f"model.{k}": v for k, v in model.state_dict().items()})
                for i, m in enumerate(models):
                    state.update({f"done{i}.{k}": v for k, v in m.state_dict().items()})
                state["rng"] = g.get_state()
                meta = {"seed_index": si, "pass": epoch + 1, "curve": curve, "curves": curves}
                checkpoint.save(state, {**meta, **extra})
        model = end.final([model])[0]
        models.append(model.to(memory_format=torch.contiguous_format).eval())
        curves.append(curve)
    return TrainedModels(models, curves, time.perf_counter() - t0)
