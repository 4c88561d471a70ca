"""Kills at random points of labeler training, label augmentation and deployment training.

Each step is interrupted 20 times in a row on the same workspace, then run once more to the
end. The first interruption is a real SIGKILL: the step runs in a child process that stops at a
drawn module forward and is killed there (a dead writer: its run row says "running", its
temporary files lie about). The other 19 are injected in this process: a `_Kill` (a
BaseException, which nothing catches) raised at a drawn point of the step, in turn among its
module forwards (a step cut while it computes) and among its atomic file commits (`os.replace`
of every file ladd writes, just before and just after it: cut while it writes a file, and
right after). A forward is drawn within the next tenth of the step's forwards from where it
restarts (the state it saved last), so that the cuts walk through the whole step. Checked after every
interruption: the runs database opens and holds no run left "running" (a dead writer's row is
marked failed), and every file of the workspace is whole (every safetensors and JSON file
reads). At the end: the step's result equals an uninterrupted run's (resume is exact), and a
step that keeps a resume state was resumed from one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from kill_steps import run_step
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).parent / "kill_steps.py"
TRIALS = 20
pytestmark = pytest.mark.slow


class _Kill(BaseException):
    """The process going away at a drawn point (raised in this process; nothing catches it)."""


@contextmanager
def _points(on_point: Callable[[str], None]) -> Iterator[None]:
    """Call `on_point(where)` at every module forward and around every os.replace (the atomic
    commit of every file ladd writes) while the block runs."""
    real_replace = os.replace

    def replace(src, dst, *a, **k):
        on_point(f"before committing {Path(dst).name}")
        real_replace(src, dst, *a, **k)
        on_point(f"after committing {Path(dst).name}")

    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: on_point(f"forward of {type(module).__name__}")
    )
    os.replace = replace
    try:
        yield
    finally:
        os.replace = real_replace
        handle.remove()


def _kind(where: str) -> str:
    return "forward" if where.startswith("forward") else "commit"


def _count_points(step: str, root: Path, shared: Path) -> dict[str, int]:
    """Run the step uninterrupted in `root` (the reference); its points of each kind."""
    seen: list[str] = []
    with _points(seen.append):
        run_step(step, root, shared)
    return {k: sum(_kind(w) == k for w in seen) for k in ("forward", "commit")}


def _interrupt_in_process(step: str, root: Path, shared: Path, kind: str, at: int) -> str | None:
    """Run the step until its `at`-th point of `kind` and raise _Kill there; where, or None
    when the step finished first (a workspace with less left to do has fewer points)."""
    n = [0]

    def point(where: str) -> None:
        if _kind(where) != kind:
            return
        n[0] += 1
        if n[0] == at:
            raise _Kill(where)

    try:
        with _points(point):
            run_step(step, root, shared)
    except _Kill as kill:
        _process_gone(root)
        return str(kill)
    return None


def _process_gone(root: Path) -> None:
    """What the process going away leaves in the database: its "running" rows name a process
    that no longer exists (here the test's own pid, which lives on, is swapped for a dead one),
    so the next open records each from the outcome it left (outcome.json) or as failed."""
    from ladd.store import Workspace

    db = Workspace(root).db
    with db._connect() as con:
        con.execute(
            "UPDATE runs SET pid = ? WHERE status = 'running' AND pid = ?",
            (2**22 + 4321, os.getpid()),
        )


def _sigkill_child(step: str, root: Path, shared: Path, at: int) -> None:
    """Run the step in a child process that waits at its `at`-th module forward; SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), step, str(root), str(shared), str(at)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line == f"at {at}", f"the child did not reach forward {at}: {line!r}"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        lab = run_labeler(ws, "shapes", cfg, out_dir=root / "lab", device="cpu")
        ds = run_distill(ws, "shapes", "random", RandomConfig(ipc=2), out_dir=root / "set")
        run_label_augment(
            ws, ds.dataset, lab.checkpoints[0].path, n=4, out=root / "la.safetensors", device="cpu"
        )
    finally:
        torch.set_num_threads(threads)
    return base


def _kill_and_resume(step: str, shared: Path, states: str | None = None) -> tuple[Path, Path]:
    """The reference run, then TRIALS interruptions (one SIGKILL, the rest in-process), then
    the step to its end. `states`: a glob (under the workspace) of the step's resume files;
    each interruption that leaves one behind must be followed by a run that resumes from it."""
    threads = torch.get_num_threads()
    try:
        reference = shared / f"{step}-reference"
        points = _count_points(step, reference, shared / "shared")
        root = shared / step
        rng = random.Random(f"{step}-kill")
        _sigkill_child(step, root, shared / "shared", rng.randint(1, points["forward"]))
        _check_whole(root)
        left_states = int(bool(states and list(root.glob(states))))
        cut = []
        for trial in range(TRIALS - 1):
            # A forward within the next tenth of the step's forwards: each restart resumes from
            # the state the step saved last, so the cuts walk through the whole step. A commit
            # among all of them (a step commits a few files, each one is a point to cut at).
            kind = ("forward", "commit")[trial % 2]
            span = points[kind] * 2 // TRIALS if kind == "forward" else points[kind]
            at = rng.randint(1, max(1, span))
            cut.append(_interrupt_in_process(step, root, shared / "shared", kind, at))
            _check_whole(root)
            left_states += bool(states and list(root.glob(states)))
        assert sum(w is not None for w in cut) >= TRIALS // 2  # most trials were cut short
        assert any(w and w.startswith("forward") for w in cut)
        assert any(w and w.startswith("before committing") for w in cut)
        assert any(w and w.startswith("after committing") for w in cut)
        if states:
            assert left_states > 0, "no interruption left a resume state: the step never saved one"
        resumes = bool(states and list(root.glob(states)))
        run_step(step, root, shared / "shared")
        _check_whole(root)
        if resumes:
            from ladd.store import Workspace

            newest = Workspace(root).db.list_runs(step)[0]
            assert newest.status == "done" and newest.metrics.get("resumed") is True
        return reference, root
    finally:
        torch.set_num_threads(threads)


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def test_labeler_training_survives_kills(shared):
    ref, root = _kill_and_resume("labeler", shared)
    for name in ("epoch_004.safetensors", "epoch_008.safetensors"):
        a, b = _tensors(ref / "lab" / name), _tensors(root / "lab" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_label_augmentation_survives_kills(shared):
    ref, root = _kill_and_resume("augment", shared)
    a, b = _tensors(ref / "la.safetensors"), _tensors(root / "la.safetensors")
    # Every tensor the file holds (the images and the dense labels in whatever layout the
    # default codec writes: "dense" for float32, the top-k values and indices for topk).
    assert "images" in a and len(a) > 1 and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_deployment_training_survives_kills(shared):
    from ladd.store import Workspace

    ref, root = _kill_and_resume("train", shared, states="checkpoints/*.safetensors")

    def weights(r: Path) -> list[list[dict[str, torch.Tensor]]]:
        # An interruption drawn after the run's last point lets it finish; the next trial
        # trains a new run (its own id), so a workspace may hold several finished runs: each
        # must equal the uninterrupted one.
        done = [x for x in Workspace(r).db.list_runs("train") if x.status == "done"]
        assert done
        return [[_tensors(Path(d.artifacts[f"model_seed{s}"])) for s in (0, 1)] for d in done]

    (expected,) = weights(ref)
    for got in weights(root):
        for a, b in zip(expected, got, strict=True):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list((root / "checkpoints").glob("*.safetensors"))  # removed once done
