"""The ddp engine runs a label strategy as one process does: two gloo ranks, a learned balance
(its weights' gradients all-reduced, they live outside the DDP module), KL and HALD's phases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from ladd.plan import plan_training
from ladd.trainers.reference import train_reference

sys.path.insert(0, str(Path(__file__).parent))
from strategy_ddp_worker import job_config, job_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).parent / "strategy_ddp_worker.py"
TOL = 1e-4  # as tests/test_distributed.py: float32 sums in another order, far below a change


def test_two_ranks_train_the_one_process_weights_and_learned_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run = subprocess.run(
        [*cmd, str(WORKER), str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    data = job_data()
    ref = train_reference(data, plan_training(data, job_config("reference"), "cpu"))
    want = {
        f"seed{s}.{k}": v
        for s, m in zip((0, 1), ref.models, strict=True)
        for k, v in m.state_dict().items()
    }
    got = load_file(str(tmp_path / "weights.safetensors"))
    assert got.keys() == want.keys()
    assert max(float((got[k] - want[k]).abs().max()) for k in want) < TOL
    strategy = json.loads((tmp_path / "strategy.json").read_text())
    for key in ("weight_hard", "weight_dense"):
        assert strategy[key] == pytest.approx(ref.strategy[key], abs=TOL)
    assert ref.strategy["weight_dense"] != pytest.approx([1.0, 1.0], abs=1e-3)  # they moved
