"""One rank of tests/trainers/test_distributed.py's torchrun jobs (not a test module: no test_
prefix).

    torchrun --standalone --nproc_per_node=2 tests/trainers/ddp_worker.py OUT --kill-at PASS
    torchrun --standalone --nproc_per_node=2 tests/trainers/ddp_worker.py OUT --all INPUTS

--kill-at K: trains the job's config (`job_config`) on the synthetic set (`job_data`), planned
as the front ends plan it (under torchrun the plan's engine is ddp), checkpointing to
OUT/killed/ckpt.safetensors at every pass; rank 1 exits hard (os._exit) once K passes (over the
seeds) are trained, as a rank that dies.

--all: the one job every other distributed check shares, in order:
  1. OUT/killed: the same training again, resumed from the killed job's state (what it went on
     from in resumed.txt); rank 0 writes the weights to weights.safetensors;
  2. OUT/fresh: the same training from scratch, checkpointing every pass; rank 0 writes the
     weights;
  3. OUT/eval.<rank>.json: ladd.deploy.evaluate_sharded on 101 images against one process's
     evaluate_models;
  3b. OUT/nonfinite.<rank>.txt: a recorded run (ladd.pipeline.run_train, in INPUTS/ws-nonfinite)
     at lr 1e30 on a tiny set, planned on the ddp engine: the error each rank ended with;
  4. `ladd augment` of INPUTS/set with INPUTS/labeler.safetensors (the command line's torchrun
     path: every rank labels its share, rank 0 writes OUT/two.safetensors and records it in
     INPUTS/ws); the command ends the job (every rank leaves with os._exit).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from ladd.training import TrainCheckpoint, TrainConfig, TrainingData


def job_config(trainer: str = "fast") -> TrainConfig:
    return TrainConfig(
        arch="convnet_d3",
        epochs=3,
        seeds=(0, 1),
        batch_size=63,  # 300 samples: 4 full batches and one of 48; 63 -> shards of 32 and 31
        lr=0.01,
        protocol="mtt",
        precision="fp32",
        model_options={"width": 8},
        trainer=trainer,
    )


def job_data() -> TrainingData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, 16, 16, generator=g)
    y = torch.softmax(2 * torch.randn(300, 4, generator=g), dim=1)
    return TrainingData(x, y, num_full=100, num_crops=200, num_classes=4, num_images=100)


def _train(folder: Path, leader: bool) -> None:
    """Train the job's plan with its state in folder/ckpt.safetensors; rank 0 writes the
    weights, the curves, the plan's engine and what it resumed from."""
    from safetensors.torch import save_file

    from ladd.plan import plan_training
    from ladd.trainers import TrainHooks, train_models

    folder.mkdir(parents=True, exist_ok=True)
    data = job_data()
    plan = plan_training(data, job_config(), "cpu")
    ckpt = TrainCheckpoint(folder / "ckpt.safetensors", "ddp-test", seconds=0.0)
    saved = ckpt.saved_meta()
    if leader and saved is not None:  # what the rerun goes on from
        (folder / "resumed.txt").write_text(
            f"{saved['engine']} group {saved['group']} pass {saved['pass']}"
        )
    trained = train_models(data, plan, TrainHooks(checkpoint=ckpt))
    if leader:
        weights = {
            f"seed{s}.{k}": v.contiguous()
            for s, m in zip(plan.config.seeds, trained.models, strict=True)
            for k, v in m.state_dict().items()
        }
        save_file(weights, str(folder / "weights.safetensors"))
        (folder / "curves.txt").write_text(repr(trained.loss_curves))
        (folder / "engine.txt").write_text(plan.engine)


def _evaluate(out: Path) -> None:
    import ladd.deploy as deploy
    from ladd.device import ranks
    from ladd.models import create_model

    g = torch.Generator().manual_seed(0)
    x = torch.randn(101, 3, 16, 16, generator=g)  # 101: the ranks' shards are 51 and 50
    y = torch.randint(0, 4, (101,), generator=g)
    models = [create_model("convnet_d2", 4, 16, width=4, seed=s) for s in (0, 1)]
    seen: list[int] = []
    real = deploy.evaluate_models

    def spy(models, inputs, labels, *a, **k):
        seen.append(int(inputs.shape[0]))
        return real(models, inputs, labels, *a, **k)

    deploy.evaluate_models = spy
    try:
        got = deploy.evaluate_sharded(models, x, y, 4, 16)
    finally:
        deploy.evaluate_models = real
    whole = real(models, x, y, 4, 16)
    same = [
        (a.accuracy, a.per_class, a.confusion) == (b.accuracy, b.per_class, b.confusion)
        for a, b in zip(got, whole, strict=True)
    ]
    rank = ranks().rank
    (out / f"eval.{rank}.json").write_text(json.dumps({"rank": rank, "seen": seen, "same": same}))


def _non_finite(out: Path, inputs: Path) -> None:
    from ladd.data import load_source
    from ladd.device import ranks
    from ladd.pipeline import run_train
    from ladd.plan import plan_training
    from ladd.sets import random_real
    from ladd.store import Workspace

    ds = random_real("shapes", 1, seed=0, limit_per_class=2, image_size=16)
    test = load_source("shapes", "test", limit_per_class=1, image_size=16)
    cfg = TrainConfig(
        mode="baseline", epochs=3, seeds=(0,), lr=1e30, batch_size=4, model_options={"width": 4}
    )
    plan = plan_training(ds, cfg, "cpu")
    try:
        run_train(Workspace(inputs / "ws-nonfinite"), plan, ds, test)
        ended = f"{plan.engine} done"
    except Exception as err:  # the rank's end, written down for the test
        ended = f"{plan.engine} {type(err).__name__}"
    (out / f"nonfinite.{ranks().rank}.txt").write_text(ended)


def main() -> None:
    from ladd.torchrun import finish_distributed, init_distributed

    out = Path(sys.argv[1])
    here = init_distributed("cpu", timeout_s=60)
    if "--kill-at" in sys.argv:
        kill_at = int(sys.argv[sys.argv.index("--kill-at") + 1])
        if here.rank == 1:  # rank 1 dies once it has trained kill_at passes
            from ladd.trainers import loop

            def dying(self, before, seeds, p, vals):
                if before * self.passes + p + 1 >= kill_at:
                    os._exit(3)

            loop._Fit._progress = dying
        _train(out / "killed", here.leader)
        finish_distributed()
    else:
        inputs = Path(sys.argv[sys.argv.index("--all") + 1])
        _train(out / "killed", here.leader)
        _train(out / "fresh", here.leader)
        _evaluate(out)
        _non_finite(out, inputs)
        from ladd.cli import main as ladd_main

        sys.argv = [
            "ladd", "augment", str(inputs / "set"), "--labeler",
            str(inputs / "labeler.safetensors"), "--source", "shapes", "--crops-per-side", "3",
            "--codec", "float32", "--workspace", str(inputs / "ws"), "--device", "cpu",
            "--out", str(out / "two.safetensors"),
        ]  # fmt: skip
        ladd_main()  # under torchrun it ends every rank itself (os._exit)
        raise SystemExit("ladd augment returned under torchrun: it should end the rank")
    # Skip the interpreter's teardown: gloo's threads (torch 2.14, CPU) can abort a rank in it
    # ("terminate called without an active exception") after the work is done and written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
