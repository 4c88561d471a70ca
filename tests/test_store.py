"""The workspace and runs database: atomic files, run lifecycle, killed runs marked failed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from ladd.files import atomic_write, write_json
from ladd.models import create_model
from ladd.store import RunsDB, Workspace, load_model, save_model


def test_workspace_creates_folders_lazily(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    assert not (tmp_path / "ws").exists()  # a cheap constructor
    assert ws.labelers_dir.is_dir() and ws.sets_dir.is_dir() and ws.runs_dir.is_dir()
    assert ws.db.path == tmp_path / "ws" / "runs.sqlite"


def test_run_context_records_done_and_metrics(tmp_path: Path) -> None:
    db = Workspace(tmp_path).db
    with db.run("train", {"epochs": 3}) as run:
        run.log_metrics(accuracy_mean=0.5)
        path = run.save_model(create_model("convnet_d1", 10, 32, width=4), "model_seed0")
    rec = db.get_run(run.id)
    assert rec.status == "done" and rec.kind == "train"
    assert rec.config == {"epochs": 3}
    assert rec.metrics["accuracy_mean"] == 0.5
    assert rec.artifacts["model_seed0"] == str(path)
    assert (run.dir / "config.json").is_file() and (run.dir / "metrics.json").is_file()
    assert rec.finished is not None and rec.pid == os.getpid()


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_run_context_marks_failed_on_exception(tmp_path: Path, exc: BaseException) -> None:
    db = RunsDB(tmp_path / "runs.sqlite")
    with pytest.raises(type(exc)), db.run("train", {}) as run:
        run.log_metrics(partial=1)
        raise exc
    rec = db.get_run(run.id)
    assert rec.status == "failed"
    assert type(exc).__name__ in (rec.error or "")
    assert rec.metrics["partial"] == 1  # nothing already written is lost


def test_a_run_whose_config_cannot_be_written_is_failed_not_left_running(tmp_path, monkeypatch):
    """The run's row exists before its folder's config.json is written: a failure there (disk
    full) marks it failed, never "running" while its process lives on (a dashboard server)."""
    import ladd.store as store

    db = RunsDB(tmp_path / "runs.sqlite")

    def disk_full(self, name, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.RunHandle, "write_json", disk_full)
    with pytest.raises(OSError, match="No space left"), db.run("train", {}):
        pass  # never reached
    (rec,) = db.list_runs()
    assert rec.status == "failed" and "No space left" in rec.error


_KILLED_SCRIPT = """
import sys, time
from ladd.store import RunsDB
db = RunsDB(sys.argv[1])
with db.run("train", {"what": "killed"}) as run:
    run.log_metrics(epoch=1)
    print(run.id, flush=True)
    time.sleep(120)
"""


def test_killed_run_is_marked_failed(tmp_path: Path) -> None:
    db_path = tmp_path / "runs.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SCRIPT, str(db_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        run_id = int(proc.stdout.readline())
        db = RunsDB(db_path)
        assert db.get_run(run_id).status == "running"
        assert [r.status for r in db.list_runs()] == ["running"]  # alive: left alone
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    runs = db.list_runs()
    assert runs[0].id == run_id and runs[0].status == "failed"
    assert "killed" in runs[0].error
    assert runs[0].metrics["epoch"] == 1
    assert (tmp_path / "runs" / str(run_id) / "metrics.json").is_file()


def test_concurrent_writers_from_threads(tmp_path: Path) -> None:
    db = RunsDB(tmp_path / "runs.sqlite")
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            rid = db.start_run("t", {"i": i})
            db.update_run(rid, metrics={"i": i})
            db.finish_run(rid, {"done": True})
        except BaseException as e:  # collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    runs = db.list_runs()
    assert len(runs) == 8 and all(r.status == "done" and r.metrics["done"] for r in runs)


def test_export_csv_and_filters(tmp_path: Path) -> None:
    db = RunsDB(tmp_path / "runs.sqlite")
    a = db.start_run("train", {"x": 1})
    db.finish_run(a, {"accuracy_mean": 0.7})
    b = db.start_run("augment", {})
    db.fail_run(b, "bad")
    assert [r.id for r in db.list_runs(kind="train")] == [a]
    text = db.export_csv(tmp_path / "runs.csv").read_text()
    assert text.splitlines()[0].startswith("id,kind,status")
    assert "accuracy_mean" in text.splitlines()[0] and "0.7" in text
    with pytest.raises(KeyError):
        db.get_run(999)


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    write_json(target, {"a": 1})

    def bad(tmp: str) -> None:
        Path(tmp).write_text("partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, bad)
    assert target.read_text().strip().startswith("{")  # old content intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_model_file_round_trip(tmp_path: Path) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model("convnet_d2", 10, 32, width=4).eval()
    path = save_model(tmp_path / "m.safetensors", model)
    again = load_model(path)
    x = torch.randn(2, 3, 32, 32)
    assert again.spec == model.spec
    torch.testing.assert_close(again(x), model(x))


def test_a_deleted_database_never_reuses_an_old_runs_folder(tmp_path):
    ws = Workspace(tmp_path)
    with ws.db.run("train", {}) as run:
        run.write_json("result.json", {"old": True})
    old = run.id
    ws.db.path.unlink()
    for extra in ("-wal", "-shm"):
        ws.db.path.with_name(ws.db.path.name + extra).unlink(missing_ok=True)
    fresh = Workspace(tmp_path)
    with fresh.db.run("train", {}) as again:
        pass
    assert again.id > old
    assert json.loads((tmp_path / "runs" / str(old) / "result.json").read_text()) == {"old": True}


def test_export_refuses_the_database_and_existing_files(tmp_path):
    ws = Workspace(tmp_path)
    with ws.db.run("train", {}):
        pass
    db_bytes = ws.db.path.read_bytes()
    with pytest.raises(FileExistsError, match="runs database"):
        ws.db.export_csv(ws.db.path)
    assert ws.db.path.read_bytes()[:16] == db_bytes[:16]  # still SQLite
    target = tmp_path / "runs.csv"
    target.write_text("keep me")
    with pytest.raises(FileExistsError, match="--force"):
        ws.db.export_csv(target)
    assert target.read_text() == "keep me"
    ws.db.export_csv(target, force=True)
    assert target.read_text().startswith("id,kind")
