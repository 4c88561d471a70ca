"""Which lever wins, per architecture: the fast trainer's FastOptions variants side by side.

    python -m bench.levers --configs convnet_d3-32px-ipc10-n5 --json-out $OUT/speed.json
    python -m bench.levers --configs convnet_d5-128px-ipc10-n5 --variants baseline grouped-nhwc

For each configuration (bench.deploy_speed's CONFIGS: a LADD set of IPC 10 x 10 classes, N 5,
2,600 samples an epoch, 5 seeds) it times the reference loop once and then every variant in
the order given, each a time-boxed window of steady state (compile excluded and reported
apart), with the step parity of that variant (max |loss - reference fp32 loss| on one batch,
eager in the variant's layout and precision) and the trainer's own check of its compiled step
against its eager step (`compiled_loss_diff`, from the compile cache's index).
Variants are written as they finish, so a time cap keeps what was measured. Every variant is
the stacked engine's one layout (seeds grouped under vmap); the "dense" and "streams" layouts
went with issue 34 (the GPU records never showed them winning). Names:

    baseline        grouped (vmap), NCHW, compile "default", DSA drawn per epoch, padded tail
    grouped-nhwc    + channels-last images and weights, inductor's layout pass forced
    graphs          + CUDA graphs (compile mode "reduce-overhead")
    eager-tail      baseline with the last partial batch run eager instead of padded
    dsa-step        baseline with DSA drawn every step (the previous behaviour)
    eager-grouped   no compile (what a short run gets)
"""

from __future__ import annotations

import argparse
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
    windowed,
)
from bench.deploy_speed import CONFIGS, step_parity, synthetic_data
from bench.reference_loop import run_reference
from ladd.device import resolve_device, resolve_precision
from ladd.plan import plan_training
from ladd.trainers.loop import TrainHooks
from ladd.trainers.stacked import FastOptions, train_stacked
from ladd.training import TrainConfig

VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"channels_last": False, "compile": "default"},
    "grouped-nhwc": {"channels_last": True, "compile": "default"},
    "graphs": {"channels_last": False, "compile": "reduce-overhead"},
    "eager-tail": {"channels_last": False, "compile": "default", "pad_last": False},
    "dsa-step": {"channels_last": False, "compile": "default", "dsa_draws": "step"},
    "eager-grouped": {"channels_last": False, "compile": "off"},
}
DEFAULT_VARIANTS = {
    32: ["baseline", "graphs", "grouped-nhwc", "eager-grouped", "dsa-step"],
    128: ["baseline", "grouped-nhwc", "eager-tail", "eager-grouped"],
}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(prog="python -m bench.levers", description=__doc__.split("\n")[0])
    p.add_argument(
        "--configs", nargs="+", default=["convnet_d3-32px-ipc10-n5"], choices=list(CONFIGS)
    )
    p.add_argument("--variants", nargs="*", default=None, choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--window", type=float, default=2.0, help="seconds of steady state timed")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--tiny", action="store_true", help="CI smoke sizes (CPU, eager variants)")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    dev = resolve_device(args.device)
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    command = command_line("bench.levers", argv)
    precision = resolve_precision(args.precision, dev)
    print(f"card: {card_name(dev)}   torch {torch.__version__}   precision (ours): {precision}")
    records = []
    for name in args.configs:
        bc = CONFIGS[name]
        seeds, window, batch, options = args.seeds, args.window, 256, {}
        if args.tiny:
            bc = replace(bc, image_size=16, ipc=2, num_classes=4, n=2)
            seeds, window, batch, options = 2, 0.3, 16, {"width": 8}
        data = synthetic_data(bc)
        t = len(data)
        cfg = TrainConfig(
            arch=bc.arch,
            epochs=100_000,  # time-boxed: the clocks stop the runs
            lr=0.01,
            batch_size=batch,
            seeds=tuple(range(seeds)),
            precision=precision,
            model_options=options,
        )
        ref_clock = Clock(window)
        one = replace(cfg, seeds=(0,))
        windowed(run_reference, data, one, device=dev, progress=ref_clock, stop=ref_clock.stop)
        sync(dev)
        ref_rate = ref_clock.rate(t)
        print(f"{name}: reference {ref_rate:,.0f} samples/s", flush=True)
        names = args.variants or DEFAULT_VARIANTS[128 if bc.image_size > 64 else 32]
        plan = plan_training(data, cfg, dev, engine="stacked")
        for variant in names:
            opts = FastOptions(cache_dir=args.cache_dir, **VARIANTS[variant])
            if dev.type != "cuda":
                opts = replace(opts, compile="off")  # the CPU rehearses the plumbing eagerly
            clock = Clock(window)
            try:
                windowed(
                    train_stacked,
                    data,
                    plan,
                    TrainHooks(progress=clock, stop=clock.stop),
                    options=opts,
                )
            except Exception as err:  # a lever that fails on this card is a finding, not a crash
                print(f"  {variant:<14} failed: {type(err).__name__}: {err}", flush=True)
                rec = {
                    "kind": "lever",
                    "config": f"lever-{name}-{variant}",
                    "variant": variant,
                    "error": f"{type(err).__name__}: {err}",
                }
                records.append(stamp(rec, dev, command))
                append_records(args.json_out, [records[-1]])
                continue
            sync(dev)
            rate = clock.rate(t)
            compiled = latest_compile(
                args.cache_dir,
                arch=bc.arch,
                seeds=seeds,
                channels_last=bool(opts.channels_last),
                mode=opts.compile,
            )
            parity = step_parity(data, cfg, dev, opts)
            rec = {
                "kind": "lever",
                "config": f"lever-{name}-{variant}",
                "bench_config": name,
                "variant": variant,
                "arch": bc.arch,
                "image_size": bc.image_size,
                "samples_per_epoch": t,
                "seeds": seeds,
                "precision": precision if dev.type == "cuda" else "fp32",
                "fast_options": VARIANTS[variant],
                "reference_samples_per_s": round(ref_rate, 1) if ref_rate else None,
                "ours_samples_per_s": round(rate, 1) if rate else None,
                "ratio": round(rate / ref_rate, 3) if rate and ref_rate else None,
                "ours_seconds_compile": (
                    round(compiled["compile_seconds"], 2)
                    if compiled and opts.compile != "off"
                    else 0.0
                ),
                "step_loss_max_abs_diff": parity,
                "compiled_loss_diff": compiled.get("loss_diff") if compiled else None,
            }
            rec = stamp(rec, dev, command)
            records.append(rec)
            append_records(args.json_out, [rec])
            print(
                f"  {variant:<14} {rec['ours_samples_per_s']} seed-samples/s  "
                f"ratio={rec['ratio']}  compile={rec['ours_seconds_compile']} s  "
                f"step-loss |diff|={parity:.2e}",
                flush=True,
            )
    return records


if __name__ == "__main__":
    main()
