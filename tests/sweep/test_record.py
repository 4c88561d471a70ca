"""ladd.sweep.record: the sweep record and the runs it lands in (each plan recorded once, by
the driver), the driver lock, and a dead driver's sweep read as interrupted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from sweep_grid import ROOT, grid, train_runs

from ladd.store import Workspace
from ladd.sweep import compute_cell, list_sweeps, load_sweep, plan_sweep, recorded_runs, run_sweep


def test_a_result_for_a_recorded_cell_is_not_recorded_again(inputs, tmp_path):
    """A retried task that finishes twice, or a driver that died between writing the run and
    sweep.json: the second result for a key is dropped, even by a driver that starts afresh."""
    from ladd.sweep import runner
    from ladd.sweep.inputs import SweepInputs

    ws = Workspace(tmp_path)
    spec = grid(inputs, archs=("convnet_d2",), modes=("baseline",))
    inp = SweepInputs(spec, ws)
    (cell,) = plan_sweep(spec, ws, device="cpu", _inputs=inp).cells
    ds = inp.dataset(cell.cell.input)
    out = compute_cell(cell.plan, ds, inp.test_split(ds), threads=1)
    first = runner._record(spec, cell, out, inp, ws, {})
    assert runner._record(spec, cell, out, inp, ws, {cell.key: first}) == first  # same driver
    assert runner._record(spec, cell, out, inp, ws, {}) == first  # a new driver: the database
    assert len(train_runs(ws)) == 1
    assert recorded_runs(ws) == {cell.key: first}  # by the plan's key
    (run,) = train_runs(ws)
    assert run.config["plan"]["key"] == cell.key and run.config["sweep"]["cell"] == cell.cell.key


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
    assert ladd_cell.cell is not None and ladd_cell.cell != ladd_cell.key  # grid id, plan key
    assert ghost.counterpart(ladd_cell.key).mode == "baseline"
    assert ghost.counterpart(ladd_cell.key).arch == ladd_cell.arch
    shutil.rmtree(ws.root / "sweeps" / "ghost")
