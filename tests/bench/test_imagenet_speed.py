"""bench.imagenet_speed and scripts/imagenet_gpu.sh rehearse on the CPU at tiny sizes: every
stage runs and writes its record (the figures themselves are for a GPU; nothing here is timed)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def test_every_stage_runs_and_records_its_figure(tmp_path: Path) -> None:
    env = {**os.environ, "TINY": "1", "DEVICE": "cpu", "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "imagenet_gpu.sh")],
        env=env, capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    records = json.loads((tmp_path / "imagenet.json").read_text())
    stages = [(r["stage"], r.get("what")) for r in records]
    assert stages == [
        ("throughput", "ours"),
        ("throughput", "plain torchvision loop"),
        ("epoch", "one epoch of the IPC 10 LADD run"),
        ("ddp", None),
    ]
    for r in records:
        assert r["samples_per_s"] > 0 and r["tiny"] is True
        assert r["card"].startswith("CPU") and r["date"] and r["command"].startswith("python -m")
    ours, epoch = records[0], records[2]
    assert ours["samples"] == 32 * 5 and epoch["samples"] == 32 * 5  # 8 x 4 images, 1 + 2 x 2 views
    assert records[3]["world"] == 2
    # gloo CPU ranks normalise each shard (no SyncBatchNorm); the saved models hold BatchNorm2d
    assert records[3]["sync_batchnorm_forwards"] == 0 and records[3]["saved_batchnorm_plain"]
    assert "x 300 epochs =" in run.stdout


def test_the_ladd_data_has_the_protocols_shape() -> None:
    from bench.imagenet_speed import Sizes, ladd_data
    from ladd.cropped import CroppedInputs

    sizes = Sizes.of(tiny=True)
    data = ladd_data(sizes)
    assert (
        isinstance(data.inputs, CroppedInputs)
        and data.inputs.images.dtype.is_floating_point is False
    )
    assert len(data) == 32 * 5 and data.num_full == 32 and data.num_classes == 8
    full = Sizes.of(tiny=False)
    assert (full.classes, full.ipc, full.image, full.n, full.batch) == (1000, 10, 224, 5, 100)
    assert data.inputs[0:2].shape == (2, 3, 32, 32)  # normalised float batches
    assert data.targets[torch.tensor([0, 40])].shape == (2, 8)  # a hard row, a decoded crop row
