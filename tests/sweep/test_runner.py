"""ladd.sweep.runner: planning every cell on the driver, running them serially (record,
resume, fail, stop, skip what the workspace has by the plan's key), the ETA, and the
`ladd sweep` front end. The Ray executor is tests/sweep/test_ray_backend.py's."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from sweep_grid import by_plan_key, grid, train_runs

from ladd.store import Workspace, load_model
from ladd.sweep import (
    SweepEvent,
    compute_cell,
    expand,
    load_sweep,
    plan_sweep,
    recorded_runs,
    run_sweep,
)


def test_serial_sweep_records_every_cell_once_with_its_key(serial_run, inputs):
    ws, res, events = serial_run
    assert res.status == "done" and res.ran == 4 and res.failed == 0
    runs = train_runs(ws)
    assert len(runs) == 4 and all(r.status == "done" for r in runs)
    cells = {c.key for c in expand(grid(inputs))}  # the grid's cell ids
    assert {r.config["sweep"]["cell"] for r in runs} == cells
    rec = load_sweep(ws, "grid")
    assert rec.status == "done" and rec.counts()["done"] == 4
    assert {r.config["plan"]["key"] for r in runs} == {c.key for c in rec.cells}  # plan keys
    assert {c.cell for c in rec.cells} == cells
    for cell in rec.cells:
        run = ws.db.get_run(cell.run_id)
        assert run.metrics["accuracy_mean"] == pytest.approx(cell.accuracy_mean)
        assert run.config["train"]["arch"] == cell.arch and run.config["train"]["mode"] == cell.mode
        assert run.config["source"] == "shapes"
        assert Path(run.config["set"]).exists()  # the LADD cells' label-augmented input file
        assert any(k.startswith("model_seed") for k in run.artifacts)
    kinds = [e.kind for e in events]
    assert kinds[0] == "plan" and kinds[-1] == "end"
    assert kinds.count("start") == kinds.count("done") == 4
    assert events[-1].done == 4 and events[-1].running == 0 and events[-1].eta == 0.0


def test_ladd_cells_train_on_the_labelers_dense_labels(serial_run):
    from ladd.sets import LabelAugmentedSet

    ws, res, _ = serial_run
    ladd = [c for c in res.record.cells if c.mode == "ladd"]
    for cell in ladd:
        run = ws.db.get_run(cell.run_id)
        la = LabelAugmentedSet.load(run.config["set"])
        assert (la.n, la.r, la.labeler["epoch"]) == (3, 0.5, 1)
        assert run.metrics["seconds"] > 0
    # both LADD cells (two archs) share one prepared input
    assert len({ws.db.get_run(c.run_id).config["set"] for c in ladd}) == 1


def test_rerun_skips_every_recorded_cell(serial_run, inputs):
    ws, _, _ = serial_run
    events: list[SweepEvent] = []
    res = run_sweep(grid(inputs), ws, executor="serial", on_event=events.append)
    assert res.ran == 0 and res.skipped == 4 and res.status == "done"
    assert [e.kind for e in events].count("skip") == 4
    assert "start" not in [e.kind for e in events]
    assert len(train_runs(ws)) == 4
    assert all(c.reused for c in load_sweep(ws, "grid").cells)


def test_a_failing_cell_is_reported_and_a_rerun_runs_only_it(inputs, tmp_path):
    ws = Workspace(tmp_path)
    spec = grid(inputs, name="flaky", modes=("baseline",))
    bad = plan_sweep(spec, ws, device="cpu").cells[0].key  # the first cell's plan

    def fails_once(plan, *args, **kwargs):
        if plan.key == bad:
            raise RuntimeError("out of memory (simulated)")
        return compute_cell(plan, *args, **kwargs)

    events: list[SweepEvent] = []
    res = run_sweep(spec, ws, compute=fails_once, on_event=events.append)
    assert res.status == "failed" and res.failed == 1 and res.ran == 1
    rec = load_sweep(ws, "flaky")
    assert rec.cell(bad).status == "failed" and "out of memory" in rec.cell(bad).error
    assert [e.kind for e in events].count("fail") == 1
    again = run_sweep(spec, ws)
    assert again.status == "done" and again.ran == 1 and again.skipped == 1
    assert len(train_runs(ws)) == 2


class _Killed(BaseException):
    """The process going away mid-cell (a session's end, a reboot): nothing catches it."""


def test_a_killed_cell_resumes_from_its_saved_state_with_the_weights_of_an_unkilled_run(
    serial_run, inputs, tmp_path
):
    """A sweep killed in the middle of a cell loses at most `checkpoint_seconds` of it: the
    serial executor keeps the cell's training state in the workspace's checkpoint folder (the
    file `ladd train` keeps for the same run), the rerun resumes it, records that it did, and
    ends with the weights and accuracy of the same cell never killed (the serial grid's); the
    state file is removed once the cell is done."""
    ws = Workspace(tmp_path)
    spec = grid(inputs, name="killed", archs=("convnet_d3",), modes=("ladd",))
    folder = ws.root / "checkpoints"
    passes: list[int] = []

    def dies_mid_cell(plan, *args, **kwargs):
        assert kwargs["checkpoint_dir"] == folder  # the runner hands the workspace's folder

        def progress(ev) -> None:
            if ev.stage == "train":
                passes.append(ev.step)
                if ev.step >= 3 and any(folder.glob("train-*.safetensors")):
                    raise _Killed

        kwargs.update(progress=progress, checkpoint_seconds=0)  # a state at every pass
        return compute_cell(plan, *args, **kwargs)

    with pytest.raises(_Killed):
        run_sweep(spec, ws, compute=dies_mid_cell)
    assert len(list(folder.glob("train-*.safetensors"))) == 1 and max(passes) == 3
    events: list[SweepEvent] = []
    res = run_sweep(spec, ws, on_event=events.append)
    assert res.status == "done" and res.ran == 1
    # the user is told where it goes on from: the state saved after pass 2 (pass 3 was cut)
    notes = [e.message for e in events if "resuming" in (e.message or "")]
    assert len(notes) == 1 and "resuming the saved state: pass 2 of 5 of seed 0" in notes[0]
    (run,) = train_runs(ws)
    assert run.metrics["resumed"] is True
    assert not list(folder.glob("train-*.safetensors"))
    # the same plan as the serial grid's cell (same set bytes, same config): its run is the ref
    ref = by_plan_key(serial_run[0])[run.config["plan"]["key"]]
    assert ref.metrics["resumed"] is False
    assert run.metrics["per_seed"] == ref.metrics["per_seed"]
    a = load_model(run.artifacts["model_seed0"]).state_dict()
    b = load_model(ref.artifacts["model_seed0"]).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_stop_leaves_the_rest_pending(inputs, tmp_path):
    ws = Workspace(tmp_path)
    stop = threading.Event()

    def on_event(ev: SweepEvent) -> None:
        if ev.kind == "done":
            stop.set()

    res = run_sweep(grid(inputs, name="stopped"), ws, on_event=on_event, stop=stop)
    assert res.status == "stopped" and res.ran == 1
    counts = load_sweep(ws, "stopped").counts()
    assert counts == {"pending": 3, "running": 0, "done": 1, "failed": 0}


def test_a_label_augmented_set_sweeps_with_its_own_dense_labels(inputs, tmp_path):
    from ladd.dense import augment
    from ladd.labeler import list_checkpoints
    from ladd.sets import load_set

    la_path = tmp_path / "la.safetensors"
    rr = load_set(inputs / "rr", source="shapes")
    augment(rr, list_checkpoints(inputs / "labeler")[0], 2, 0.75, device="cpu", codec=None).save(
        la_path
    )
    spec = grid(inputs, sets=(str(la_path),), labeler=None, labeler_epochs=(), nr=(),
                archs=("convnet_d2",), modes=("ladd", "crops_hard"), epochs=1)  # fmt: skip
    cells = expand(spec)
    assert [(c.config.mode, c.config.n, c.config.r) for c in cells] == [
        ("ladd", 2, 0.75),
        ("crops_hard", 2, 0.75),
    ]
    assert all(not c.input.augmented for c in cells)
    with pytest.raises(ValueError, match="an nr axis needs a labeler"):
        expand(replace(spec, nr=((3, 0.5),)))
    ws = Workspace(tmp_path / "ws")
    res = run_sweep(replace(spec, modes=("ladd",)), ws)
    assert res.status == "done"
    (run,) = train_runs(ws)
    assert run.config["set"] == str(la_path.resolve())
    assert run.metrics["seconds"] > 0


def test_a_codec_axis_labels_each_input_in_each_codec_and_keeps_old_keys(inputs, tmp_path):
    """Issue 26: `codecs` multiplies the labelled cells only; a sweep without it keeps the
    keys it had before codecs existed; each cell trains on labels stored in its codec."""
    from ladd.sets import LabelAugmentedSet

    plain = expand(grid(inputs))
    spec = grid(inputs, codecs=("topk:2,uint8", "float32"))
    assert spec.codecs == ("topk:2,uint8,uniform", "float32")
    cells = expand(spec)
    ladd = [c for c in cells if c.config.mode == "ladd"]
    base = [c for c in cells if c.config.mode == "baseline"]
    assert len(ladd) == 2 * len([c for c in plain if c.config.mode == "ladd"])
    assert {c.key for c in base} == {c.key for c in plain if c.config.mode == "baseline"}
    assert {c.input.codec for c in ladd} == {"topk:2,uint8,uniform", "float32"}
    assert "codec" not in plain[-1].input.identity()
    with pytest.raises(ValueError, match="codecs: unknown label codec"):
        grid(inputs, codecs=("zip",))
    one = replace(spec, modes=("ladd",), archs=("convnet_d2",), seed_groups=((0,),), epochs=1,
                  labeler_epochs=(1,), nr=((2, 0.75),))  # fmt: skip
    ws = Workspace(tmp_path / "ws")
    assert run_sweep(one, ws).status == "done"
    runs = train_runs(ws)
    assert len(runs) == 2
    codecs = {LabelAugmentedSet.load(r.config["set"]).codec.spec for r in runs}
    assert codecs == {"topk:2,uint8,uniform", "float32"}
    assert {r.config["sweep"]["input"]["codec"] for r in runs} == codecs


def test_the_eta_follows_the_running_cells_training_pace_not_only_the_cost_model(
    inputs, tmp_path, monkeypatch
):
    """The cost model's figure is a guess (a CPU LADD cell of AlexNet ran 1.5 times longer than
    it said): once the running cell has reported its training over MIN_PACE_SECONDS, the ETA is
    its own pace, (1 - done) x seconds per cell, and the pending cells' estimates are scaled by
    how that pace compares with the running cell's estimate. Before that, the cost model."""
    from ladd.progress import ProgressEvent
    from ladd.sweep import runner

    clock = [1000.0]
    monkeypatch.setattr(runner, "time", type("Clock", (), {"perf_counter": lambda: clock[0]}))
    ws = Workspace(tmp_path)
    spec = grid(inputs, name="pace", archs=("convnet_d2",))  # baseline, then LADD
    plan = plan_sweep(spec, ws, slots=1, device="cpu")
    first, second = (plan.estimates[c.key].seconds for c in plan.todo)
    seen: list[float | None] = []

    def reports_slowly(plan, *args, **kwargs):
        if not seen:  # the first cell: 1 of 10 passes at once, the second 30 s later
            relay = kwargs["progress"]
            relay(ProgressEvent("train", 0, 10, note=True, message="a note moves nothing"))
            relay(ProgressEvent("train", 1, 10))
            seen.append(events[-1].eta)
            clock[0] += runner.MIN_PACE_SECONDS / 2  # too soon to trust a pace
            relay(ProgressEvent("train", 2, 10))
            seen.append(events[-1].eta)
            clock[0] += 30.0 - runner.MIN_PACE_SECONDS / 2
            relay(ProgressEvent("train", 2, 10))
            seen.append(events[-1].eta)
        return compute_cell(plan, *args, **kwargs)

    events: list[SweepEvent] = []
    res = run_sweep(spec, ws, compute=reports_slowly, on_event=events.append)
    assert res.status == "done" and res.ran == 2
    # no pace yet: the cost model, less the time the cell has run
    assert seen[0] == pytest.approx(first + second)
    assert seen[1] == pytest.approx(max(0.0, first - runner.MIN_PACE_SECONDS / 2) + second)
    # 0.1 of the cell in 30 s: 300 s a cell, 0.8 of it left; the LADD cell scaled alike
    assert seen[2] == pytest.approx(0.8 * 300.0 + second * 300.0 / first)
    assert first + second < 10.0 < seen[2]  # the cost model says seconds: this grid is tiny


def test_ladd_sweep_command_dry_run_and_serial_run(tmp_path, monkeypatch):
    """The CLI front end: --dry-run prints the plan and trains nothing; a run records every cell
    once; a rerun finds them all recorded."""
    from typer.testing import CliRunner

    from ladd.cli import app
    from ladd.sets import random_real
    from ladd.store import Workspace

    ws_root = tmp_path / "ws"
    random_real("shapes", 1, seed=0, limit_per_class=3, image_size=16).save_mtt(tmp_path / "set")
    spec = tmp_path / "grid.toml"
    spec.write_text(
        'name = "cli"\nsets = ["set"]\nsource = "shapes"\narchs = ["convnet_d1", "convnet_d2"]\n'
        'modes = ["baseline"]\nseed_groups = [[0]]\nepochs = 1\nwidth = 4\ndevice = "cpu"\n'
    )
    runner = CliRunner()
    args = ["sweep", str(spec), "--workspace", str(ws_root), "--executor", "serial"]
    res = runner.invoke(app, [*args, "--dry-run"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "2 cells" in res.output
    assert not Workspace(ws_root).db.list_runs("train")
    res = runner.invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "2 cell(s) run" in res.output
    assert len(Workspace(ws_root).db.list_runs("train")) == 2
    res = runner.invoke(app, args, catch_exceptions=False)
    assert "0 cell(s) run, 2 already recorded" in res.output


def test_a_ladd_train_run_of_the_same_plan_makes_the_sweep_skip_that_cell(inputs, tmp_path):
    """One run identity (issue 34): a cell's plan key is the key `ladd train` records for the
    same run, so a run recorded by the pipeline outside any sweep answers the sweep's cell;
    a cell of another plan (another seed) still runs."""
    from ladd.pipeline import run_train
    from ladd.plan import plan_training
    from ladd.sets.inputs import SetReading, load_training_inputs

    ws = Workspace(tmp_path)
    spec = grid(inputs, name="reuse", archs=("convnet_d2",), modes=("baseline",), epochs=1,
                seed_groups=((0,), (1,)))  # fmt: skip
    loaded = load_training_inputs(inputs / "rr", SetReading(source="shapes"))
    seed0 = next(c.config for c in expand(spec) if c.config.seeds == (0,))
    plan = plan_training(loaded.dataset, seed0, "cpu")  # as `ladd train` plans it
    run_id, _ = run_train(ws, plan, loaded.dataset, loaded.test, set_path=inputs / "rr")
    assert recorded_runs(ws) == {plan.key: run_id}
    swept = plan_sweep(spec, ws, device="cpu")
    assert swept.recorded == {plan.key: run_id}  # the `ladd train` run answers the cell
    assert len(swept.todo) == 1 and swept.todo[0].plan.config.seeds == (1,)
    events: list[SweepEvent] = []
    res = run_sweep(spec, ws, on_event=events.append)
    assert res.status == "done" and res.ran == 1 and res.skipped == 1
    assert [e.kind for e in events].count("skip") == 1
    reused = next(c for c in load_sweep(ws, "reuse").cells if c.key == plan.key)
    assert reused.reused and reused.run_id == run_id
    assert len(train_runs(ws)) == 2
