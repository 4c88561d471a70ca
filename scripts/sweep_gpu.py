"""The sweep runner against the serial loop on the same card: one small protocol-size sweep.

    bash scripts/sweep_gpu.sh                 # on the device machine (outputs under $OUT)
    SWEEP_TINY=1 bash scripts/sweep_gpu.sh    # CPU rehearsal at smoke sizes (the plumbing)

The grid: ConvNet-D3 + AlexNet x baseline / LADD on CIFAR-10 random real IPC 10, 1000 epochs,
5 seeds per cell (the fast trainer stacks them), labeler = ConvNet-D3 at epoch 10 on all 50,000
training images, N 5, R 0.625. It runs once through the serial executor (one cell after
another in this process: the loop `ladd evaluate` and scripts/study.py run) and once through
the Ray executor per GPU fraction in SWEEP_FRACTIONS (0.5: two cells share the card; 1: one
cell at a time, Ray's overhead alone), each into a fresh workspace so that nothing is skipped,
and prints the wall times side by side with the accuracies (they should agree within GPU
nondeterminism). Results: $OUT/sweep_gpu.json, rewritten after each run (a capped session
keeps what finished). The cost model (docs/sweeps.md) puts the grid at ~8 H200-minutes per
executor at 1000 epochs; SWEEP_EPOCHS=300 fits the serial loop and one Ray run in one
10-minute device call.

Environment (defaults are the protocol size): SWEEP_SOURCE cifar10, SWEEP_IPC 10,
SWEEP_EPOCHS 1000, SWEEP_SEEDS 5, SWEEP_ARCHS convnet_d3,alexnet, SWEEP_WIDTH (ConvNet width,
default 128), SWEEP_IMAGE_SIZE (default the source's), SWEEP_LABELER_EPOCHS 10,
SWEEP_LABELER_LIMIT (train images per class for the labeler, default all), SWEEP_FRACTIONS
"0.5", SWEEP_CPUS (CPUs of the local Ray instance, default all), SWEEP_DEVICE auto,
SWEEP_PRECISION fp32, SWEEP_TINY=1 (shapes at 16 px, 2 epochs, 1 seed: a CPU rehearsal).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import torch

from ladd.device import resolve_device
from ladd.files import write_json
from ladd.labeler import LabelerConfig, train_labeler
from ladd.sets import random_real
from ladd.store import Workspace
from ladd.sweep import SweepSpec, TextProgress, run_sweep, seed_groups

TINY = {
    "SWEEP_SOURCE": "shapes",
    "SWEEP_IPC": "2",
    "SWEEP_EPOCHS": "2",
    "SWEEP_SEEDS": "1",
    "SWEEP_ARCHS": "convnet_d3",
    "SWEEP_WIDTH": "8",
    "SWEEP_IMAGE_SIZE": "16",
    "SWEEP_LABELER_EPOCHS": "1",
    "SWEEP_LABELER_LIMIT": "20",
    "SWEEP_FRACTIONS": "1",
    "SWEEP_CPUS": "2",
    "SWEEP_DEVICE": "cpu",
}


def env(name: str, default: str | None = None) -> str | None:
    if os.environ.get("SWEEP_TINY") and name in TINY and name not in os.environ:
        return TINY[name]
    return os.environ.get(name, default)


def num(name: str, default: int | None) -> int | None:
    v = env(name)
    return int(v) if v else default


def main() -> int:
    out = Path(os.environ.get("OUT") or "ladd-workspace/sweep-gpu-out").resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / "sweep-gpu"
    shutil.rmtree(work, ignore_errors=True)  # fresh workspaces: every cell really runs
    source = env("SWEEP_SOURCE", "cifar10")
    device = resolve_device(env("SWEEP_DEVICE", "auto"))
    size = num("SWEEP_IMAGE_SIZE", None)
    width = num("SWEEP_WIDTH", None)
    lab_epochs = num("SWEEP_LABELER_EPOCHS", 10)
    fractions = [float(f) for f in (env("SWEEP_FRACTIONS", "0.5") or "").split(",") if f]
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {card}", flush=True)

    # -- the inputs: random real set and labeler, made once, shared by every run below
    t = time.perf_counter()
    kw = {"image_size": size} if size else {}
    ds = random_real(source, num("SWEEP_IPC", 10), seed=0, **kw)
    set_dir = ds.save_mtt(work / "inputs" / f"{source}_rr_ipc{num('SWEEP_IPC', 10)}")
    lab_dir = work / "inputs" / "labeler"
    train_labeler(
        source,
        LabelerConfig(
            epochs=lab_epochs,
            save_at=(lab_epochs,),
            limit_per_class=num("SWEEP_LABELER_LIMIT", None),
            image_size=size,
            model_options={"width": width} if width else {},
        ),
        lab_dir,
        device=device,
    )
    print(f"set and labeler ready in {time.perf_counter() - t:.1f} s", flush=True)

    spec = SweepSpec(
        name="serial",
        sets=(str(set_dir),),
        source=source,
        archs=tuple((env("SWEEP_ARCHS", "convnet_d3,alexnet") or "").split(",")),
        modes=("baseline", "ladd"),
        labeler=str(lab_dir),
        labeler_epochs=(lab_epochs,),
        seed_groups=seed_groups(num("SWEEP_SEEDS", 5) or 5),
        epochs=num("SWEEP_EPOCHS", 1000) or 1000,
        width=width,
        precision=env("SWEEP_PRECISION", "fp32") or "fp32",
        device=device.type,
    )
    rows: list[dict] = []
    record = {
        "card": card,
        "date": time.strftime("%Y-%m-%d"),
        "spec": spec.to_dict(),
        "runs": rows,
        "command": "bash scripts/sweep_gpu.sh",
        "tiny": bool(os.environ.get("SWEEP_TINY")),
    }

    def report(label: str, res, extra: dict) -> None:
        accs = {c.label: c.accuracy_mean for c in res.record.cells}
        rows.append(
            {
                "executor": label,
                "wall_seconds": round(res.wall_seconds, 1),
                "status": res.status,
                "cells": len(res.record.cells),
                "ran": res.ran,
                "accuracy": accs,
                **extra,
            }
        )
        print(f"{label}: {res.wall_seconds:.1f} s ({res.status})", flush=True)
        write_json(out / "sweep_gpu.json", record)

    progress = TextProgress(sys.stdout, every=60)
    res = run_sweep(spec, Workspace(work / "ws-serial"), executor="serial", on_event=progress)
    report("serial", res, {"slots": 1})

    try:
        import ray
    except ImportError:
        print("ray is not installed here: pip install 'ray[client]==2.60.0'; serial only")
        fractions = []
    if fractions:
        from ladd.sweep.ray_backend import init_ray, short_temp_dir

        temp = short_temp_dir()
        t = time.perf_counter()
        owned = not ray.is_initialized()  # a caller's instance (the test suite's) is used as is
        if owned:
            init_ray(num_cpus=num("SWEEP_CPUS", None), temp_dir=temp, log_to_driver=False)
        ray_start = time.perf_counter() - t
        print(f"local Ray instance started in {ray_start:.1f} s", flush=True)
        try:
            for f in fractions:
                name = f"ray-gpu{f:g}"
                s = spec.with_options(name=name.replace(".", "_"), gpus_per_cell=f)
                res = run_sweep(
                    s, Workspace(work / f"ws-{name}"), executor="ray", on_event=progress
                )
                report(name, res, {"gpus_per_cell": f, "ray_start_seconds": round(ray_start, 1)})
        finally:
            if owned:
                ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)

    print(f"\n{'executor':<14} {'wall s':>8}  accuracies (mean over seeds)")
    for r in rows:
        accs = ", ".join(f"{k.split(' ', 1)[1]} {v:.2%}" for k, v in r["accuracy"].items() if v)
        print(f"{r['executor']:<14} {r['wall_seconds']:>8.1f}  {accs}")
    return 0 if all(r["status"] == "done" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
