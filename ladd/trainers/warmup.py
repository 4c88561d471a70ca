"""Warming the compile cache ahead of a run: `ladd warmup` and the dashboard's first run.

`warmup` compiles the fast trainer's stacked step for (architecture, image size, classes, seeds,
batch, precision, levers) and records it in the compile cache's index (ladd.trainers.compile),
so that a later run of that shape, in any process, finds its kernels cached and the compile
policy knows what compiling costs here. The step does not depend on the training set beyond its
image size and class count, so one warm-up serves every set of that shape. It lives apart from
ladd.trainers.compile (which the trainer imports) because it drives the trainer itself.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ladd.trainers.compile import export_artifacts
from ladd.trainers.fast import FastOptions, WarmupReport, warm_step

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
    `cache_dir`: the compile cache folder (default ladd.trainers.compile.compile_cache_dir());
    `export`: also write mega-cache artifacts there, to carry the kernels to another machine.
    """
    t0 = time.perf_counter()
    rep = warm_step(
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
