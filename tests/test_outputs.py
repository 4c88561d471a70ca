"""Outputs claimed by one writer (ladd.files.claim_output): issue #38, class 2.

Two steps writing one --out at once, a folder replaced with --force, the workspace's own files
as an output, import-labeler over an existing checkpoint. Concurrency is arranged with events
(the first writer is held inside its step while the second starts), never with timing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from ladd.store import Workspace

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    """A workspace with a tiny labeler and a random-real set (shapes, CPU, seconds)."""
    from ladd.distill import RandomConfig
    from ladd.labeler import LabelerConfig
    from ladd.pipeline import run_distill, run_labeler

    ws = Workspace(tmp_path_factory.mktemp("outputs") / "ws")
    cfg = LabelerConfig(epochs=1, save_at=(1,), limit_per_class=5, model_options={"width": 4})
    lab = run_labeler(ws, "shapes", cfg, device="cpu")
    ds = run_distill(ws, "shapes", "random", RandomConfig(ipc=1))
    return ws, Path(lab.checkpoints[0].path), ds


def _held(monkeypatch, module: str, name: str):
    """Patch `module.name` so that its first call waits inside the step until released."""
    import importlib

    mod = importlib.import_module(module)
    real = getattr(mod, name)
    inside, release = threading.Event(), threading.Event()
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            inside.set()
            assert release.wait(120)
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, name, wrapper)
    return inside, release


def _in_thread(fn):
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            box["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def test_two_augments_of_one_out_never_both_succeed(steps, tmp_path, monkeypatch) -> None:
    """Issue #38: two `ladd augment --out F` at once both exited 0 and one output was lost.
    The second is refused at once while the first holds F; the first's set is what F holds."""
    from ladd.pipeline import run_label_augment

    ws, ckpt, ds = steps
    out = tmp_path / "la.safetensors"
    inside, release = _held(monkeypatch, "ladd.dense", "augment")
    first, box = _in_thread(
        lambda: run_label_augment(ws, ds.dataset, ckpt, n=2, out=out, device="cpu")
    )
    assert inside.wait(120)
    try:
        with pytest.raises(FileExistsError, match="being written by another process"):
            run_label_augment(ws, ds.dataset, ckpt, n=3, out=out, device="cpu")
    finally:
        release.set()
        first.join()
    assert "error" not in box, box
    from ladd.sets import load_set

    assert load_set(out).n == 2
    assert not list(tmp_path.glob(".*.lock"))  # the lock goes with its writer


def test_two_labeler_trainings_into_one_folder_never_mix(steps, tmp_path, monkeypatch) -> None:
    """Issue #38: two `train-labeler --out X` left X with both trainings' checkpoints, each
    record pointing at the other's files. The second is refused while the first trains."""
    from ladd.labeler import LabelerConfig, list_checkpoints, read_meta
    from ladd.pipeline import run_labeler

    ws, _, _ = steps
    out = tmp_path / "lab"
    one = LabelerConfig(epochs=1, save_at=(1,), limit_per_class=5, model_options={"width": 4})
    two = LabelerConfig(
        epochs=2, save_at=(2,), limit_per_class=5, model_options={"width": 4}, seed=1
    )
    inside, release = _held(monkeypatch, "ladd.labeler.training", "create_model")
    first, box = _in_thread(lambda: run_labeler(ws, "shapes", one, out_dir=out, device="cpu"))
    assert inside.wait(120)
    try:
        with pytest.raises(FileExistsError, match="being written by another process"):
            run_labeler(ws, "shapes", two, out_dir=out, device="cpu", resume=False)
    finally:
        release.set()
        first.join()
    assert "error" not in box, box
    assert [read_meta(p).seed for p in list_checkpoints(out)] == [0]


def test_a_training_started_over_leaves_no_old_checkpoint(steps, tmp_path) -> None:
    """`train-labeler --no-resume` into a folder of the same training: once done, only the
    new training's checkpoints are there (the old epoch 2 no longer beside the new epoch 1)."""
    from ladd.labeler import LabelerConfig, list_checkpoints, train_labeler
    from ladd.sets import random_real  # noqa: F401  (shapes loads through ladd.data)

    out = tmp_path / "lab"
    old = LabelerConfig(epochs=2, save_at=(1, 2), limit_per_class=3, model_options={"width": 2})
    train_labeler("shapes", old, out, device="cpu")
    assert [p.name for p in list_checkpoints(out)] == [
        "epoch_001.safetensors",
        "epoch_002.safetensors",
    ]
    new = LabelerConfig(epochs=1, save_at=(1,), limit_per_class=3, model_options={"width": 2})
    train_labeler("shapes", new, out, device="cpu", resume=False)
    assert [p.name for p in list_checkpoints(out)] == ["epoch_001.safetensors"]


def test_force_replaces_a_set_folder_without_its_old_files(steps, tmp_path) -> None:
    """`random-real --out D --force` over an older set: the old set's files that the new one
    does not write (a DATM-style labels_hard.pt, MTT's images_zca_*.pt) are gone; a folder
    holding other files is refused instead of emptied."""
    from ladd.distill import RandomConfig
    from ladd.pipeline import run_distill

    ws, _, _ = steps
    out = tmp_path / "set"
    run_distill(ws, "shapes", "random", RandomConfig(ipc=1), out_dir=out)
    torch.save(torch.zeros(1), out / "labels_hard.pt")
    torch.save(torch.zeros(1), out / "images_zca_5000.pt")
    run_distill(ws, "shapes", "random", RandomConfig(ipc=2), out_dir=out, force=True)
    assert sorted(p.name for p in out.iterdir()) == [
        "distill.json",
        "images_best.pt",
        "labels_best.pt",
        "ladd_meta.json",
    ]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    with pytest.raises(FileExistsError, match="not this artifact's .*thesis.tex"):
        run_distill(ws, "shapes", "random", RandomConfig(ipc=1), out_dir=mine, force=True)
    assert (mine / "thesis.tex").read_text() == "keep me"


@pytest.mark.parametrize("name", ["runs.sqlite", "runs.sqlite-wal", "runs.sqlite-shm"])
def test_no_step_writes_over_the_runs_database(steps, name) -> None:
    """Issue #38: `augment --out <ws>/runs.sqlite --force` wrote a set over the database
    (`runs export` already refused). Every writer refuses it, and the workspace's own folders."""
    from ladd.distill import RandomConfig
    from ladd.pipeline import run_distill, run_label_augment

    ws, ckpt, ds = steps
    target = ws.root / name
    with pytest.raises(FileExistsError, match="runs database"):
        run_label_augment(ws, ds.dataset, ckpt, n=2, out=target, device="cpu", force=True)
    assert ws.db.list_runs()  # still the database
    for own in ("runs", "cache", "runs/1", "checkpoints/x"):
        with pytest.raises(FileExistsError, match="workspace's own"):
            run_distill(
                ws, "shapes", "random", RandomConfig(ipc=1), out_dir=ws.root / own, force=True
            )
    with pytest.raises(FileExistsError, match="holds the workspace"):
        run_distill(ws, "shapes", "random", RandomConfig(ipc=1), out_dir=ws.root, force=True)


def test_the_report_and_the_export_refuse_the_workspace_files_the_same_way(steps) -> None:
    from ladd.report import report_command

    ws, _, _ = steps
    with pytest.raises(FileExistsError, match="workspace's own"):
        ws.db.export_csv(ws.root / "runs" / "all.csv")
    with pytest.raises(FileExistsError, match="workspace's own"):
        report_command(1, 2, ws.root / "cache" / "r.html", workspace=ws.root, force=True)


def test_import_labeler_refuses_an_existing_checkpoint_without_force(tmp_path) -> None:
    """Issue #38: `import-labeler --out` replaced an existing checkpoint without --force."""
    from ladd.data import source_info
    from ladd.labeler import import_labeler, read_meta
    from ladd.models import create_model

    model = create_model("tv_resnet18", 10, 32)
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    info = source_info("shapes", 32)
    out = tmp_path / "lab.safetensors"
    out.write_bytes(b"an existing checkpoint")
    with pytest.raises(FileExistsError, match="--force"):
        import_labeler("tv_resnet18", tmp_path / "r18.pth", info, out)
    assert out.read_bytes() == b"an existing checkpoint"
    import_labeler("tv_resnet18", tmp_path / "r18.pth", info, out, force=True)
    assert read_meta(out).arch == "tv_resnet18"
    with pytest.raises(FileExistsError, match="input of this step"):
        import_labeler("tv_resnet18", tmp_path / "r18.pth", info, tmp_path / "r18.pth", force=True)
