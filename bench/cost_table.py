"""The cost model of deployment training: seed-samples/s of the reference loop and of the fast
trainer, per architecture and image size, measured in time-boxed windows of steady state.

    python -m bench.cost_table --json-out docs/benchmarks.json            # all five, 32 + 128 px
    python -m bench.cost_table --archs convnet alexnet --sizes 32 --window 1.5
    python -m bench.cost_table --device cpu --json-out docs/benchmarks.json   # this machine

Each record (kind "cost", schema ladd-bench/1) holds `reference_samples_per_s` (one model, the
field's loop, eager fp32), `ours_samples_per_s` (all seeds of the fast trainer, seed-samples/s,
compile excluded), `ratio`, `ours_seconds_compile` and the engine that ran. A sweep estimates a
run with `estimate_seconds(record, epochs=..., samples=..., seeds=...)`.

The training set is synthetic, a whole number of batches (default 4 x 256 samples), so the
rates are those of full batches. On a CPU the fast trainer IS the reference loop (engine
"sequential", measured faster there than its stacked engine), so only the reference is timed
and its rate stands for both; small batches keep a CPU step short (per-sample rates on a CPU
change little with the batch beyond a few samples; the batch is recorded).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench.common import (
    Clock,
    append_records,
    card_name,
    command_line,
    latest_compile,
    stamp,
    sync,
    synthetic_data,
    windowed,
)
from bench.deploy_speed import train_ours
from bench.reference_loop import run_reference
from ladd.device import resolve_device, resolve_precision
from ladd.plan import plan_training
from ladd.trainers.stacked import FastOptions
from ladd.training import TrainConfig

FAMILIES = ("convnet", "alexnet", "vgg11", "resnet18", "vit")


def arch_name(family: str, size: int) -> str:
    """The paper's architecture of a family at a size (ConvNet-D3 at 32 px, D5 at 128 px)."""
    if family == "convnet":
        return "convnet_d3" if size <= 64 else "convnet_d5"
    return family


def measure_cost(
    arch: str,
    size: int,
    *,
    device: torch.device,
    seeds: int,
    batch: int,
    steps_per_epoch: int,
    window: float,
    precision: str,
    options: FastOptions,
    model_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One cost record: the reference (1 seed) and ours (all seeds), each timed over `window`
    seconds of steady state (epoch reports), compile excluded."""
    samples = batch * steps_per_epoch
    data = synthetic_data(samples, size)
    cfg = TrainConfig(
        arch=arch,
        epochs=100_000,  # time-boxed: the clock stops the run
        lr=0.01,
        batch_size=batch,
        seeds=tuple(range(seeds)),
        model_options=dict(model_options or {}),
        precision=resolve_precision(precision, device),
    )
    ref_clock = Clock(window)
    one = replace(cfg, seeds=(0,))
    windowed(run_reference, data, one, device=device, progress=ref_clock, stop=ref_clock.stop)
    sync(device)
    ref_rate = ref_clock.rate(samples)
    rec: dict[str, Any] = {
        "kind": "cost",
        "config": f"cost-{arch}-{size}px-b{batch}",
        "arch": arch,
        "image_size": size,
        "classes": data.num_classes,
        "batch_size": batch,
        "samples_per_epoch": samples,
        "seeds": seeds,
        "window_s": window,
        "reference_samples_per_s": round(ref_rate, 1) if ref_rate else None,
    }
    if device.type != "cuda":
        rec.update(
            threads=torch.get_num_threads(),
            load_avg_1m=round(os.getloadavg()[0], 1),  # a shared machine: how busy it was
        )
        rec.update(
            precision="fp32",
            ours_samples_per_s=rec["reference_samples_per_s"],
            ratio=1.0,
            ours_seconds_compile=0.0,
            ours_engine={"engine": "sequential (the reference loop itself on a CPU)"},
        )
        return rec
    fast_clock = Clock(window)
    engine = plan_training(data, cfg, device).engine  # the engine `ladd train` would run
    windowed(train_ours, data, cfg, device, options, progress=fast_clock, stop=fast_clock.stop)
    sync(device)
    rate = fast_clock.rate(samples)
    compiled = latest_compile(
        options.cache_dir, arch=arch, image=[3, size, size], seeds=seeds, batch=batch
    )
    rec.update(
        precision=cfg.precision,
        ours_samples_per_s=round(rate, 1) if rate else None,
        ratio=round(rate / ref_rate, 3) if rate and ref_rate else None,
        ours_seconds_compile=round(compiled["compile_seconds"], 2) if compiled else None,
        ours_engine={
            "engine": engine,
            "compile": options.compile,
            "channels_last": options.channels_last,
            "compiled_step_s": compiled["compiled_step_seconds"] if compiled else None,
            "compiled_loss_diff": compiled.get("loss_diff") if compiled else None,
        },
    )
    return rec


# ---------------------------------------------------------------------------------------------
# Reading the cost model (for sweep runners)


def load_costs(path: str | Path, card: str | None = None) -> dict[tuple[str, int], dict[str, Any]]:
    """Cost records of a benchmarks JSON list, keyed by (arch, image size); the newest record
    wins; `card` keeps only that card's (e.g. "NVIDIA H200", or "CPU (2 cores)")."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for r in json.loads(Path(path).read_text()):
        if r.get("kind") != "cost" or (card is not None and r.get("card") != card):
            continue
        key = (r["arch"], int(r["image_size"]))
        if key not in out or r.get("date", "") >= out[key].get("date", ""):
            out[key] = r
    return out


def estimate_seconds(
    cost: dict[str, Any],
    *,
    epochs: int,
    samples: int,
    seeds: int,
    trainer: str = "fast",
    warm: bool = True,
) -> float:
    """Training seconds of a run from a cost record: padded batches x epochs x seeds over the
    rate (startup, evaluation and data loading not included); "fast" adds its compile time when
    the cache is cold (`warm=False`) or never measured."""
    batch = int(cost["batch_size"])
    work = math.ceil(samples / batch) * batch * epochs * seeds
    if trainer == "reference":
        return work / float(cost["reference_samples_per_s"])
    seconds = work / float(cost["ours_samples_per_s"])
    if not warm:
        seconds += float(cost.get("ours_seconds_compile") or 0.0)
    return seconds


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(
        prog="python -m bench.cost_table", description=__doc__.split("\n")[0]
    )
    p.add_argument("--archs", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--sizes", nargs="*", type=int, default=[32, 128])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--batch", type=int, default=None, help="default 256 (CPU: 32 / 8 px-wise)")
    p.add_argument("--steps", type=int, default=4, help="full batches per epoch")
    p.add_argument("--window", type=float, default=2.0, help="seconds of steady state timed")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--compile", default="default")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--tiny", action="store_true", help="CI smoke sizes")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    dev = resolve_device(args.device)
    command = command_line("bench.cost_table", argv)
    options = FastOptions(
        compile=args.compile if dev.type == "cuda" else "off", cache_dir=args.cache_dir
    )
    print(f"card: {card_name(dev)}   torch {torch.__version__}")
    records = []
    for size in args.sizes:
        for family in args.archs:
            arch = arch_name(family, size)
            batch = args.batch or (256 if dev.type == "cuda" else (32 if size <= 64 else 8))
            model_options: dict[str, Any] = {}
            steps, window, seeds = args.steps, args.window, args.seeds
            if args.tiny:
                batch, steps, window, seeds = 4, 2, 0.2, 2
                if arch.startswith("convnet"):
                    model_options = {"width": 8}
            rec = measure_cost(
                arch,
                size,
                device=dev,
                seeds=seeds,
                batch=batch,
                steps_per_epoch=steps,
                window=window,
                precision=args.precision,
                options=options,
                model_options=model_options,
            )
            rec = stamp(rec, dev, command)
            records.append(rec)
            append_records(args.json_out, [rec])
            ours = rec.get("ours_samples_per_s")
            print(
                f"{rec['config']:<28} reference={rec['reference_samples_per_s']} samples/s  "
                f"ours={ours} samples/s  ratio={rec.get('ratio')}  "
                f"compile={rec.get('ours_seconds_compile')} s",
                flush=True,
            )
    return records


if __name__ == "__main__":
    main()
