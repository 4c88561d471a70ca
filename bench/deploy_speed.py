"""Deployment training speed: the reference loop against the fast trainer, same process and data.

    python -m bench.deploy_speed                      # GPU sizes (or CPU if no GPU: slow)
    python -m bench.deploy_speed --tiny               # CI smoke test: tiny nets, asserts nothing
    python -m bench.deploy_speed --configs vgg11-32px-ipc10-n5 --channels-last
    python -m bench.deploy_speed --configs convnet_d3-32px-ipc10-n5 --width 32 --ipc 2 \
        --epochs 4 --seeds 2 --json-out docs/benchmarks.json

For each configuration it prints the card, the reference samples/s, ours, the ratio, ours'
compile seconds, and the loss of one fixed batch under both (the step parity check); then,
unless --no-parity, trains 5 seeds of both trainers on the `shapes` source at reduced epochs and
compares test accuracy. Samples/s count seed-samples (5 seeds x 2,600 samples an epoch = 13,000
per epoch) over the steady state: from the first epoch's report to the last (compile and
warm-up excluded). --engine forces the plan's engine (default: the one the plan picks); the
lever flags (--channels-last, --dsa-draws, --compile, --pad-last) pick the stacked engine's
FastOptions.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from bench.common import Clock, append_records, card_name, command_line, stamp, sync
from bench.common import synthetic_data as _synthetic
from bench.reference_loop import run_reference
from ladd.deploy import evaluate_models
from ladd.device import resolve_device, resolve_precision
from ladd.plan import TrainPlan, plan_training
from ladd.trainers import TrainHooks, train_models
from ladd.trainers.stacked import FastOptions, _levers, _StackedStep, train_stacked
from ladd.training import TrainConfig, TrainedModels, TrainingData, init_model, soft_cross_entropy

ARCHS = ("convnet", "alexnet", "vgg11", "resnet18", "vit")


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


def _arch(family: str, size: int) -> str:
    return ("convnet_d3" if size <= 64 else "convnet_d5") if family == "convnet" else family


CONFIGS = {
    c.name: c for size in (32, 128) for c in (BenchConfig(_arch(a, size), size) for a in ARCHS)
}
DEFAULT_CONFIGS = ("convnet_d3-32px-ipc10-n5", "convnet_d5-128px-ipc10-n5")
DEFAULT_EPOCHS = {"convnet_d3-32px-ipc10-n5": 40, "convnet_d5-128px-ipc10-n5": 10}


def synthetic_data(cfg: BenchConfig, seed: int = 0) -> TrainingData:
    """A LADD training set of the config's shape: full images (hard labels) then crops (soft)."""
    m = cfg.ipc * cfg.num_classes
    return _synthetic(cfg.samples, cfg.image_size, cfg.num_classes, num_full=m, seed=seed)


def step_parity(
    data: TrainingData, cfg: TrainConfig, device: torch.device, options: FastOptions
) -> float:
    """Max |fast step loss - reference step loss| over seeds on one fixed batch per seed: the
    stacked step with its levers (channels-last, precision) against each seed's own model in
    eager fp32."""
    s = len(cfg.seeds)
    b = min(cfg.batch_size, len(data))
    plan = plan_training(data, cfg, device, engine="stacked")
    spec = plan.spec
    models = [init_model(spec, seed).to(device).train() for seed in cfg.seeds]
    levers = _levers(options, plan, device)
    batch = replace(data, inputs=data.inputs[:b], targets=data.targets[:b]).to(device)
    step = _StackedStep(
        models, batch, replace(plan.config, batch_size=b), levers, spec, device, None,
        options.policy,
    )  # fmt: skip
    idx = torch.arange(b, device=device).unsqueeze(0).expand(s, -1)
    x, y = step.inputs[idx.reshape(-1)], step.targets[idx]
    _, fast = step.loss(x, y, None, None, None)
    with torch.no_grad():
        ref = torch.stack([soft_cross_entropy(m(batch.inputs), batch.targets) for m in models])
    return float((fast - ref).abs().max())


def train_ours(
    data: TrainingData,
    cfg: TrainConfig,
    device: torch.device,
    options: FastOptions,
    engine: str | None = None,
    **hooks: Any,
) -> tuple[TrainPlan, TrainedModels]:
    """The fast trainer as a front end plans it (`engine` forces one): the stacked engine with
    `options`, the sequential one as train_models runs it. (plan, trained models)"""
    plan = plan_training(data, cfg, device, engine=engine)
    if plan.engine == "stacked":
        out = train_stacked(data, plan, TrainHooks(**hooks), options=options)
        out.engine = out.report.to_dict() if out.report is not None else None
        return plan, out
    return plan, train_models(data, plan, TrainHooks(**hooks))


def measure(
    bc: BenchConfig,
    *,
    device: torch.device,
    epochs: int,
    seeds: int,
    width: int | None,
    precision: str,
    options: FastOptions,
    engine: str | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Train the same set with both trainers; return one benchmark record."""
    data = synthetic_data(bc)
    model_options = {"width": width} if width and bc.arch.startswith("convnet") else {}
    cfg = TrainConfig(
        arch=bc.arch,
        epochs=epochs,
        lr=0.01,
        batch_size=batch_size,
        seeds=tuple(range(seeds)),
        dsa=True,
        model_options=model_options,
        precision=resolve_precision(precision, device),
        trainer="fast",
    )
    t = len(data)
    clock_ref, clock_fast = Clock(), Clock()
    ref = run_reference(data, cfg, device=device, progress=clock_ref)
    sync(device)
    _, fast = train_ours(data, cfg, device, options, engine, progress=clock_fast)
    sync(device)
    ref_rate = clock_ref.rate(t, ref.seconds, seeds * epochs)
    fast_rate = clock_fast.rate(t, fast.seconds, seeds * epochs)
    rep = fast.engine or {}
    return {
        "config": bc.name + (f"-w{width}" if model_options else ""),
        "arch": bc.arch,
        "image_size": bc.image_size,
        "samples_per_epoch": t,
        "epochs": epochs,
        "seeds": seeds,
        "batch_size": batch_size,
        "precision": rep.get("precision", cfg.precision),
        "fast_options": {
            k: rep.get(k)
            for k in ("engine", "layout", "compile_mode", "channels_last", "dsa_draws", "tail")
        },
        "reference_samples_per_s": round(ref_rate, 1),
        "ours_samples_per_s": round(fast_rate, 1),
        "ratio": round(fast_rate / ref_rate, 3),
        "reference_seconds_total": round(ref.seconds, 2),
        "ours_seconds_total": round(fast.seconds, 2),
        "ours_seconds_compile": round(rep.get("seconds_compile", 0.0), 2),
        "step_loss_max_abs_diff": step_parity(data, cfg, device, options),
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
    engine: str | None = None,
) -> dict[str, Any]:
    """5-seed accuracy of both trainers on a random-real set of `source` (full images + crops,
    hard labels), reduced epochs; parity = |mean_fast - mean_ref| <= std_ref. The reference runs
    the field's loop in fp32; ours runs `precision` (bf16 on CUDA by default): this is the
    check behind bf16 as the default."""
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
        precision=resolve_precision(precision, device),
        trainer="fast",
        lr=0.01,
    )
    x_test = eval_inputs(distilled, test, device)
    out: dict[str, Any] = {"source": source, "arch": arch, "epochs": epochs, "samples": len(data)}
    for name in ("reference", "ours"):
        if name == "ours":
            plan, res = train_ours(data, cfg, device, options, engine)
            scores = evaluate_models(
                res.models, x_test, test.labels, data.num_classes, precision=plan.config.precision
            )
        else:
            res = run_reference(data, cfg, device=device)
            scores = evaluate_models(res.models, x_test, test.labels, data.num_classes)
        accs = [s.accuracy for s in scores]
        out[f"{name}_accuracy_mean"] = statistics.fmean(accs)
        out[f"{name}_accuracy_std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
        out[f"{name}_per_seed"] = accs
    gap = abs(out["ours_accuracy_mean"] - out["reference_accuracy_mean"])
    out["parity"] = bool(gap <= out["reference_accuracy_std"])
    return out


def add_lever_flags(p: argparse.ArgumentParser) -> None:
    """The engine and FastOptions flags shared by the training benchmarks."""
    p.add_argument("--engine", default="auto", choices=["auto", "stacked", "sequential"])
    p.add_argument(
        "--compile",
        default=None,
        help="fast trainer's compile mode (default: 'default' on CUDA, 'off' on CPU; "
        "'auto' = the policy from the expected work)",
    )
    p.add_argument(
        "--channels-last", action=argparse.BooleanOptionalAction, default=None, dest="cl"
    )
    p.add_argument("--dsa-draws", default="epoch", choices=["epoch", "step"])
    p.add_argument("--pad-last", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--cache-dir", default=None, help="compile cache folder")


def lever_options(args: argparse.Namespace, dev: torch.device) -> FastOptions:
    compile_mode = args.compile or ("default" if dev.type == "cuda" else "off")
    return FastOptions(
        compile=None if compile_mode == "auto" else compile_mode,  # auto: the plan's policy
        channels_last=bool(args.cl),
        dsa_draws=args.dsa_draws,
        pad_last=args.pad_last,
        cache_dir=args.cache_dir,
    )


def lever_engine(args: argparse.Namespace) -> str | None:
    """--engine: None lets the plan pick (as `ladd train` does)."""
    return None if args.engine == "auto" else args.engine


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(
        prog="python -m bench.deploy_speed", description=__doc__.split("\n")[0]
    )
    p.add_argument("--tiny", action="store_true", help="CI smoke sizes (narrow nets, tiny sets)")
    p.add_argument("--configs", nargs="*", default=list(DEFAULT_CONFIGS), choices=list(CONFIGS))
    p.add_argument("--epochs", type=int, default=None, help="default: per config (40 / 10)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--width", type=int, default=None, help="ConvNet width (default 128)")
    p.add_argument("--ipc", type=int, default=None, help="images per class (default 10)")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="fast trainer's precision (auto: bf16 on CUDA, fp32 on CPU)",
    )
    add_lever_flags(p)
    p.add_argument("--no-parity", action="store_true", help="skip the accuracy parity run")
    p.add_argument("--parity-epochs", type=int, default=None)
    p.add_argument("--parity-source", default="shapes")
    p.add_argument("--json-out", type=Path, default=None, help="append records to this JSON list")
    args = p.parse_args(argv)

    dev = resolve_device(args.device)
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    precision = resolve_precision(args.precision, dev)
    options = lever_options(args, dev)
    card = card_name(dev)
    command = command_line("bench.deploy_speed", argv)
    print(f"card: {card}   torch {torch.__version__}   precision (ours): {precision}")
    records = []
    for name in args.configs:
        bc = CONFIGS[name]
        width, epochs, seeds = args.width, args.epochs, args.seeds
        if args.ipc:
            bc = replace(bc, ipc=args.ipc)
        if args.tiny:
            bc = replace(bc, image_size=16 if bc.arch != "vgg11" else 32, ipc=2, num_classes=4, n=2)
            width, epochs, seeds = width or 8, epochs or 3, min(seeds, 2)
        epochs = epochs or DEFAULT_EPOCHS.get(name, 10)
        rec = stamp(
            measure(
                bc,
                device=dev,
                epochs=epochs,
                seeds=seeds,
                width=width,
                precision=precision,
                options=options,
                engine=lever_engine(args),
                batch_size=16 if args.tiny else 256,
            ),
            dev,
            command,
        )
        records.append(rec)
        append_records(args.json_out, [rec])  # at once: a killed run keeps what it measured
        print(
            f"{rec['config']:<32} card={card}  reference={rec['reference_samples_per_s']:.1f} "
            f"samples/s  ours={rec['ours_samples_per_s']:.1f} samples/s  "
            f"ratio={rec['ratio']:.2f}x  compile={rec['ours_seconds_compile']:.1f}s  "
            f"step-loss |diff|={rec['step_loss_max_abs_diff']:.2e}",
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
            engine=lever_engine(args),
        )
        print(
            f"accuracy parity ({par['source']}, {par['arch']}, {par['epochs']} epochs): "
            f"reference {100 * par['reference_accuracy_mean']:.2f} +- "
            f"{100 * par['reference_accuracy_std']:.2f}  ours {100 * par['ours_accuracy_mean']:.2f} +- "
            f"{100 * par['ours_accuracy_std']:.2f}  parity={'ok' if par['parity'] else 'NO'}",
            flush=True,
        )
        par_rec = stamp(
            {
                "config": "accuracy-parity",
                **par,
                "precision": precision if dev.type == "cuda" else "fp32",
            },
            dev,
            command,
        )
        for rec in records:
            rec["accuracy_parity"] = par
        append_records(args.json_out, [par_rec])
        if args.json_out is not None:
            print(f"appended the parity record to {args.json_out}")
    return records


if __name__ == "__main__":
    main()
