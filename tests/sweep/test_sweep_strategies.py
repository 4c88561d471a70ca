"""Issue 37: the label strategy and the sampler are sweep axes; a sweep without them keeps its
cell keys; each cell trains under its strategy on labels of its sampler's crops (shapes)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ladd.store import Workspace
from ladd.sweep import SweepSpec, expand, run_sweep


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, one_thread):
    """A random-real shapes set (IPC 1, 16 px) and a 1-checkpoint labeler folder."""
    from ladd.labeler import LabelerConfig, train_labeler
    from ladd.sets import random_real

    root = tmp_path_factory.mktemp("sweep-strategy-inputs")
    random_real("shapes", 1, seed=0, image_size=16).save_mtt(root / "rr")
    cfg = LabelerConfig(
        epochs=1, save_at=(1,), limit_per_class=10, image_size=16, model_options={"width": 4}
    )
    train_labeler("shapes", cfg, root / "labeler", device="cpu")
    return root


def grid(inputs: Path, **changes) -> SweepSpec:
    spec = SweepSpec(
        name="strategies",
        sets=(str(inputs / "rr"),),
        source="shapes",
        archs=("convnet_d2",),
        modes=("baseline", "ladd"),
        labeler=str(inputs / "labeler"),
        nr=((2, 0.75),),
        seed_groups=((0,),),
        epochs=1,
        width=4,
        device="cpu",
        threads=1,
    )
    return replace(spec, **changes)


def test_strategy_axes_multiply_the_cells_and_keep_old_keys(inputs):
    plain = expand(grid(inputs))
    spec = grid(inputs, loss_fns=("soft_ce", "kl"), balances=("fixed", "learned"))
    assert spec.loss_fns == ("soft_ce", "kl:t=20")
    cells = expand(spec)
    assert len(cells) == 4 * len(plain)
    assert {c.key for c in plain} <= {c.key for c in cells}  # the defaults: the same keys
    kl = [c for c in cells if c.config.loss_fn == "kl:t=20" and c.config.balance == "learned"]
    assert kl and "kl:t=20" in kl[0].label and "learned" in kl[0].label
    assert spec.to_dict()["loss_fns"] == ["soft_ce", "kl:t=20"]
    assert SweepSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("loss_fns", ("nope",), "loss_fns: unknown label loss"),
        ("label_schedules", ("sideways",), "label_schedules: unknown label schedule"),
        ("balances", ("heavy",), "balances: unknown balance"),
        ("samplers", ("grid:5",), "samplers: grid needs N and R"),
    ],
)
def test_bad_axes_are_refused_when_the_spec_is_made(inputs, field, value, message):
    with pytest.raises(ValueError, match=message):
        grid(inputs, **{field: value})


def test_a_sampler_axis_labels_each_input_with_its_crops_and_trains(inputs, tmp_path):
    from ladd.sets import LabelAugmentedSet

    spec = grid(
        inputs,
        modes=("ladd",),
        samplers=("grid:2,0.75", "random:3,seed=1"),
        label_schedules=("hald",),
    )
    cells = expand(spec)
    assert {c.input.sampler for c in cells} == {None, "random:3,seed=1"}
    grid_cell = next(c for c in cells if c.input.sampler is None)
    assert (grid_cell.input.n, grid_cell.input.r) == (2, 0.75)  # a grid is said as n and r
    ws = Workspace(tmp_path / "ws")
    assert run_sweep(spec, ws).status == "done"
    runs = ws.db.list_runs("train")
    assert len(runs) == 2
    sets = {LabelAugmentedSet.load(r.config["set"]).sampler for r in runs}
    assert sets == {None, "random:3,seed=1"}
    for r in runs:
        assert r.config["train"]["label_schedule"] == "hald"


def test_crossed_axes_leave_out_the_combinations_no_run_can_train(inputs):
    spec = grid(
        inputs,
        modes=("ladd",),
        loss_fns=("soft_ce", "kl"),
        label_schedules=("constant", "temperature"),
    )
    got = {(c.config.loss_fn, c.config.label_schedule) for c in expand(spec)}
    assert got == {("soft_ce", "constant"), ("kl:t=20", "constant"), ("kl:t=20", "temperature")}
