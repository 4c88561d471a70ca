"""Dense-label generation speed (crops/s), exactness of its fast paths, and the crop preview.

    python -m bench.dense_speed            # 128 px ConvNet-D5 labeler, 400 images, N = 5
    python -m bench.dense_speed --tiny     # CI smoke sizes

Dense labels: `ladd.dense.generate_dense_labels` in several forms: eager fp32 at crop batches
256 / 1024 / 4096 (the previous figures), then at batch 4096 compiled fp32, eager bf16 and
compiled bf16. Each form's labels are compared with the eager fp32 labels (max and mean
|p - p_fp32|); compile time is reported apart (the first call, minus a steady one). The
labeler's weights are random, so its labels are not confident; the bf16 tolerance for a
confident labeler is in tests/test_dense_speed_paths.py. Preview: `ladd.subsample.crop_views`
on a 100-image uint8 set, with 2 CPU threads (the dashboard's budget), against the gather form.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import append_records, card_name, command_line, stamp, sync
from ladd.dense import generate_dense_labels
from ladd.device import resolve_device
from ladd.models import create_model
from ladd.subsample import _crop_views_gather, crop_views


def _median_seconds(fn, repeats: int, device: torch.device) -> tuple[float, float]:
    """(seconds of the first call, median seconds of `repeats` later calls)."""
    sync(device)
    t0 = time.perf_counter()
    fn()  # warm-up (compile, cuDNN autotune, allocator)
    sync(device)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


FORMS = {  # name: (precision, compile mode)
    "eager-fp32": ("fp32", "off"),
    "compiled-fp32": ("fp32", "default"),
    "eager-bf16": ("bf16", "off"),
    "compiled-bf16": ("bf16", "default"),
}


def dense_forms(
    device: torch.device,
    size: int,
    images: int,
    n: int,
    batches: list[int],
    forms: list[str],
    width: int | None,
) -> list[dict[str, Any]]:
    """crops/s of eager fp32 at each batch, then of each form at the largest batch."""
    opts = {"width": width} if width else {}
    arch = "convnet_d5" if size >= 64 else "convnet_d3"
    labeler = create_model(arch, 10, size, seed=0, **opts).to(device)
    x = torch.randn(images, 3, size, size, device=device, generator=None)
    crops = images * n * n
    out: list[dict[str, Any]] = []

    def label(batch: int, precision: str, mode: str) -> torch.Tensor:
        return generate_dense_labels(
            x, labeler, n, 0.625, batch_size=batch, device=device, precision=precision, compile=mode
        )

    ref = label(max(batches), "fp32", "off")
    for batch in batches:
        _, sec = _median_seconds(lambda b=batch: label(b, "fp32", "off"), 3, device)
        out.append(
            {
                "config": f"dense-labels-{size}px-n{n}-batch{batch}",
                "form": "eager-fp32",
                "batch": batch,
                "crops_per_s": round(crops / sec, 1),
            }
        )
    for form in forms:
        if form == "eager-fp32":
            continue
        precision, mode = FORMS[form]
        if mode != "off" and device.type != "cuda":
            continue  # the CPU rehearsal skips compiling
        first, sec = _median_seconds(
            lambda p=precision, m=mode: label(max(batches), p, m), 3, device
        )
        diff = (label(max(batches), precision, mode) - ref).abs()
        out.append(
            {
                "config": f"dense-labels-{size}px-n{n}-batch{max(batches)}-{form}",
                "form": form,
                "batch": max(batches),
                "crops_per_s": round(crops / sec, 1),
                "seconds_compile": round(max(0.0, first - sec), 2) if mode != "off" else 0.0,
                "max_abs_diff_vs_fp32": float(diff.max()),
                "mean_abs_diff_vs_fp32": float(diff.mean()),
            }
        )
    return out


def preview_ms(images: int, size: int, n: int, threads: int = 2) -> tuple[float, float]:
    """(crop_views ms, gather-form ms) on uint8 images with `threads` CPU threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randint(0, 256, (images, 3, size, size), dtype=torch.uint8)
        cpu = torch.device("cpu")
        _, fast = _median_seconds(lambda: crop_views(x, n, 0.625), 7, cpu)
        _, plain = _median_seconds(lambda: _crop_views_gather(x, n, 0.625), 3, cpu)
    finally:
        torch.set_num_threads(before)
    return fast * 1e3, plain * 1e3


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(
        prog="python -m bench.dense_speed", description=__doc__.split("\n")[0]
    )
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--images", type=int, default=400)
    p.add_argument("--batches", type=int, nargs="*", default=[256, 1024, 4096])
    p.add_argument("--forms", nargs="*", default=list(FORMS), choices=list(FORMS))
    p.add_argument("--preview-only", action="store_true", help="skip dense labels (CPU machines)")
    p.add_argument("--no-preview", action="store_true")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    dev = resolve_device(args.device)
    card = card_name(dev)
    command = command_line("bench.dense_speed", argv)
    size, images, n, width = (32, 4, 2, 8) if args.tiny else (128, args.images, 5, None)
    batches = [16] if args.tiny else args.batches
    records: list[dict[str, Any]] = []
    print(f"card: {card}   torch {torch.__version__}")
    if not args.preview_only:
        for rec in dense_forms(dev, size, images, n, batches, args.forms, width):
            rec = stamp({"kind": "dense", **rec}, dev, command)
            extra = ""
            if "max_abs_diff_vs_fp32" in rec:
                extra = (
                    f"  |p - p_fp32| max {rec['max_abs_diff_vs_fp32']:.1e} "
                    f"mean {rec['mean_abs_diff_vs_fp32']:.1e}  compile {rec['seconds_compile']} s"
                )
            print(
                f"{rec['config']:<48} card={card}  {rec['crops_per_s']:,.0f} crops/s{extra}",
                flush=True,
            )
            records.append(rec)
            append_records(args.json_out, [rec])
    if not args.no_preview:
        fast_ms, plain_ms = preview_ms(images, size if args.tiny else 128, n)
        config = (
            f"crop-preview-{images}img-128px-n{n}-uint8" if not args.tiny else "crop-preview-tiny"
        )
        print(f"{config:<36} CPU, 2 threads: {fast_ms:.1f} ms (gather form {plain_ms:.1f} ms)")
        rec = stamp(
            {
                "kind": "preview",
                "config": config,
                "preview_ms": round(fast_ms, 2),
                "gather_form_ms": round(plain_ms, 2),
            },
            torch.device("cpu"),
            command,
        )
        rec["card"] = f"CPU ({os.cpu_count()} cores), 2 threads"
        records.append(rec)
        append_records(args.json_out, [rec])
    return records


if __name__ == "__main__":
    main()
