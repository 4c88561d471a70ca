"""Issue 37's commands (ladd.cli.strategies): `ladd strategies`, `ladd drift`, `ladd fkd-store`,
run as subprocesses (python -m ladd) on a tiny shapes set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def ladd(*args: str, cwd: Path, workspace: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("LADD_CACHE_DIR", None)
    where = ["--workspace", str(cwd / "ws")] if workspace else []
    return subprocess.run(
        [sys.executable, "-m", "ladd", *args, *where],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A random-real shapes set (1 per class) and one untrained labeler checkpoint."""
    from ladd.labeler import LabelerConfig, train_labeler
    from ladd.sets import random_real

    root = tmp_path_factory.mktemp("cli37")
    random_real("shapes", 1, seed=0, image_size=16).save_mtt(root / "rr")
    cfg = LabelerConfig(
        epochs=1, save_at=(1,), limit_per_class=5, image_size=16, model_options={"width": 4}
    )
    train_labeler("shapes", cfg, root / "labeler", device="cpu")
    (ckpt,) = sorted((root / "labeler").glob("epoch_*.safetensors"))
    return root, ckpt


def test_strategies_lists_the_choices_default_first(made):
    root, _ = made
    run = ladd("strategies", "--json", cwd=root, workspace=False)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["loss_fn"][0] == "soft_ce" and "kl:t=20" in found["loss_fn"]
    assert found["label_schedule"][0] == "constant" and found["balance"] == ["fixed", "learned"]


def test_drift_lists_the_drifted_crops_of_a_set_under_a_labeler(made):
    root, ckpt = made
    run = ladd(
        "drift", str(root / "rr"), "--labeler", str(ckpt), "--source", "shapes", "--n", "3",
        "--r", "0.5", "--threshold", "0.0", "--json", cwd=root,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    res = json.loads(run.stdout.strip().splitlines()[-1])
    assert "top class != the image's class" in res["rule"]
    (epoch,) = res["epochs"].values()
    # at threshold 0 every crop whose top class is not its image's class is listed
    assert 0.0 <= epoch["drifted_fraction"] <= 1.0
    js = [row["js"] for row in res["drifted"]]
    assert js == sorted(js, reverse=True)
    refused = ladd("drift", str(root / "rr"), "--source", "shapes", cwd=root)
    assert refused.returncode == 1 and "needs --labeler" in refused.stderr


def test_fkd_store_writes_sre2ls_layout(made):
    root, ckpt = made
    run = ladd(
        "fkd-store", str(root / "rr"), "--labeler", str(ckpt), "--epochs", "2",
        "--out", str(root / "store"), "--source", "shapes", "--json", cwd=root,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    res = json.loads(run.stdout.strip().splitlines()[-1])
    assert res["images"] == 10 and res["label_bytes"] == 2 * 10 * 10 * 2
    batch = torch.load(root / "store" / "labels" / "epoch_1" / "batch_0.tar", weights_only=True)
    assert len(batch) == 6 and batch[5].dtype == torch.float16
    again = ladd(
        "fkd-store", str(root / "rr"), "--labeler", str(ckpt), "--epochs", "1",
        "--out", str(root / "store"), "--source", "shapes", cwd=root,
    )  # fmt: skip
    assert again.returncode == 1 and "holds a store already" in again.stderr


def test_train_augment_and_stats_take_the_strategy_sampler_and_drift_options(made):
    """The options on the existing commands: `ladd augment --sampler` records the sampler in the
    file; `ladd train --loss-fn kl --balance learned` plans and records that strategy (the
    plan's train record, its learned weights' end state); `ladd stats --drift` adds the drift
    table to the statistics, its JSON the same numbers `ladd drift` gives."""
    from typer.testing import CliRunner

    from ladd.cli import app
    from ladd.sets import load_set
    from ladd.store import Workspace

    root, ckpt = made
    ws = root / "ws-options"
    common = ["--source", "shapes", "--workspace", str(ws), "--device", "cpu"]
    runner = CliRunner()
    la = root / "la-multiscale.safetensors"
    res = runner.invoke(
        app,
        ["augment", str(root / "rr"), "--labeler", str(ckpt), "--sampler", "multiscale:2@0.75,3@0.5",
         "--codec", "float32", "--out", str(la), *common],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    made_set = load_set(la)
    assert made_set.sampler == "multiscale:2@0.75,3@0.5" and made_set.num_crops == 4 + 9
    res = runner.invoke(
        app,
        ["train", str(la), "--mode", "ladd", "--epochs", "1", "--seeds", "1", "--width", "4",
         "--loss-fn", "kl", "--balance", "learned", "--json", *common],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    (run,) = Workspace(ws).db.list_runs("train")
    assert out["run_id"] == run.id
    cfg = run.config["train"]
    assert cfg["loss_fn"].startswith("kl") and cfg["balance"] == "learned", cfg
    bad = runner.invoke(app, ["train", str(la), "--loss-fn", "nonsense", "--epochs", "1", *common])
    assert bad.exit_code == 1 and "nonsense" in bad.output
    res = runner.invoke(
        app,
        ["stats", str(root / "rr"), "--labeler", str(ckpt), "--n", "3", "--r", "0.5", "--drift",
         "--threshold", "0.0", "--json", *common],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    found = json.loads(res.output.strip().splitlines()[-1])
    assert set(found) == {"stats", "drift"}
    (stat,) = found["stats"].values()
    assert 0.0 <= stat["agreement"] <= 1.0
    js = [row["js"] for row in found["drift"]["drifted"]]
    assert js == sorted(js, reverse=True)
