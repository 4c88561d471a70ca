"""Test-set evaluation speed: each model in fp32, one after another, against all seeds in one
vmapped forward with large batches in bf16 (ladd.deploy.evaluate_models), same models and data.

    python -m bench.eval_speed                # 5 ConvNet-D3 at 32 px, 10,000 test images
    python -m bench.eval_speed --size 128     # 5 ConvNet-D5 at 128 px, 1,000 images
    python -m bench.eval_speed --tiny

Prints images/s of both, and how often their top-1 predictions agree (bf16 may flip near-ties).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import append_records, card_name, command_line, stamp, sync
from ladd.deploy import evaluate_models
from ladd.device import resolve_device
from ladd.models import create_model


def _time(fn, device: torch.device, repeats: int = 3) -> tuple[float, Any]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(
        prog="python -m bench.eval_speed", description=__doc__.split("\n")[0]
    )
    p.add_argument("--size", type=int, default=32, choices=[32, 128])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--images", type=int, default=None, help="default 10,000 (32 px) / 1,000")
    p.add_argument("--batch", type=int, default=None, help="default 4096 (32 px) / 512")
    p.add_argument("--device", default="auto")
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    dev = resolve_device(args.device)
    command = command_line("bench.eval_speed", argv)
    size, seeds = args.size, args.seeds
    images = args.images or (10_000 if size == 32 else 1_000)
    batch = args.batch or (4096 if size == 32 else 512)
    opts: dict[str, Any] = {}
    if args.tiny:
        size, seeds, images, batch, opts = 16, 2, 64, 32, {"width": 8}
    arch = "convnet_d3" if size <= 64 else "convnet_d5"
    models = [create_model(arch, 10, size, seed=s, **opts).to(dev).eval() for s in range(seeds)]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(images, 3, size, size, generator=g).to(dev)
    labels = torch.randint(0, 10, (images,), generator=g).to(dev)
    t_each, each = _time(
        lambda: evaluate_models(models, x, labels, 10, 1024, precision="fp32", stacked=False), dev
    )
    t_all, together = _time(
        lambda: evaluate_models(models, x, labels, 10, batch, precision="auto", stacked=True), dev
    )
    # the default a run uses: per model, in the run's precision ("auto": bf16 on CUDA)
    t_default, _ = _time(
        lambda: evaluate_models(models, x, labels, 10, batch, precision="auto"), dev
    )
    agree = statistics.fmean(
        sum(a == b for a, b in zip(sum(e.confusion, []), sum(t.confusion, []), strict=True))
        / (10 * 10)
        for e, t in zip(each, together, strict=True)
    )
    rec = stamp(
        {
            "kind": "eval",
            "config": f"eval-{arch}-{size}px-{seeds}seeds-{images}img",
            "per_model_fp32_images_per_s": round(seeds * images / t_each, 1),
            "stacked_images_per_s": round(seeds * images / t_all, 1),
            "ratio": round(t_each / t_all, 2),
            "per_model_auto_images_per_s": round(seeds * images / t_default, 1),
            "default_ratio": round(t_each / t_default, 2),
            "stacked_precision": "bf16" if dev.type == "cuda" else "fp32",
            "batch": batch,
            "accuracy_diff_max": max(
                abs(e.accuracy - t.accuracy) for e, t in zip(each, together, strict=True)
            ),
            "confusion_cells_equal": round(agree, 4),
        },
        dev,
        command,
    )
    print(
        f"{rec['config']:<40} card={card_name(dev)}  per model fp32 "
        f"{rec['per_model_fp32_images_per_s']:,.0f} img/s  stacked {rec['stacked_precision']} "
        f"{rec['stacked_images_per_s']:,.0f} img/s  ratio={rec['ratio']}x  "
        f"default (per model, auto) {rec['per_model_auto_images_per_s']:,.0f} img/s  "
        f"|acc diff| max {rec['accuracy_diff_max']:.4f}",
        flush=True,
    )
    append_records(args.json_out, [rec])
    return [rec]


if __name__ == "__main__":
    main()
