"""Sweeps (ladd/sweep/): the grid and its keys, the serial and Ray executors, resuming, recording
once, progress, the cost model, and the GPU script's CPU rehearsal.

The grid throughout: random real `shapes` IPC 2 at 16 px, a ConvNet-D3 labeler trained for one
epoch, ConvNet-D2 and ConvNet-D3 at width 8 x baseline and LADD (N 3, R 0.5), one seed per cell,
4 epochs, one torch thread per cell (so that on the CPU a cell's result depends on its seeds
only, whichever process computes it).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ladd.store import Workspace, load_model
from ladd.sweep import (
    SweepEvent,
    SweepSpec,
    TextProgress,
    compute_cell,
    expand,
    list_sweeps,
    load_spec,
    load_sweep,
    plan_sweep,
    recorded_cells,
    render_event,
    run_sweep,
    seed_groups,
    throughput,
)
from ladd.sweep.cost import estimate_cell, samples_per_epoch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, one_thread):
    """A random-real shapes set (IPC 2, 16 px) and a 2-checkpoint labeler folder."""
    from ladd.labeler import LabelerConfig, train_labeler
    from ladd.sets import random_real

    root = tmp_path_factory.mktemp("sweep-inputs")
    random_real("shapes", 2, seed=0, image_size=16).save_mtt(root / "rr")
    cfg = LabelerConfig(
        epochs=2, save_at=(1, 2), limit_per_class=20, image_size=16, model_options={"width": 8}
    )
    train_labeler("shapes", cfg, root / "labeler", device="cpu")
    return root


def grid(inputs: Path, name: str = "grid", **changes) -> SweepSpec:
    spec = SweepSpec(
        name=name,
        sets=(str(inputs / "rr"),),
        source="shapes",
        archs=("convnet_d2", "convnet_d3"),
        modes=("baseline", "ladd"),
        labeler=str(inputs / "labeler"),
        labeler_epochs=(1,),
        nr=((3, 0.5),),
        seed_groups=((0,),),
        epochs=4,
        width=8,
        device="cpu",
        threads=1,
        cpus_per_cell=1,
    )
    return replace(spec, **changes)


def train_runs(ws: Workspace) -> list:
    return [r for r in ws.db.list_runs("train")]


# ---------------------------------------------------------------------------------------------
# The spec and its cells


def test_spec_from_toml_resolves_paths_and_seed_groups(tmp_path):
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "cross.toml"
    path.write_text(
        'sets = ["../sets/a", "/abs/b"]\nsource = "shapes"\narchs = ["convnet_d3", "alexnet"]\n'
        'labeler = "labelers/l"\nseeds = 5\nseeds_per_cell = 2\nseed = 10\nnr = [[5, 0.625], [3, 0.5]]\n'
        "epochs = 20\ngpus_per_cell = 0.5\n"
    )
    spec = load_spec(path)
    assert spec.name == "cross"  # the file's stem
    assert spec.sets == (str(tmp_path / "specs" / "../sets/a"), "/abs/b")
    assert spec.labeler == str(tmp_path / "specs" / "labelers" / "l")
    assert spec.seed_groups == ((10, 11), (12, 13), (14,))
    assert spec.nr == ((5, 0.625), (3, 0.5))
    assert spec.gpus_per_cell == 0.5
    assert load_spec(path, name="other", epochs=3).epochs == 3
    round_trip = SweepSpec.from_dict(spec.to_dict())
    assert round_trip == spec


def test_the_documented_sweep_file_reads(tmp_path):
    """docs/sweeps.md's example spec stays valid."""
    text = (ROOT / "docs" / "sweeps.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "cross.toml").write_text(block)
    spec = load_spec(tmp_path / "cross.toml")
    assert spec.name == "cifar10-cross-arch" and len(spec.archs) == 5
    assert spec.seed_groups == ((0, 1, 2, 3, 4),) and spec.epochs == 1000


@pytest.mark.parametrize(
    "table, problem",
    [
        ({"sets": ["x"], "colour": "red"}, "unknown sweep field"),
        ({"sets": ["x"], "archs": ["nonet"]}, "unknown architecture"),
        ({"sets": ["x"], "modes": ["both"]}, "unknown mode"),
        ({"sets": ["x"], "gpus_per_cell": 1.5}, "gpus_per_cell"),
        ({"sets": ["x"], "seeds": 2, "seed_groups": [[0]]}, "either seeds"),
        ({"sets": []}, "at least one set"),
    ],
)
def test_spec_refuses_what_cannot_run(table, problem):
    with pytest.raises(ValueError, match=problem):
        SweepSpec.from_dict({"name": "s", **table})


def test_seed_groups_split_in_order():
    assert seed_groups(5) == ((0, 1, 2, 3, 4),)
    assert seed_groups(5, 1, base=3) == ((3,), (4,), (5,), (6,), (7,))
    with pytest.raises(ValueError):
        seed_groups(0)


def test_grid_expands_labeler_axes_only_for_modes_that_use_the_labeler(inputs):
    spec = grid(inputs, labeler_epochs=(1, 2), nr=((3, 0.5), (2, 0.75)), seed_groups=((0,), (1,)))
    cells = expand(spec)
    by_mode = {m: [c for c in cells if c.config.mode == m] for m in spec.modes}
    assert len(by_mode["baseline"]) == 2 * 2  # archs x seed groups
    assert len(by_mode["ladd"]) == 2 * 2 * 2 * 2  # labeler epochs x N/R x archs x seed groups
    assert {(c.input.labeler_epoch, c.input.n, c.input.r) for c in by_mode["ladd"]} == {
        (e, n, r) for e in (1, 2) for n, r in ((3, 0.5), (2, 0.75))
    }
    assert all(not c.input.augmented for c in by_mode["baseline"])
    assert len({c.key for c in cells}) == len(cells)
    assert all(c.config.model_options == {"width": 8} for c in cells)


def test_cell_keys_follow_the_experiment_not_where_it_runs(inputs, tmp_path):
    keys = [c.key for c in expand(grid(inputs))]
    assert keys == [c.key for c in expand(grid(inputs))]  # stable
    moved = grid(inputs, device="auto", gpus_per_cell=0.25, max_retries=0, name="other", threads=2)
    assert [c.key for c in expand(moved)] == keys
    assert not set(keys) & {c.key for c in expand(grid(inputs, epochs=5))}
    # the same bytes elsewhere are the same experiment; other bytes are another one
    shutil.copytree(inputs / "rr", tmp_path / "copy")
    copied = grid(inputs, sets=(str(tmp_path / "copy"),))
    assert [c.key for c in expand(copied)] == keys
    images = tmp_path / "copy" / "images_best.pt"
    images.write_bytes(images.read_bytes() + b"\0")
    assert not set(keys) & {c.key for c in expand(copied)}


def test_a_label_augmented_set_sweeps_with_its_own_dense_labels(inputs, tmp_path):
    from ladd.dense import augment
    from ladd.labeler import list_checkpoints
    from ladd.sets import load_set

    la_path = tmp_path / "la.safetensors"
    rr = load_set(inputs / "rr", source="shapes")
    augment(rr, list_checkpoints(inputs / "labeler")[0], 2, 0.75, device="cpu").save(la_path)
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


def test_a_plain_set_in_ladd_mode_needs_a_labeler(inputs):
    with pytest.raises(ValueError, match="needs dense labels"):
        expand(grid(inputs, labeler=None, labeler_epochs=(), nr=()))
    with pytest.raises(ValueError, match="no checkpoint at epoch"):
        expand(grid(inputs, labeler_epochs=(7,)))


# ---------------------------------------------------------------------------------------------
# Serial executor: record, resume, fail, stop


@pytest.fixture(scope="module")
def serial_run(inputs, tmp_path_factory):
    """The grid run serially once (the reference for the Ray run) and its events."""
    ws = Workspace(tmp_path_factory.mktemp("ws-serial"))
    events: list[SweepEvent] = []
    res = run_sweep(grid(inputs), ws, executor="serial", on_event=events.append)
    return ws, res, events


def test_serial_sweep_records_every_cell_once_with_its_key(serial_run, inputs):
    ws, res, events = serial_run
    assert res.status == "done" and res.ran == 4 and res.failed == 0
    runs = train_runs(ws)
    assert len(runs) == 4 and all(r.status == "done" for r in runs)
    keys = {c.key for c in expand(grid(inputs))}
    assert {r.config["sweep"]["cell_key"] for r in runs} == keys
    rec = load_sweep(ws, "grid")
    assert rec.status == "done" and rec.counts()["done"] == 4
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


def test_a_result_for_a_recorded_cell_is_not_recorded_again(inputs, tmp_path):
    """A retried task that finishes twice, or a driver that died between writing the run and
    sweep.json: the second result for a key is dropped, even by a driver that starts afresh."""
    from ladd.sweep import runner

    ws = Workspace(tmp_path)
    spec = grid(inputs, archs=("convnet_d2",), modes=("baseline",))
    (cell,) = expand(spec)
    inp = runner._Inputs(spec, ws)
    ds = inp.dataset(cell.input)
    out = compute_cell(cell, ds, inp.test_split(ds), device="cpu", threads=1)
    first = runner._record(spec, cell, out, inp, ws, {})
    assert runner._record(spec, cell, out, inp, ws, {cell.key: first}) == first  # same driver
    assert runner._record(spec, cell, out, inp, ws, {}) == first  # a new driver: the database
    assert len(train_runs(ws)) == 1
    assert recorded_cells(ws) == {cell.key: first}


def test_a_failing_cell_is_reported_and_a_rerun_runs_only_it(inputs, tmp_path):
    ws = Workspace(tmp_path)
    spec = grid(inputs, name="flaky", modes=("baseline",))
    bad = expand(spec)[0].key

    def fails_once(cell, *args, **kwargs):
        if cell.key == bad:
            raise RuntimeError("out of memory (simulated)")
        return compute_cell(cell, *args, **kwargs)

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

    def dies_mid_cell(cell, *args, **kwargs):
        assert kwargs["checkpoint_dir"] == folder  # the runner hands the workspace's folder

        def progress(ev) -> None:
            if ev.stage == "train":
                passes.append(ev.step)
                if ev.step >= 3 and any(folder.glob("train-*.safetensors")):
                    raise _Killed

        kwargs.update(progress=progress, checkpoint_seconds=0)  # a state at every pass
        return compute_cell(cell, *args, **kwargs)

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
    assert run.config["sweep"]["resumed"] is True
    assert not list(folder.glob("train-*.safetensors"))
    (cell,) = expand(spec)
    (ref,) = [r for r in train_runs(serial_run[0]) if r.config["sweep"]["cell_key"] == cell.key]
    assert ref.config["sweep"]["resumed"] is False
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


_HOLD = """
import sys, time
from ladd.store import Workspace
from ladd.sweep import driver_lock
with driver_lock(Workspace(sys.argv[1]), "busy"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_driver_of_the_same_sweep_is_refused_until_the_first_is_gone(inputs, tmp_path):
    """Two drivers of one sweep (two terminals, or the dashboard and a terminal) would train
    the same cells twice: the second is refused and told who holds the sweep; the lock goes
    with its holder, even one killed with -9, and the sweep then runs."""
    from ladd.sweep import SweepBusy

    ws = Workspace(tmp_path)
    spec = grid(inputs, name="busy", archs=("convnet_d2",), modes=("baseline",))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SweepBusy, match=rf"already running \(pid {holder.pid} on "):
            run_sweep(spec, ws)
        assert train_runs(ws) == []
    finally:
        holder.kill()  # SIGKILL: no cleanup of its own
        holder.wait()
    res = run_sweep(spec, ws)
    assert res.status == "done" and res.ran == 1


def test_sweeps_are_listed_and_a_dead_driver_reads_interrupted(serial_run, tmp_path):
    ws, _, _ = serial_run
    assert [s.name for s in list_sweeps(ws)] == ["grid"]
    assert list_sweeps(Workspace(tmp_path)) == []
    path = ws.root / "sweeps" / "grid" / "sweep.json"
    raw = json.loads(path.read_text())
    raw.update(name="ghost", status="running", pid=2**22 + 12345)  # no such process
    raw["cells"][0]["status"] = "running"
    (ws.root / "sweeps" / "ghost").mkdir()
    (ws.root / "sweeps" / "ghost" / "sweep.json").write_text(json.dumps(raw))
    ghost = load_sweep(ws, "ghost")
    assert ghost.status == "interrupted" and ghost.counts()["running"] == 0
    ladd_cell = next(c for c in ghost.cells if c.mode == "ladd")
    assert ghost.counterpart(ladd_cell.key).mode == "baseline"
    assert ghost.counterpart(ladd_cell.key).arch == ladd_cell.arch
    shutil.rmtree(ws.root / "sweeps" / "ghost")


# ---------------------------------------------------------------------------------------------
# Progress and cost


def test_render_event_shows_counts_eta_and_the_cell():
    ev = SweepEvent("done", "g", 8, 3, 2, 1, 1, 75.0, eta=250.0, cell="rr convnet_d3/ladd",
                    run_id=12, accuracy=0.5423)  # fmt: skip
    line = render_event(ev)
    for part in ("[g]", "3/8 done", "(1 skipped)", "2 running", "1 failed", "elapsed 1m15s",
                 "ETA 4m10s", "done rr convnet_d3/ladd: 54.23% (run 12)"):  # fmt: skip
        assert part in line, (part, line)
    assert ev.pending == 2
    end = render_event(replace(ev, kind="end", eta=0.0, cell=None, run_id=None, accuracy=None))
    assert "ETA" not in end and "finished" in end


def test_text_progress_throttles_per_epoch_lines():
    buf = io.StringIO()
    show = TextProgress(buf, every=3600)
    ev = SweepEvent("progress", "g", 2, 0, 1, 0, 0, 1.0, message="train 1/9")
    show(ev)
    show(replace(ev, message="train 2/9"))
    show(replace(ev, kind="done"))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and "train 1/9" in lines[0] and "done" in lines[1]


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

    def reports_slowly(cell, *args, **kwargs):
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
        return compute_cell(cell, *args, **kwargs)

    events: list[SweepEvent] = []
    res = run_sweep(spec, ws, compute=reports_slowly, on_event=events.append)
    assert res.status == "done" and res.ran == 2
    # no pace yet: the cost model, less the time the cell has run
    assert seen[0] == pytest.approx(first + second)
    assert seen[1] == pytest.approx(max(0.0, first - runner.MIN_PACE_SECONDS / 2) + second)
    # 0.1 of the cell in 30 s: 300 s a cell, 0.8 of it left; the LADD cell scaled alike
    assert seen[2] == pytest.approx(0.8 * 300.0 + second * 300.0 / first)
    assert first + second < 10.0 < seen[2]  # the cost model says seconds: this grid is tiny


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
    plan = plan_sweep(grid(inputs), Workspace(tmp_path), slots=2, device="cpu")
    assert len(plan.todo) == 4 and not plan.recorded
    assert plan.estimate.known == 4 and plan.estimate.slots == 2
    assert plan.estimate.wall_seconds == pytest.approx(plan.estimate.cell_seconds / 2)
    ladd = [r for r, c in zip(plan.table(), plan.cells, strict=True) if c.config.mode == "ladd"]
    base = [r for r, c in zip(plan.table(), plan.cells, strict=True) if c.config.mode == "baseline"]
    # 20 images: baseline 20 samples/epoch, LADD with N 3 20 + 180
    assert ladd[0]["estimate_seconds"] > base[0]["estimate_seconds"]
    assert "4 cells, 0 recorded already, 4 to run" in plan.summary()
    assert not (tmp_path / "sweeps").exists()  # planning writes nothing


# ---------------------------------------------------------------------------------------------
# Without ray


BLOCK_RAY = """
import sys
class NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("ray is blocked in this test")
sys.meta_path.insert(0, NoRay())
import importlib, pkgutil
import ladd, ladd.sweep
for mod in pkgutil.walk_packages(ladd.__path__, "ladd."):  # every module, the Ray backend too
    if mod.name != "ladd.__main__":  # (that one runs the command line)
        importlib.import_module(mod.name)
from ladd.store import Workspace
from ladd.sweep import SweepSpec, run_sweep
spec = SweepSpec(name="noray", sets=(sys.argv[1],), source="shapes", archs=("convnet_d2",),
                 modes=("baseline",), seed_groups=((0,),), epochs=1, width=8, device="cpu")
res = run_sweep(spec, Workspace(sys.argv[2]))
try:
    run_sweep(spec.with_options(epochs=2), Workspace(sys.argv[2]), executor="ray")
except ImportError as err:
    hint = str(err)
print(res.status, res.ran, "ray" in sys.modules, hint)
"""


def test_sweep_imports_and_runs_serially_without_ray(inputs, tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(
        [sys.executable, "-c", BLOCK_RAY, str(inputs / "rr"), str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    status, ran, imported, *hint = out.stdout.split()
    assert (status, ran, imported) == ("done", "1", "False")
    assert "pip install" in " ".join(hint)


# ---------------------------------------------------------------------------------------------
# Ray: a local instance with 2 CPU workers


@pytest.fixture(scope="module")
def ray_home(tmp_path_factory) -> str:
    """One HOME for every Ray instance these tests start: Ray 2.60 guards a local instance with
    a token under ~/.ray and reads where that is once per process, so a second instance under
    another HOME never gets its GCS server up (it times out waiting for it)."""
    return str(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def ray_run(inputs, serial_run, tmp_path_factory, ray_home):
    """The grid on a local 2-CPU Ray instance; the first attempt of one cell kills its own
    worker process (os._exit mid-task, as the OOM killer would). Then the same sweep again.
    Ray is shut down before the tests look at anything."""
    mp = pytest.MonkeyPatch()
    # Ray 2.60 guards a local instance with a token it writes to ~/.ray/auth_token: give this
    # one a home of its own (set before ray is imported: Ray reads its auth mode once)
    mp.setenv("HOME", ray_home)
    ray = pytest.importorskip("ray")
    from ladd.sweep.ray_backend import init_ray, short_temp_dir

    ws = Workspace(tmp_path_factory.mktemp("ws-ray"))
    marks = tmp_path_factory.mktemp("marks")
    spec = grid(inputs, name="grid-ray", max_retries=2)
    victim = next(c for c in expand(spec) if c.config.mode == "ladd").key
    temp = short_temp_dir()

    def dies_once(cell, *args, **kwargs):
        with open(marks / "attempts", "a") as fh:
            fh.write(f"{cell.key} {os.getpid()}\n")
        if cell.key == victim and not (marks / "killed").exists():
            (marks / "killed").touch()
            os._exit(1)  # the worker process dies in the middle of the task
        return compute_cell(cell, *args, **kwargs)

    events: list[SweepEvent] = []
    again: list[SweepEvent] = []
    try:
        init_ray(num_cpus=2, num_gpus=0, temp_dir=temp, log_to_driver=False)
        first = run_sweep(spec, ws, executor="ray", compute=dies_once, on_event=events.append)
        second = run_sweep(spec, ws, executor="ray", on_event=again.append)
    finally:
        ray.shutdown()
        mp.undo()
        shutil.rmtree(temp, ignore_errors=True)
    attempts = [line.split() for line in (marks / "attempts").read_text().splitlines()]
    yield {"ws": ws, "first": first, "second": second, "events": events, "again": again,
           "attempts": attempts, "victim": victim}  # fmt: skip


def test_ray_grid_survives_a_killed_worker(ray_run):
    first, attempts, victim = ray_run["first"], ray_run["attempts"], ray_run["victim"]
    assert first.status == "done" and first.ran == 4 and first.failed == 0
    tries = [pid for key, pid in attempts if key == victim]
    assert len(tries) == 2 and tries[0] != tries[1]  # rerun by Ray in a new worker process
    assert len({pid for _, pid in attempts}) >= 2  # the cells ran in more than one worker
    runs = train_runs(ray_run["ws"])
    assert len(runs) == 4  # every cell recorded, none twice
    assert len({r.config["sweep"]["cell_key"] for r in runs}) == 4
    assert max(e.running for e in ray_run["events"]) == 2  # two cells at once on 2 CPUs


def test_ray_grid_equals_the_serial_grid(ray_run, serial_run):
    """Same seeds, one thread per cell: the Ray workers' accuracies, loss curves and weights
    are the serial run's, bit for bit."""
    ws_s, ws_r = serial_run[0], ray_run["ws"]
    serial = {r.config["sweep"]["cell_key"]: r for r in train_runs(ws_s)}
    raying = {r.config["sweep"]["cell_key"]: r for r in train_runs(ws_r)}
    assert serial.keys() == raying.keys()
    for key, s in serial.items():
        r = raying[key]
        assert r.metrics["per_seed"] == s.metrics["per_seed"]
        assert r.metrics["final_loss"] == s.metrics["final_loss"]
        a = load_model(s.artifacts["model_seed0"]).state_dict()
        b = load_model(r.artifacts["model_seed0"]).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_ray_rerun_skips_every_finished_cell(ray_run):
    second, again = ray_run["second"], ray_run["again"]
    assert second.ran == 0 and second.skipped == 4 and second.status == "done"
    kinds = [e.kind for e in again]
    assert kinds.count("skip") == 4 and "start" not in kinds
    assert len(train_runs(ray_run["ws"])) == 4


def test_a_ray_worker_killed_mid_cell_resumes_on_its_retry(serial_run, inputs, tmp_path, ray_home):
    """On the private local instance the executor starts (this machine, this filesystem) the
    tasks keep their training state in the workspace, as the serial executor does: a worker
    killed mid-training (os._exit after a saved pass, as the OOM killer would) is retried by
    Ray, and the retry resumes the cell and ends with the serial grid's weights."""
    pytest.importorskip("ray")
    from ladd.sweep.ray_backend import short_temp_dir

    mp = pytest.MonkeyPatch()
    mp.setenv("HOME", ray_home)  # the Ray tests' one home (see `ray_home`)
    ws = Workspace(tmp_path / "ws")
    spec = grid(inputs, name="ray-killed", archs=("convnet_d3",), modes=("ladd",), max_retries=2)
    killed = tmp_path / "killed"

    def dies_after_a_saved_pass(cell, *args, **kwargs):
        folder = Path(kwargs["checkpoint_dir"])  # handed to the task on a local instance
        if not killed.exists():

            def progress(ev) -> None:
                if ev.stage == "train" and ev.step >= 3 and any(folder.glob("train-*")):
                    killed.touch()
                    os._exit(1)

            kwargs.update(progress=progress, checkpoint_seconds=0)
        return compute_cell(cell, *args, **kwargs)

    temp = short_temp_dir()
    options = {"num_cpus": 1, "num_gpus": 0, "temp_dir": temp, "log_to_driver": False}
    try:
        res = run_sweep(
            spec, ws, executor="ray", compute=dies_after_a_saved_pass, ray_options=options
        )
    finally:
        mp.undo()
        shutil.rmtree(temp, ignore_errors=True)
    assert killed.exists() and res.status == "done" and res.ran == 1
    (run,) = train_runs(ws)
    assert run.config["sweep"]["resumed"] is True
    assert not list((ws.root / "checkpoints").glob("train-*"))
    (cell,) = expand(spec)
    (ref,) = [r for r in train_runs(serial_run[0]) if r.config["sweep"]["cell_key"] == cell.key]
    a = load_model(run.artifacts["model_seed0"]).state_dict()
    b = load_model(ref.artifacts["model_seed0"]).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------
# The GPU script, rehearsed on the CPU


@pytest.mark.slow
def test_gpu_script_rehearses_on_the_cpu(tmp_path):
    pytest.importorskip("ray")
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",  # python3 = this python
        "SWEEP_TINY": "1",
        "OUT": str(tmp_path / "out"),
        "HOME": str(tmp_path),  # Ray writes its cluster token under ~/.ray
        "LADD_CACHE_DIR": str(tmp_path / "cache"),
    }
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "sweep_gpu.sh")],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "sweep_gpu.json").read_text())
    assert [r["executor"] for r in record["runs"]] == ["serial", "ray-gpu1"]
    serial, ray_ = record["runs"]
    assert serial["status"] == ray_["status"] == "done"
    assert serial["ran"] == ray_["ran"] == 2
    assert serial["accuracy"] == ray_["accuracy"]  # same cells, same seeds, CPU: same numbers
    assert "serial" in out.stdout and "ray-gpu1" in out.stdout


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
