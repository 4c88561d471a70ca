"""Deployment training speed: the reference loop against the fast trainer, same process and data.

    python -m bench.deploy_speed                      # GPU sizes (or CPU if no GPU: slow)
    python -m bench.deploy_speed --tiny               # CI smoke test: tiny nets, asserts nothing
    python -m bench.deploy_speed --configs convnet_d3-32px-ipc10-n5 --width 32 --ipc 2 \
        --epochs 4 --seeds 2 --json-out docs/benchmarks.json

For each configuration it prints the card, the reference samples/s, ours, the ratio, and the
loss of one fixed batch under both (the step parity check); then, unless --no-parity, trains 5
seeds of both trainers on the `shapes` source at reduced epochs and compares test accuracy.
Samples/s count seed-samples (5 seeds x 2,600 samples an epoch = 13,000 per epoch) over the
steady state: from the first epoch's report to the last (compile and warm-up excluded).
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from bench.reference_loop import run_reference
from ladd.deploy import evaluate_models
from ladd.device import resolve_device
from ladd.files import write_text
from ladd.trainers.fast import FastOptions, _resolve, _stack_models, stacked_loss, train_fast
from ladd.training import TrainConfig, TrainingData, init_model, model_spec, soft_cross_entropy


@dataclass(frozen=True)
class BenchConfig:
    arch: str
    image_size: int
    ipc: int = 10
    num_classes: int = 10
    n: int = 5

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.image_size}px-ipc{self.ipc}-n{self.n}"

    @property
    def samples(self) -> int:  # full images + crops
        m = self.ipc * self.num_classes
        return m + m * self.n * self.n


CONFIGS = {c.name: c for c in (BenchConfig("convnet_d3", 32), BenchConfig("convnet_d5", 128))}
DEFAULT_EPOCHS = {"convnet_d3-32px-ipc10-n5": 40, "convnet_d5-128px-ipc10-n5": 10}


def card_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores)"


def synthetic_data(cfg: BenchConfig, seed: int = 0) -> TrainingData:
    """A training set of the right shape (speed does not depend on the pixels)."""
    g = torch.Generator().manual_seed(seed)
    m = cfg.ipc * cfg.num_classes
    t = cfg.samples
    x = torch.randn(t, 3, cfg.image_size, cfg.image_size, generator=g)
    hard = torch.nn.functional.one_hot(torch.arange(m) % cfg.num_classes, cfg.num_classes).float()
    dense = torch.softmax(torch.randn(t - m, cfg.num_classes, generator=g) * 3, dim=1)
    return TrainingData(x, torch.cat([hard, dense]), m, t - m, cfg.num_classes)


class Clock:
    """Progress callback recording (time, seed-epochs done) after every reported epoch."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []

    def __call__(self, event: Any) -> None:
        if event.stage == "train":
            self.marks.append((time.perf_counter(), int(event.step)))

    def rate(self, samples_per_epoch: int, fallback_seconds: float, seed_epochs: int) -> float:
        """Steady-state seed-samples/s between the first and the last report."""
        if len(self.marks) >= 2:
            (t0, s0), (t1, s1) = self.marks[0], self.marks[-1]
            if t1 > t0 and s1 > s0:
                return (s1 - s0) * samples_per_epoch / (t1 - t0)
        return seed_epochs * samples_per_epoch / fallback_seconds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_parity(data: TrainingData, spec, cfg: TrainConfig, device: torch.device) -> float:
    """Max |fast step loss - reference step loss| over seeds on one fixed batch per seed."""
    s = len(cfg.seeds)
    b = min(cfg.batch_size, len(data))
    models = [init_model(spec, seed).to(device).train() for seed in cfg.seeds]
    base, params, buffers = _stack_models(models)
    x = data.inputs[:b].to(device).unsqueeze(0).expand(s, -1, -1, -1, -1)
    y = data.targets[:b].to(device).unsqueeze(0).expand(s, -1, -1)
    bf16 = cfg.precision == "bf16" and device.type == "cuda"
    _, fast = stacked_loss(base, params, buffers, x, y, bf16=bf16)
    with torch.no_grad():
        ref = torch.stack([soft_cross_entropy(m(x[0]), y[0]) for m in models])
    return float((fast - ref).abs().max())


def measure(
    bc: BenchConfig,
    *,
    device: torch.device,
    epochs: int,
    seeds: int,
    width: int | None,
    precision: str,
    options: FastOptions,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Train the same set with both trainers; return one benchmark record."""
    data = synthetic_data(bc)
    model_options = {"width": width} if width else {}
    cfg = TrainConfig(
        arch=bc.arch,
        epochs=epochs,
        lr=0.01,
        batch_size=batch_size,
        seeds=tuple(range(seeds)),
        dsa=True,
        model_options=model_options,
        precision=precision,
        trainer="fast",
    )
    spec = model_spec(cfg, bc.num_classes, bc.image_size)
    t = len(data)
    clock_ref, clock_fast = Clock(), Clock()
    ref = run_reference(data, spec, cfg, device=device, progress=clock_ref)
    _sync(device)
    fast = train_fast(data, spec, cfg, device=device, progress=clock_fast, options=options)
    _sync(device)
    ref_rate = clock_ref.rate(t, ref.seconds, seeds * epochs)
    fast_rate = clock_fast.rate(t, fast.seconds, seeds * epochs)
    return {
        "config": bc.name + (f"-w{width}" if width else ""),
        "arch": bc.arch,
        "image_size": bc.image_size,
        "samples_per_epoch": t,
        "epochs": epochs,
        "seeds": seeds,
        "precision": precision if device.type == "cuda" else "fp32",
        "fast_options": dict(
            zip(
                ("engine", "compile", "pad_last"),
                _resolve(options, device, init_model(spec, 0)),
                strict=True,
            )
        ),
        "reference_samples_per_s": round(ref_rate, 1),
        "ours_samples_per_s": round(fast_rate, 1),
        "ratio": round(fast_rate / ref_rate, 3),
        "reference_seconds_total": round(ref.seconds, 2),
        "ours_seconds_total": round(fast.seconds, 2),
        "step_loss_max_abs_diff": step_parity(data, spec, cfg, device),
    }


def accuracy_parity(
    *,
    device: torch.device,
    source: str,
    arch: str,
    image_size: int,
    ipc: int,
    epochs: int,
    seeds: int,
    width: int | None,
    precision: str,
    options: FastOptions,
    test_limit: int | None,
) -> dict[str, Any]:
    """5-seed accuracy of both trainers on a random-real set of `source` (full images + crops,
    hard labels), reduced epochs; parity = |mean_fast - mean_ref| <= std_ref."""
    from ladd.data import load_source
    from ladd.deploy import eval_inputs
    from ladd.sets import random_real
    from ladd.training import build_training_data

    train = load_source(source, "train", image_size=image_size, limit_per_class=max(ipc, 20))
    test = load_source(source, "test", image_size=image_size, limit_per_class=test_limit)
    distilled = random_real(train, ipc, seed=0)
    full = build_training_data(distilled, "baseline")
    crops = build_training_data(distilled, "crops_hard", n=5, r=0.625)
    data = TrainingData(
        torch.cat([full.inputs, crops.inputs]),
        torch.cat([full.targets, crops.targets]),
        full.num_full,
        crops.num_crops,
        full.num_classes,
    )
    cfg = TrainConfig(
        arch=arch,
        epochs=epochs,
        seeds=tuple(range(seeds)),
        model_options={"width": width} if width else {},
        precision=precision,
        trainer="fast",
        lr=0.01,
    )
    spec = model_spec(cfg, data.num_classes, image_size)
    x_test = eval_inputs(distilled, test, device)
    out: dict[str, Any] = {"source": source, "arch": arch, "epochs": epochs, "samples": len(data)}
    for name, trainer in (("reference", run_reference), ("ours", None)):
        if trainer is None:
            res = train_fast(data, spec, cfg, device=device, options=options)
        else:
            res = trainer(data, spec, cfg, device=device)
        scores = evaluate_models(res.models, x_test, test.labels, data.num_classes)
        accs = [s.accuracy for s in scores]
        out[f"{name}_accuracy_mean"] = statistics.fmean(accs)
        out[f"{name}_accuracy_std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
        out[f"{name}_per_seed"] = accs
    gap = abs(out["ours_accuracy_mean"] - out["reference_accuracy_mean"])
    out["parity"] = bool(gap <= out["reference_accuracy_std"])
    return out


def append_records(path: Path, records: list[dict[str, Any]]) -> None:
    existing = json.loads(path.read_text()) if path.exists() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(existing + records, indent=2) + "\n")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(
        prog="python -m bench.deploy_speed", description=__doc__.split("\n")[0]
    )
    p.add_argument("--tiny", action="store_true", help="CI smoke sizes (narrow nets, tiny sets)")
    p.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--epochs", type=int, default=None, help="default: per config (40 / 10)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--width", type=int, default=None, help="ConvNet width (default 128)")
    p.add_argument("--ipc", type=int, default=None, help="images per class (default 10)")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        default=None,
        choices=["fp32", "bf16"],
        help="fast trainer's precision (default bf16 on CUDA, fp32 on CPU)",
    )
    p.add_argument("--engine", default="auto", choices=["auto", "stacked", "sequential"])
    p.add_argument("--compile", default="auto", help="fast trainer's torch.compile mode")
    p.add_argument("--no-parity", action="store_true", help="skip the accuracy parity run")
    p.add_argument("--parity-epochs", type=int, default=None)
    p.add_argument("--parity-source", default="shapes")
    p.add_argument("--json-out", type=Path, default=None, help="append records to this JSON list")
    args = p.parse_args(argv)

    dev = resolve_device(args.device)
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    precision = args.precision or ("bf16" if dev.type == "cuda" else "fp32")
    options = FastOptions(engine=args.engine, compile=args.compile)
    card = card_name(dev)
    today = dt.date.today().isoformat()
    command = "python -m bench.deploy_speed " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    print(f"card: {card}   torch {torch.__version__}   precision (ours): {precision}")
    records = []
    for name in args.configs:
        bc = CONFIGS[name]
        width, epochs, seeds = args.width, args.epochs, args.seeds
        if args.ipc:
            bc = replace(bc, ipc=args.ipc)
        if args.tiny:
            bc = replace(bc, image_size=16, ipc=2, num_classes=4, n=2)
            width, epochs, seeds = width or 8, epochs or 3, min(seeds, 2)
        epochs = epochs or DEFAULT_EPOCHS[name]
        rec = measure(
            bc,
            device=dev,
            epochs=epochs,
            seeds=seeds,
            width=width,
            precision=precision,
            options=options,
            batch_size=16 if args.tiny else 256,
        )
        rec.update(card=card, date=today, command=command, torch=torch.__version__)
        records.append(rec)
        if args.json_out is not None:  # written at once: a killed run keeps what it measured
            append_records(args.json_out, [rec])
        print(
            f"{rec['config']:<32} card={card}  reference={rec['reference_samples_per_s']:.1f} "
            f"samples/s  ours={rec['ours_samples_per_s']:.1f} samples/s  "
            f"ratio={rec['ratio']:.2f}x  step-loss |diff|={rec['step_loss_max_abs_diff']:.2e}",
            flush=True,
        )
    if not args.no_parity:
        par = accuracy_parity(
            device=dev,
            source=args.parity_source,
            arch="convnet_d3",
            image_size=32,
            ipc=2 if args.tiny else 10,
            epochs=args.parity_epochs or (2 if args.tiny else 100),
            seeds=2 if args.tiny else 5,
            width=8 if args.tiny else args.width,
            precision=precision,
            options=options,
            test_limit=10 if args.tiny else None,
        )
        print(
            f"accuracy parity ({par['source']}, {par['arch']}, {par['epochs']} epochs): "
            f"reference {100 * par['reference_accuracy_mean']:.2f} +- "
            f"{100 * par['reference_accuracy_std']:.2f}  ours {100 * par['ours_accuracy_mean']:.2f} +- "
            f"{100 * par['ours_accuracy_std']:.2f}  parity={'ok' if par['parity'] else 'NO'}",
            flush=True,
        )
        par_rec = {
            "config": "accuracy-parity",
            **par,
            "precision": precision if dev.type == "cuda" else "fp32",
            "card": card,
            "date": today,
            "command": command,
            "torch": torch.__version__,
        }
        for rec in records:
            rec["accuracy_parity"] = par
        if args.json_out is not None:
            append_records(args.json_out, [par_rec])
            print(f"appended the parity record to {args.json_out}")
    return records


if __name__ == "__main__":
    main()
