"""Warming the compile cache ahead of a run: `ladd warmup` and the dashboard's first run.

`warmup` compiles the fast trainer's stacked step for (architecture, image size, classes, seeds,
batch, precision, levers) and records it in the compile cache's index (ladd.trainers.compile),
so that a later run of that shape, in any process, finds its kernels cached and the compile
policy knows what compiling costs here. The step does not depend on the training set beyond its
image size and class count, so one warm-up serves every set of that shape. It lives apart from
ladd.trainers.compile (which the trainer imports) because it drives the trainer itself.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ladd.device import resolve_device
from ladd.plan import plan_training
from ladd.trainers.compile import export_artifacts, step_key
from ladd.trainers.stacked import FastOptions, _levers, _StackedStep
from ladd.training import TrainConfig, TrainingData, init_model

__all__ = ["WarmupReport", "warmup"]


def warmup(
    arch: str = "convnet_d3",
    image_size: int = 32,
    *,
    num_classes: int = 10,
    seeds: int = 5,
    batch_size: int = 256,
    precision: str = "auto",
    channels: int = 3,
    model_options: dict[str, Any] | None = None,
    dsa: bool = True,
    options: FastOptions | None = None,
    device: str | torch.device = "auto",
    cache_dir: str | Path | None = None,
    export: str | Path | None = None,
) -> WarmupReport:
    """Compile the fast trainer's step for these shapes now, so that later runs find it cached.

    On a CPU nothing is compiled (the fast trainer runs eager there): the report says so and
    gives the eager step time. `options`' compile mode "auto" compiles in the mode long runs use.
    `cache_dir`: the compile cache folder (default ladd.compile_cache.compile_cache_dir());
    `export`: also write mega-cache artifacts there, to carry the kernels to another machine.
    """
    t0 = time.perf_counter()
    rep = _warm_step(
        arch=arch,
        image_size=image_size,
        num_classes=num_classes,
        seeds=seeds,
        batch_size=batch_size,
        precision=precision,
        channels=channels,
        model_options=dict(model_options or {}),
        dsa=dsa,
        options=options,
        device=device,
        cache_dir=cache_dir,
    )
    notes = list(rep.notes)
    artifacts = None
    if export is not None and rep.compile_mode != "off":
        written = export_artifacts(export)
        artifacts = str(written) if written else None
        if written is None:
            notes.append("no compile artifacts to export")
    notes.append(f"warm-up took {time.perf_counter() - t0:.1f} s")
    return replace(rep, artifacts=artifacts, notes=notes)


@dataclass(frozen=True)
class WarmupReport:
    """What a warm-up did: the step it prepared and what that cost."""

    key: str
    description: dict[str, Any]
    device: str
    compile_mode: str
    seconds_compile: float
    eager_step_seconds: float | None
    compiled_step_seconds: float | None
    cache_dir: str | None
    artifacts: str | None = None  # mega-cache artifacts written by `warmup(export=...)`
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _warm_step(
    *,
    arch: str,
    image_size: int,
    num_classes: int,
    seeds: int,
    batch_size: int,
    precision: str,
    channels: int,
    model_options: dict[str, Any],
    dsa: bool,
    options: FastOptions | None,
    device: str | torch.device,
    cache_dir: str | Path | None,
) -> WarmupReport:
    """Build the stacked step for these shapes and compile it in the mode long runs use (the
    compile cache keeps it); on a CPU time one eager step instead."""
    opts = options or FastOptions()
    if cache_dir is not None:
        opts = replace(opts, cache_dir=str(cache_dir))
    dev = resolve_device(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, channels, image_size, image_size, generator=g)
    y = torch.softmax(torch.randn(batch_size, num_classes, generator=g), dim=1)
    data = TrainingData(x, y, batch_size, 0, num_classes, num_images=batch_size)
    cfg = TrainConfig(
        arch=arch,
        mode="baseline",
        epochs=1,
        seeds=tuple(range(seeds)),
        batch_size=batch_size,
        precision=precision,
        dsa=dsa,
        model_options=dict(model_options),
        lr=0.01,
    )
    plan = plan_training(data, cfg, dev, engine="stacked")
    notes: list[str] = []
    if dev.type != "cuda":
        notes.append(f"{dev.type}: the fast trainer runs the sequential engine, nothing to compile")
        opts = replace(opts, compile="off")
    levers = _levers(opts, plan, dev)
    if levers.mode == "policy":
        levers = replace(levers, mode=levers.target)  # warm what a long run compiles
    data = data.to(dev)
    models = [init_model(plan.spec, s).to(dev).train() for s in range(seeds)]
    step = _StackedStep(
        models, data, plan.config, levers, plan.spec, dev, opts.cache_dir, opts.policy
    )
    eager = statistics.median(step._timed(step.loss, 3)[0][1:])
    step.prepare(1, eager_step=eager)
    if step.compiled is None:
        notes.append("compile off: nothing cached")
    return WarmupReport(
        key=step_key(step.description()),
        description=step.description(),
        device=str(dev),
        compile_mode=step.mode,
        seconds_compile=step.seconds_compile,
        eager_step_seconds=eager,
        compiled_step_seconds=step.compiled_step_seconds,
        cache_dir=step.cache_dir if step.cache_used else None,
        notes=notes,
    )
