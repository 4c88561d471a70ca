"""How far two gloo ranks drift from one process's weights as steps accumulate (issue 40).

    python -m bench.ddp_drift                       # 20, 55, 200 and 1,000 steps, DSA on and off
    python -m bench.ddp_drift --passes 4,11 --dsa on
    python -m bench.ddp_drift --tiny                # CI size: 2 passes, DSA on

What ladd.trainers.distributed guarantees is the same global order of batches and the same DSA
draws on every rank, and a per-step gradient equal to one process's batch-mean gradient up to
float32 rounding (each rank sums its shard, gloo adds the ranks' sums: the same terms added in
another order). Those rounding differences then compound through SGD with momentum, so the
weights agree to a tolerance that grows with the number of steps. This prints that growth:
per (DSA, passes), the largest |w_ddp - w_one| over every weight of the trained model, the
largest |w_one - w_init| (how far training moved the weights, for scale), and how the two
models' predictions on a held-out set compare. Nothing about time is measured or asserted.

The job is tests/test_distributed.py's: ConvNet-D3 width 8 (instance norm: no batch statistics
differ between ranks), 16 px, 4 classes, 300 samples (100 full images + 200 crops, soft
labels), global batch 63 (shards of 32 and 31; the last batch of 48: 24 and 24), protocol mtt
(SGD momentum 0.9, weight decay 5e-4, lr 0.01, x 0.1 after pass E//2 + 1), fp32, seed 0; each
pass is 5 steps, so P passes are 5 P steps. The images are class means plus noise, so the
held-out accuracy is meaningful.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
STEPS_PER_PASS = 5  # 300 samples at batch 63: 4 full batches and one of 48
TEST_IMAGES = 2000


def job(passes: int, dsa: bool, trainer: str):
    """The config and data of one measurement (mtt trains E + 1 passes: E = passes - 1)."""
    from ladd.training import TrainConfig

    cfg = TrainConfig(
        arch="convnet_d3",
        epochs=passes - 1,
        seeds=(0,),
        batch_size=63,
        lr=0.01,
        protocol="mtt",
        precision="fp32",
        model_options={"width": 8},
        trainer=trainer,
        dsa=dsa,
    )
    return cfg, data()


def _images(count: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Class means (one fixed pattern per class) plus noise: (count, 3, 16, 16), labels."""
    means = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(123))
    labels = torch.randint(0, 4, (count,), generator=g)
    return means[labels] + 1.5 * torch.randn(count, 3, 16, 16, generator=g), labels


def data():
    from ladd.training import TrainingData

    g = torch.Generator().manual_seed(0)
    x_full, y_full = _images(100, g)
    x_crop, y_crop = _images(200, g)
    hard = torch.nn.functional.one_hot(y_full, 4).float()
    soft = torch.softmax(3 * torch.nn.functional.one_hot(y_crop, 4).float()
                         + torch.randn(200, 4, generator=g), dim=1)  # fmt: skip
    x = torch.cat([x_full, x_crop])
    return TrainingData(x, torch.cat([hard, soft]), num_full=100, num_crops=200, num_classes=4,
                        num_images=100)  # fmt: skip


def worker(out: Path, passes: int, dsa: bool) -> None:
    """One rank of the torchrun job: train, rank 0 saves the weights."""
    from safetensors.torch import save_file

    from ladd.plan import plan_training
    from ladd.torchrun import finish_distributed, init_distributed
    from ladd.trainers import train_models

    here = init_distributed("cpu", timeout_s=120)
    cfg, d = job(passes, dsa, "ddp")
    trained = train_models(d, plan_training(d, cfg, "cpu"))
    if here.leader:
        state = {k: v.contiguous() for k, v in trained.models[0].state_dict().items()}
        save_file(state, str(out))
    finish_distributed()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # gloo's threads can abort a rank in the interpreter's teardown (CPU)


def measure(passes: int, dsa: bool) -> dict:
    from safetensors.torch import load_file

    from ladd.plan import plan_training
    from ladd.trainers.reference import train_reference
    from ladd.training import init_model

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "weights.safetensors"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "bench.ddp_drift", "--worker", str(out),
               "--passes", str(passes), "--dsa", "on" if dsa else "off"]  # fmt: skip
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        if run.returncode != 0:
            raise SystemExit(run.stderr[-3000:])
        ddp = load_file(str(out))
    cfg, d = job(passes, dsa, "reference")
    plan = plan_training(d, cfg, "cpu")
    spec = plan.spec
    one = train_reference(d, plan).models[0]
    init = init_model(spec, 0).state_dict()
    mine = one.state_dict()
    drift = max(float((ddp[k] - mine[k]).abs().max()) for k in mine)
    moved = max(float((mine[k] - init[k]).abs().max()) for k in mine)
    other = init_model(spec, 0)
    other.load_state_dict(ddp)
    x, y = _images(TEST_IMAGES, torch.Generator().manual_seed(99))
    with torch.no_grad():
        p_one, p_ddp = one.eval()(x).argmax(1), other.eval()(x).argmax(1)
    return {
        "dsa": dsa,
        "passes": passes,
        "steps": STEPS_PER_PASS * passes,
        "max_abs_diff": drift,
        "max_moved": moved,
        "predictions_differ": int((p_one != p_ddp).sum()),
        "acc_one": float((p_one == y).float().mean()),
        "acc_ddp": float((p_ddp == y).float().mean()),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--passes", default="4,11,40,200", help="passes per run, comma-separated")
    ap.add_argument("--dsa", choices=("on", "off", "both"), default="both")
    ap.add_argument("--tiny", action="store_true", help="CI size: 2 passes, DSA on")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        worker(args.worker, int(args.passes), args.dsa == "on")
    passes = [2] if args.tiny else [int(p) for p in args.passes.split(",")]
    dsas = [True] if args.tiny else {"on": [True], "off": [False], "both": [True, False]}[args.dsa]
    print(
        f"date {dt.date.today().isoformat()}, torch {torch.__version__}, "
        f"{platform.machine()} CPU ({os.cpu_count()} cores), 2 gloo ranks vs one process"
    )
    print("| DSA | steps | max abs(w_ddp - w_one) | max abs(w_one - w_init) | predictions "
          f"differing (of {TEST_IMAGES}) | held-out acc one / ddp |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---|")
    rows = []
    for dsa in dsas:
        for p in passes:
            r = measure(p, dsa)
            rows.append(r)
            print(
                f"| {'on' if dsa else 'off'} | {r['steps']} | {r['max_abs_diff']:.2g} | "
                f"{r['max_moved']:.2g} | {r['predictions_differ']} | "
                f"{100 * r['acc_one']:.2f} / {100 * r['acc_ddp']:.2f} % |",
                flush=True,
            )
    return rows


if __name__ == "__main__":
    main()
