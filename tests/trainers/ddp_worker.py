"""One rank of tests/test_distributed.py's torchrun job (not a test module: no test_ prefix).

    torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py OUT [--kill-at PASS]

Trains the job's config (`job_config`) on the synthetic set (`job_data`) with the ddp trainer,
checkpointing to OUT/ckpt.safetensors at every pass; rank 0 writes the trained weights to
OUT/weights.safetensors. --kill-at K: rank 1 exits hard (os._exit) once K passes (over the seeds) are trained, as a
rank that dies.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from ladd.training import TrainCheckpoint, TrainConfig, TrainingData, model_spec


def job_config(trainer: str = "ddp") -> TrainConfig:
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


def main() -> None:
    from safetensors.torch import save_file

    from ladd.trainers import train_models
    from ladd.trainers.distributed import finish_distributed, init_distributed

    out = Path(sys.argv[1])
    kill_at = int(sys.argv[sys.argv.index("--kill-at") + 1]) if "--kill-at" in sys.argv else None
    here = init_distributed("cpu", timeout_s=60)
    cfg = job_config()
    data = job_data()
    spec = model_spec(cfg, data.num_classes, 16)
    ckpt = TrainCheckpoint(out / "ckpt.safetensors", "ddp-test", seconds=0.0)
    if kill_at is not None and here.rank == 1:  # rank 1 dies once it has trained kill_at passes
        from ladd.trainers import loop

        def dying(self, before, seeds, p, vals):
            if before * self.passes + p + 1 >= kill_at:
                os._exit(3)

        loop._Fit._progress = dying
    saved = ckpt.saved_meta()
    if here.leader and saved is not None:  # what the rerun goes on from
        (out / "resumed.txt").write_text(
            f"{saved['engine']} group {saved['group']} pass {saved['pass']}"
        )
    trained = train_models(data, spec, cfg, device="cpu", checkpoint=ckpt)
    if here.leader:
        weights = {
            f"seed{s}.{k}": v.contiguous()
            for s, m in zip(cfg.seeds, trained.models, strict=True)
            for k, v in m.state_dict().items()
        }
        save_file(weights, str(out / "weights.safetensors"))
        (out / "curves.txt").write_text(repr(trained.loss_curves))

    finish_distributed()
    # Skip the interpreter's teardown: gloo's threads (torch 2.14, CPU) can abort a rank in it
    # ("terminate called without an active exception") after the work is done and written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
