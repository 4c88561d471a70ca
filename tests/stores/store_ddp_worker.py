"""One rank of test_store_replay.py's torchrun job (not a test module: no test_ prefix).

    torchrun --standalone --nproc_per_node=2 tests/stores/store_ddp_worker.py IMAGES STORE OUT

Trains the test's store run with the ddp trainer; rank 0 saves the trained weights to OUT."""

from __future__ import annotations

import sys

import torch

from ladd.plan import plan_training
from ladd.stores.pairing import open_soft_label_set
from ladd.torchrun import finish_distributed, init_distributed
from ladd.trainers import train_models
from ladd.training import TrainConfig, build_training_data


def main() -> None:
    images, store, out = sys.argv[1:4]
    here = init_distributed("cpu", timeout_s=60)
    sset = open_soft_label_set(images, store, mean=(0.5,) * 3, std=(0.25,) * 3)
    cfg = TrainConfig(
        arch="convnet_d3",
        mode="store",
        epochs=2,
        seeds=(0, 1),
        model_options={"width": 8},
        precision="fp32",
        trainer="ddp",
    )
    plan = plan_training(sset, cfg, "cpu")
    assert plan.engine == "ddp", plan.engine
    res = train_models(build_training_data(sset, "store"), plan)
    if here.leader:
        torch.save([m.state_dict() for m in res.models], out)
    finish_distributed()


if __name__ == "__main__":
    main()
