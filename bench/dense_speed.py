"""Dense-label generation speed (crops/s) and the crop preview's time.

    python -m bench.dense_speed            # 128 px ConvNet-D5 labeler, 100 images, N = 5
    python -m bench.dense_speed --tiny     # CI smoke sizes

Dense labels: `ladd.dense.generate_dense_labels` at several crop batch sizes (the labeler's
weights are random: speed does not depend on them). Preview: `ladd.subsample.crop_views` on a
100-image uint8 set, with 2 CPU threads (the dashboard's budget), against the plain gather form.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ladd.dense import generate_dense_labels
from ladd.device import resolve_device
from ladd.files import write_text
from ladd.models import create_model
from ladd.subsample import _crop_views_gather, crop_views


def _median_seconds(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up (cuDNN autotune, allocator)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def dense_rate(
    device: torch.device, size: int, images: int, n: int, batch: int, width: int | None
) -> float:
    opts = {"width": width} if width else {}
    labeler = create_model("convnet_d5" if size >= 64 else "convnet_d3", 10, size, **opts).to(
        device
    )
    x = torch.randn(images, 3, size, size, device=device)
    sec = _median_seconds(
        lambda: generate_dense_labels(x, labeler, n, 0.625, batch_size=batch, device=device),
        3,
        device,
    )
    return images * n * n / sec


def preview_ms(images: int, size: int, n: int, threads: int = 2) -> tuple[float, float]:
    """(crop_views ms, gather-form ms) on uint8 images with `threads` CPU threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randint(0, 256, (images, 3, size, size), dtype=torch.uint8)
        cpu = torch.device("cpu")
        fast = _median_seconds(lambda: crop_views(x, n, 0.625), 7, cpu)
        plain = _median_seconds(lambda: _crop_views_gather(x, n, 0.625), 3, cpu)
    finally:
        torch.set_num_threads(before)
    return fast * 1e3, plain * 1e3


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(
        prog="python -m bench.dense_speed", description=__doc__.split("\n")[0]
    )
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--batches", type=int, nargs="*", default=[256, 1024, 4096])
    p.add_argument("--preview-only", action="store_true", help="skip dense labels (CPU machines)")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    dev = resolve_device(args.device)
    card = (
        torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    )
    command = "python -m bench.dense_speed " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    today = dt.date.today().isoformat()
    size, images, n, width = (32, 4, 2, 8) if args.tiny else (128, 100, 5, None)
    batches = [] if args.preview_only else [16] if args.tiny else args.batches
    records: list[dict[str, Any]] = []
    print(f"card: {card}   torch {torch.__version__}")
    for batch in batches:
        rate = dense_rate(dev, size, images, n, batch, width)
        config = f"dense-labels-{size}px-n{n}-batch{batch}" + (f"-w{width}" if width else "")
        print(f"{config:<36} card={card}  {rate:,.0f} crops/s", flush=True)
        records.append({"card": card, "config": config, "crops_per_s": round(rate, 1)})
    fast_ms, plain_ms = preview_ms(images, size if args.tiny else 128, n)
    config = f"crop-preview-{images}img-128px-n{n}-uint8" if not args.tiny else "crop-preview-tiny"
    print(f"{config:<36} CPU, 2 threads: {fast_ms:.1f} ms (gather form {plain_ms:.1f} ms)")
    records.append(
        {
            "card": f"CPU ({os.cpu_count()} cores), 2 threads",
            "config": config,
            "preview_ms": round(fast_ms, 2),
            "gather_form_ms": round(plain_ms, 2),
        }
    )
    for r in records:
        r.update(date=today, command=command, torch=torch.__version__)
    if args.json_out is not None:
        existing = json.loads(args.json_out.read_text()) if args.json_out.exists() else []
        write_text(args.json_out, json.dumps(existing + records, indent=2) + "\n")
        print(f"appended {len(records)} record(s) to {args.json_out}")
    return records


if __name__ == "__main__":
    main()
