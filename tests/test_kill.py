"""kill -9 at random points of labeler training, label augmentation and deployment training.

Each step runs in a child process that is killed with SIGKILL after a random delay, 20 times
in a row on the same workspace; then it runs once more to the end. Checked after every kill:
the runs database opens and holds no run left "running" (a dead writer's row is marked failed),
and every file of the workspace is whole (every safetensors and JSON file reads). At the end:
the step's result equals an uninterrupted run's (resume is exact).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[1]
TRIALS = 20
pytestmark = pytest.mark.slow

SCRIPT = r"""
import sys, torch
torch.set_num_threads(1)
from pathlib import Path
from ladd.store import Workspace
from ladd.data import load_source
step, root = sys.argv[1], Path(sys.argv[2])
ws = Workspace(root)
if step == "labeler":
    from ladd.labeler import LabelerConfig
    from ladd.pipeline import run_labeler
    cfg = LabelerConfig(epochs=8, save_at=(4, 8), batch_size=16, limit_per_class=8,
                        model_options={"width": 4})
    run_labeler(ws, "shapes", cfg, out_dir=root / "lab", device="cpu", state_seconds=0.0)
elif step == "augment":
    from ladd.pipeline import run_label_augment
    from ladd.sets import load_set
    ds = load_set(root.parent / "shared" / "set")
    run_label_augment(ws, ds, root.parent / "shared" / "lab" / "epoch_001.safetensors", n=4,
                      out=root / "la.safetensors", device="cpu", force=True)
else:
    from ladd.pipeline import run_train
    from ladd.sets import load_set
    from ladd.training import TrainConfig
    la = load_set(root.parent / "shared" / "la.safetensors")
    test = load_source("shapes", "test", limit_per_class=3)
    cfg = TrainConfig(mode="ladd", epochs=6, seeds=(0, 1), batch_size=32,
                      model_options={"width": 4})
    run_train(ws, la, test, cfg, device="cpu", checkpoint_seconds=0.0)
"""


def _run(step: str, root: Path, kill_after: float | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, step, str(root)], env=env)
    if kill_after is None:
        return proc.wait(timeout=600)
    try:
        return proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=60)


def _check_whole(root: Path) -> None:
    from ladd.store import Workspace

    runs = Workspace(root).db.list_runs()  # opens the database, marks dead writers' rows
    assert all(r.status in ("done", "failed") for r in runs), [(r.id, r.status) for r in runs]
    for p in root.rglob("*"):
        if not p.is_file() or p.name.startswith("."):
            continue  # hidden: temporary files of a killed writer, never read as artifacts
        if p.suffix == ".safetensors":
            with safe_open(str(p), framework="pt") as f:
                for k in f.keys():  # noqa: SIM118
                    f.get_tensor(k)
        elif p.suffix == ".json":
            json.loads(p.read_text())


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A labeler, a random-real set and its label-augmented file for the later steps."""
    from ladd.distill import RandomConfig
    from ladd.labeler import LabelerConfig
    from ladd.pipeline import run_distill, run_label_augment, run_labeler
    from ladd.store import Workspace

    base = tmp_path_factory.mktemp("kill")
    root = base / "shared"
    ws = Workspace(root)
    cfg = LabelerConfig(epochs=1, save_at=(1,), limit_per_class=8, model_options={"width": 4})
    lab = run_labeler(ws, "shapes", cfg, out_dir=root / "lab", device="cpu")
    ds = run_distill(ws, "shapes", "random", RandomConfig(ipc=2), out_dir=root / "set")
    run_label_augment(
        ws, ds.dataset, lab.checkpoints[0].path, n=4, out=root / "la.safetensors", device="cpu"
    )
    return base


def _duration(step: str, root: Path) -> float:
    t0 = time.monotonic()
    assert _run(step, root, None) == 0
    return time.monotonic() - t0


def _kill_and_resume(
    step: str, shared: Path, name: str, states: str | None = None
) -> tuple[Path, Path]:
    """`states`: a glob (under the workspace) of the step's resume files; each kill that leaves
    one behind must be followed by a run that resumes from it."""
    reference = shared / f"{name}-reference"
    full = _duration(step, reference)
    root = shared / name
    rng = random.Random(f"{step}-kill")
    left_states = 0
    for _ in range(TRIALS):
        _run(step, root, kill_after=rng.uniform(0.2, full))
        _check_whole(root)
        left_states += bool(states and list(root.glob(states)))
    if states:
        assert left_states > 0, "no kill left a resume state: the step never saved one"
    resumes = bool(states and list(root.glob(states)))
    assert _run(step, root, None) == 0
    _check_whole(root)
    if resumes:
        from ladd.store import Workspace

        newest = Workspace(root).db.list_runs(step)[0]
        assert newest.status == "done" and newest.metrics.get("resumed") is True
    return reference, root


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def test_labeler_training_survives_kill_9(shared):
    ref, root = _kill_and_resume("labeler", shared, "labeler")
    for name in ("epoch_004.safetensors", "epoch_008.safetensors"):
        a, b = _tensors(ref / "lab" / name), _tensors(root / "lab" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_label_augmentation_survives_kill_9(shared):
    ref, root = _kill_and_resume("augment", shared, "augment")
    a, b = _tensors(ref / "la.safetensors"), _tensors(root / "la.safetensors")
    # Every tensor the file holds (the images and the dense labels in whatever layout the
    # default codec writes: "dense" for float32, the top-k values and indices for topk).
    assert "images" in a and len(a) > 1 and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_deployment_training_survives_kill_9(shared):
    from ladd.store import Workspace

    ref, root = _kill_and_resume("train", shared, "train", states="checkpoints/*.safetensors")

    def weights(r: Path) -> list[list[dict[str, torch.Tensor]]]:
        # A trial whose delay outlasts the run finishes it; the next trial trains a new run
        # (its own id), so a killed workspace may hold several finished runs: each must
        # equal the uninterrupted one.
        done = [x for x in Workspace(r).db.list_runs("train") if x.status == "done"]
        assert done
        return [[_tensors(Path(d.artifacts[f"model_seed{s}"])) for s in (0, 1)] for d in done]

    (expected,) = weights(ref)
    for got in weights(root):
        for a, b in zip(expected, got, strict=True):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list((root / "checkpoints").glob("*.safetensors"))  # removed once done
