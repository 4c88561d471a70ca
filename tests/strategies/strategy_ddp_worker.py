"""One rank of test_strategy_ddp.py's torchrun job (not a test module: no test_ prefix).

    torchrun --standalone --nproc_per_node=2 tests/strategies/strategy_ddp_worker.py OUT

Trains `job_config()` (a learned balance, KL at T 4, HALD's phases) on `job_data()` with the
ddp engine; rank 0 writes the weights and the strategy's end state to OUT.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from ladd.training import TrainConfig, TrainingData


def job_config(trainer: str = "ddp") -> TrainConfig:
    return TrainConfig(
        arch="convnet_d2",
        epochs=4,
        seeds=(0, 1),
        batch_size=21,  # 60 samples: 2 batches of 21 and one of 18; shards of 11 and 10
        lr=0.01,
        protocol="mtt",
        precision="fp32",
        model_options={"width": 4},
        trainer=trainer,
        loss_fn="kl:4",
        label_schedule="hald",
        balance="learned",
    )


def job_data() -> TrainingData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 3, 16, 16, generator=g)
    cls = torch.randint(0, 4, (60,), generator=g)
    y = torch.softmax(2 * torch.randn(60, 4, generator=g), dim=1)
    y[:20] = torch.nn.functional.one_hot(cls[:20], 4).float()
    soft = torch.arange(60) >= 20
    return TrainingData(x, y, 20, 40, 4, num_images=20, classes=cls, soft=soft)


def main() -> None:
    from safetensors.torch import save_file

    from ladd.plan import plan_training
    from ladd.torchrun import finish_distributed, init_distributed
    from ladd.trainers import train_models

    out = Path(sys.argv[1])
    here = init_distributed("cpu", timeout_s=60)
    data = job_data()
    plan = plan_training(data, job_config(), "cpu")
    assert plan.engine == "ddp", plan.engine
    trained = train_models(data, plan)
    if here.leader:
        weights = {
            f"seed{s}.{k}": v.contiguous()
            for s, m in zip(plan.config.seeds, trained.models, strict=True)
            for k, v in m.state_dict().items()
        }
        save_file(weights, str(out / "weights.safetensors"))
        (out / "strategy.json").write_text(json.dumps(trained.strategy))
    finish_distributed()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # gloo's threads can abort a rank in the interpreter's teardown


if __name__ == "__main__":
    main()
