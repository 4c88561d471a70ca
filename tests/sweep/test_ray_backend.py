"""ladd.sweep.ray_backend: the sweep as Ray tasks on the test run's one local instance
(tests/conftest.py's `ray_instance`, 2 CPUs): a worker killed mid-task is retried, the grid
equals the serial one bit for bit, a rerun skips, a killed cell resumes on its retry; and
`ladd.sweep` imports and runs serially without ray installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sweep_grid import ROOT, by_plan_key, grid, train_runs

from ladd.store import Workspace, load_model
from ladd.sweep import SweepEvent, compute_cell, run_sweep

# tasks keep their training state in the workspace: the test run's instance is on this machine
LOCAL = {"local_files": True}


@pytest.fixture(scope="module")
def ray_run(inputs, serial_run, tmp_path_factory, ray_instance):
    """The grid on the local 2-CPU instance; the first attempt of the first LADD cell kills its
    own worker process (os._exit mid-task, as the OOM killer would). Then the same sweep
    again."""
    ws = Workspace(tmp_path_factory.mktemp("ws-ray"))
    marks = tmp_path_factory.mktemp("marks")
    spec = grid(inputs, name="grid-ray", max_retries=2)

    def dies_once(plan, *args, **kwargs):
        with open(marks / "attempts", "a") as fh:
            fh.write(f"{plan.key} {os.getpid()}\n")
        if plan.config.mode == "ladd" and not (marks / "killed").exists():
            (marks / "killed").write_text(plan.key)
            os._exit(1)  # the worker process dies in the middle of the task
        return compute_cell(plan, *args, **kwargs)

    events: list[SweepEvent] = []
    again: list[SweepEvent] = []
    first = run_sweep(spec, ws, executor="ray", compute=dies_once, on_event=events.append)
    second = run_sweep(spec, ws, executor="ray", on_event=again.append)
    attempts = [line.split() for line in (marks / "attempts").read_text().splitlines()]
    yield {"ws": ws, "first": first, "second": second, "events": events, "again": again,
           "attempts": attempts, "victim": (marks / "killed").read_text()}  # fmt: skip


def test_ray_grid_survives_a_killed_worker(ray_run, ray_instance):
    first, attempts, victim = ray_run["first"], ray_run["attempts"], ray_run["victim"]
    assert first.status == "done" and first.ran == 4 and first.failed == 0
    tries = [pid for key, pid in attempts if key == victim]
    assert len(tries) == 2 and tries[0] != tries[1]  # rerun by Ray in a new worker process
    assert len({pid for _, pid in attempts}) >= 2  # the cells ran in more than one worker
    runs = train_runs(ray_run["ws"])
    assert len(runs) == 4  # every cell recorded, none twice
    assert len({r.config["plan"]["key"] for r in runs}) == 4
    assert max(e.running for e in ray_run["events"]) == 2  # two cells at once on 2 CPUs
    assert ray_instance.is_initialized()  # an executor leaves up the instance it found


def test_ray_grid_equals_the_serial_grid(ray_run, serial_run):
    """Same seeds, one thread per cell: the Ray workers' accuracies, loss curves and weights
    are the serial run's, bit for bit."""
    serial, raying = by_plan_key(serial_run[0]), by_plan_key(ray_run["ws"])
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


def test_a_ray_worker_killed_mid_cell_resumes_on_its_retry(
    serial_run, inputs, tmp_path, ray_instance
):
    """Where the workers see this machine's files (the local instance) the tasks keep their
    training state in the workspace, as the serial executor does: a worker killed
    mid-training (os._exit after a saved pass, as the OOM killer would) is retried by Ray, and
    the retry resumes the cell and ends with the serial grid's weights."""
    ws = Workspace(tmp_path / "ws")
    spec = grid(inputs, name="ray-killed", archs=("convnet_d3",), modes=("ladd",), max_retries=2)
    killed = tmp_path / "killed"

    def dies_after_a_saved_pass(plan, *args, **kwargs):
        folder = Path(kwargs["checkpoint_dir"])  # handed to the task on a local instance
        if not killed.exists():

            def progress(ev) -> None:
                if ev.stage == "train" and ev.step >= 3 and any(folder.glob("train-*")):
                    killed.touch()
                    os._exit(1)

            kwargs.update(progress=progress, checkpoint_seconds=0)
        return compute_cell(plan, *args, **kwargs)

    res = run_sweep(spec, ws, executor="ray", compute=dies_after_a_saved_pass, ray_options=LOCAL)
    assert killed.exists() and res.status == "done" and res.ran == 1
    (run,) = train_runs(ws)
    assert run.metrics["resumed"] is True
    assert not list((ws.root / "checkpoints").glob("train-*"))
    ref = by_plan_key(serial_run[0])[run.config["plan"]["key"]]
    a = load_model(run.artifacts["model_seed0"]).state_dict()
    b = load_model(ref.artifacts["model_seed0"]).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


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
    if not mod.name.endswith(".__main__"):  # (those run the command line)
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
