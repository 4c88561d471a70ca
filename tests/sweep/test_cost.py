"""ladd.sweep.cost: the cost model (measured rates, scaled by FLOPs, estimates said to be
estimates) and a sweep's estimate before it runs."""

from __future__ import annotations

import pytest
from sweep_grid import grid

from ladd.store import Workspace
from ladd.sweep import plan_sweep, throughput
from ladd.sweep.cost import estimate_cell, samples_per_epoch


def test_cost_model_uses_measured_rates_and_scales_the_rest_by_flops():
    rate, basis = throughput("convnet_d3", 32, 128, "cpu")
    assert rate == 29.5 and basis.startswith("measured")
    narrow, basis = throughput("convnet_d3", 32, 8, "cpu")
    assert basis.startswith("scaled by FLOPs from convnet_d3 32 px width 32")
    assert narrow > throughput("convnet_d3", 32, 32, "cpu")[0]  # fewer FLOPs: faster
    assert throughput("alexnet", 32, None, "cuda")[1].startswith("scaled by FLOPs")
    assert throughput("alexnet", 32, None, "tpu") == (None, "unknown: no measured figure on tpu")
    assert samples_per_epoch("ladd", 100, 5) == 2600
    assert samples_per_epoch("crops_hard", 100, 5) == 2500
    assert samples_per_epoch("full_hard_soft", 100, 5) == 200  # the images twice
    assert samples_per_epoch("crops_hard_dense", 100, 5) == 5000  # the crops twice
    from ladd.training import MODES

    for mode in MODES:  # every mode the trainer knows has a cost (the study's part 5 runs all)
        assert samples_per_epoch(mode, 100, 5) > 0
    est = estimate_cell(
        "convnet_d3", "ladd", images=100, n=5, image_size=32, seeds=5, epochs=1000, width=128,
        device="cuda",
    )  # fmt: skip
    # the H200 figure: 5 x 1000 x 2600 seed-samples at 203,614/s, plus the start
    assert est.seconds == pytest.approx(20 + 5 * 1000 * 2600 / 203_614.0)


def test_imagenet1k_resnet18_is_estimated_and_says_it_is_not_measured():
    """Table 3's LADD-RDED-I run (IPC 10 x 1000 classes, N 5, 300 epochs, one seed): 78M
    seed-samples at the assumed 6,000/s on one GPU, ~3.6 h; the basis says ESTIMATED, and so
    does any rate scaled from it (ResNet-50 at 224 px)."""
    est = estimate_cell(
        "tv_resnet18", "ladd", images=10_000, n=5, image_size=224, seeds=1, epochs=300,
        width=None, device="cuda",
    )  # fmt: skip
    assert est.seed_samples == 300 * 10_000 * 26
    assert est.seconds == pytest.approx(20 + 78_000_000 / 6_000.0)
    assert est.basis.startswith("ESTIMATED, not measured")
    rate, basis = throughput("tv_resnet50", 224, None, "cuda")
    assert "itself ESTIMATED" in basis and rate < 6_000.0  # more FLOPs a sample: slower


def test_plan_estimates_before_anything_runs(inputs, tmp_path):
    """Planning prepares each cell's input (the LADD cells' dense labels, made once and
    recorded as an augment run: a plan's key names the set's digest) and trains nothing."""
    ws = Workspace(tmp_path)
    plan = plan_sweep(grid(inputs), ws, slots=2, device="cpu")
    assert len(plan.todo) == 4 and not plan.recorded
    assert plan.estimate.known == 4 and plan.estimate.slots == 2
    assert plan.estimate.wall_seconds == pytest.approx(plan.estimate.cell_seconds / 2)
    modes = [c.plan.config.mode for c in plan.cells]
    ladd = [r for r, m in zip(plan.table(), modes, strict=True) if m == "ladd"]
    base = [r for r, m in zip(plan.table(), modes, strict=True) if m == "baseline"]
    # 20 images: baseline 20 samples/epoch, LADD with N 3 20 + 180
    assert ladd[0]["estimate_seconds"] > base[0]["estimate_seconds"]
    assert "4 cells, 0 recorded already, 4 to run" in plan.summary()
    assert ws.db.list_runs("train") == []  # planning trains nothing
    (augment,) = ws.db.list_runs("augment")  # one input for both LADD cells, recorded once
    assert augment.status == "done" and augment.config["sweep"]["name"] == "grid"
    again = plan_sweep(grid(inputs), ws, slots=2, device="cpu")  # read back, not made again
    assert len(ws.db.list_runs("augment")) == 1
    assert [c.key for c in again.cells] == [c.key for c in plan.cells]
