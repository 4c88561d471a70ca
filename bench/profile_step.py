"""Where the fast trainer's time goes: torch.profiler over its steady state (after compile).

    python -m bench.profile_step [--out DIR] [--epochs 4]

For each benchmark configuration, trains 5 seeds with the fast trainer, starts the profiler at
the first epoch report (compile and warm-up done) and prints the top operators by device time
(CPU time on a CPU-only machine). Tables are written to DIR/profile_<config>.txt.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

from bench.deploy_speed import CONFIGS, DEFAULT_CONFIGS, synthetic_data
from ladd.device import resolve_device
from ladd.files import write_text
from ladd.plan import plan_training
from ladd.trainers.loop import TrainHooks
from ladd.trainers.stacked import FastOptions, train_stacked
from ladd.training import TrainConfig


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile_step")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--configs", nargs="*", default=list(DEFAULT_CONFIGS), choices=list(CONFIGS))
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    dev = resolve_device(args.device)
    cuda = dev.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sort = "cuda_time_total" if cuda else "cpu_time_total"
    for name in args.configs:
        bc = CONFIGS[name]
        data = synthetic_data(bc)
        cfg = TrainConfig(
            arch=bc.arch,
            epochs=args.epochs,
            lr=0.01,
            seeds=(0, 1, 2, 3, 4),
            precision="bf16" if cuda else "fp32",
            trainer="fast",
        )
        plan = plan_training(data, cfg, dev, engine="stacked")
        prof = profile(activities=activities)
        started = []

        def on_epoch(event, prof=prof, started=started) -> None:
            if not started and not event.note:  # the first epoch report: compile is done
                prof.start()
                started.append(True)

        opts = FastOptions(compile="default" if cuda else "off")
        train_stacked(data, plan, TrainHooks(progress=on_epoch), options=opts)
        if started:
            prof.stop()
        table = prof.key_averages().table(sort_by=sort, row_limit=25)
        print(f"== {name} ({args.epochs - 1} profiled epochs, 5 seeds) ==\n{table}", flush=True)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            write_text(args.out / f"profile_{name}.txt", table)


if __name__ == "__main__":
    main()
