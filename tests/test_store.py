"""The workspace and runs database: atomic files, run lifecycle, killed runs marked failed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
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


# ---------------------------------------------------------------------------------------------
# Issue #38: a locked database never loses a result; damaged files break nothing else


def _wait_for(predicate, what: str) -> None:
    """Poll until `predicate()` (a guard against hanging, not a timing assertion)."""
    for _ in range(12_000):
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_a_result_is_recorded_when_a_lock_held_past_the_timeout_frees(tmp_path: Path) -> None:
    """Issue #38: a database lock held longer than the timeout while a training finished lost
    its result. Now the write waits through several timeouts and lands when the lock frees."""
    import sqlite3

    db = RunsDB(tmp_path / "runs.sqlite", timeout=0.05)
    rid = db.start_run("train", {"epochs": 2})
    db.run_dir(rid)
    blocker = sqlite3.connect(db.path, timeout=0.05)
    blocker.execute("BEGIN EXCLUSIVE")
    done = threading.Event()

    def finish() -> None:
        db.finish_run(rid, {"accuracy_mean": 0.75}, {"model_seed0": "m.safetensors"})
        done.set()

    thread = threading.Thread(target=finish)
    thread.start()
    _wait_for(lambda: db.lock_waits >= 3, "three writes finding the lock")
    assert not done.is_set()
    assert json.loads((db.runs_dir / str(rid) / "outcome.json").read_text())["status"] == "done"
    blocker.rollback()  # the lock frees
    blocker.close()
    thread.join()
    rec = db.get_run(rid)
    assert rec.status == "done" and rec.metrics["accuracy_mean"] == 0.75
    assert rec.artifacts["model_seed0"] == "m.safetensors"
    assert not (db.runs_dir / str(rid) / "outcome.json").exists()


def test_a_process_killed_while_waiting_leaves_its_outcome_to_be_recorded(tmp_path) -> None:
    """A run whose process died after writing its outcome (while it waited for the lock) is
    recorded with that outcome by the next reader, not as killed."""
    db = RunsDB(tmp_path / "runs.sqlite")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    rid = db.start_run("train", {})
    with db._connect() as con:  # the row as that process left it: running, its pid
        con.execute("UPDATE runs SET pid = ?, pid_start = NULL WHERE id = ?",
                    (int(dead.stdout), rid))  # fmt: skip
    write_json(db.run_dir(rid) / "outcome.json",
               {"status": "done", "error": None, "metrics": {"accuracy_mean": 0.5},
                "artifacts": {}, "finished": 1.0})  # fmt: skip
    (rec,) = db.list_runs()
    assert rec.status == "done" and rec.metrics["accuracy_mean"] == 0.5


def _damage(db: RunsDB, run_id: int, field: str, text: str) -> None:
    import sqlite3

    con = sqlite3.connect(db.path)
    with con:
        con.execute(f"UPDATE runs SET {field} = ? WHERE id = ?", (text, run_id))
    con.close()


def _ladd(*args: str, cmd_prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "250"}
    return subprocess.run(
        [*cmd_prefix, sys.executable, "-m", "ladd", *args],
        capture_output=True, text=True, cwd=root, env=env, timeout=300,
    )  # fmt: skip


def test_a_run_with_invalid_json_is_listed_as_damaged_and_the_rest_works(tmp_path) -> None:
    """Issue #38: a runs row with invalid JSON broke `ladd runs list` and `report` with a
    message naming neither the run nor the database. It is listed as damaged, naming both;
    the other runs list as before."""
    from ladd.summaries import list_summaries

    ws = Workspace(tmp_path / "ws")
    for k in range(3):
        with ws.db.run("train", {"label": f"r{k}"}) as run:
            run.log_metrics(accuracy_mean=0.1 * k)
    _damage(ws.db, 2, "config", "{not json")
    _damage(ws.db, 3, "metrics", "[1, 2")
    runs = {r.id: r for r in ws.db.list_runs()}
    assert runs[1].status == "done" and runs[1].config == {"label": "r0"}
    for rid, field in ((2, "config"), (3, "metrics")):
        assert runs[rid].status == "damaged"
        assert str(ws.db.path) in runs[rid].error and f"run {rid}" in runs[rid].error
        assert f"its {field} is not valid JSON" in runs[rid].error
    assert [s.status for s in list_summaries(ws)] == ["damaged", "damaged", "done"]
    res = _ladd("runs", "list", "--workspace", str(ws.root))
    assert res.returncode == 0, res.stderr
    assert "damaged" in res.stdout and "r0" in res.stdout and "3 run(s)" in res.stdout
    from ladd.report import report_command

    with pytest.raises(ValueError, match=r"runs.sqlite: run 2 is damaged: its config"):
        report_command(2, 1, tmp_path / "r.html", workspace=ws.root, cams=False)


def test_a_runs_file_that_is_not_a_database_is_one_error_naming_it(tmp_path) -> None:
    """Issue #38: a runs.sqlite that is not a database: one error naming the file, which the
    pages show while the rest of the page works (tests/pages)."""
    from ladd.store import RunsDatabaseError

    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    ws.db.path.write_bytes(b"this is a label-augmented set, not a database" * 100)
    with pytest.raises(RunsDatabaseError, match=r"runs.sqlite: not a readable SQLite runs"):
        ws.db.list_runs()
    res = _ladd("runs", "list", "--workspace", str(ws.root))
    assert res.returncode == 1 and str(ws.db.path) in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def _without_root_rights() -> tuple[str, ...]:
    """A command prefix under which file permissions bind (root's DAC capabilities dropped)."""
    if os.geteuid() != 0:
        return ()
    import shutil

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only folder is writable")
    return (setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--")


def test_a_read_only_workspace_can_still_be_read(tmp_path) -> None:
    """Issue #38: `runs list` and `report` on a workspace that cannot be written (a shared
    read-only copy) failed writing. They read it as it is now; a run whose process is gone
    shows as failed without being written."""
    from ladd.data import load_source
    from ladd.pipeline import run_train
    from ladd.plan import plan_training
    from ladd.sets import random_real
    from ladd.training import TrainConfig

    ws = Workspace(tmp_path / "ws")
    ds = random_real("shapes", 1, seed=0, limit_per_class=2, cache_dir=ws.cache_dir)
    test = load_source("shapes", "test", limit_per_class=2, cache_dir=ws.cache_dir)
    for mode in ("baseline", "crops_hard"):
        cfg = TrainConfig(
            mode=mode, epochs=1, seeds=(0,), n=2, model_options={"width": 4}, trainer="reference"
        )
        plan = plan_training(ds, cfg, "cpu")
        run_train(ws, plan, ds, test, source="shapes", label=f"kept {mode}")
    rid = ws.db.start_run("train", {"label": "killed"})  # "running", a pid that is gone
    with ws.db._connect() as con:
        con.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (rid,))
    files = [p for p in ws.root.rglob("*")]
    before = sorted(str(p) for p in files)
    report = tmp_path / "out" / "report.html"
    report.parent.mkdir()
    try:
        for p in [*files, ws.root]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        prefix = _without_root_rights()
        res = _ladd("runs", "list", "--workspace", str(ws.root), cmd_prefix=prefix)
        assert res.returncode == 0, res.stderr
        assert "kept baseline" in res.stdout and "failed" in res.stdout, res.stdout
        assert "3 run(s)" in res.stdout
        res = _ladd("runs", "show", "1", "--workspace", str(ws.root), cmd_prefix=prefix)
        assert res.returncode == 0 and '"kind": "train"' in res.stdout, res.stderr
        args = ("report", "1", "2", "--out", str(report), "--no-cams", "--workspace", str(ws.root))
        res = _ladd(*args, cmd_prefix=prefix)
        assert res.returncode == 0, res.stderr
        assert "kept crops_hard" in report.read_text()
        assert sorted(str(p) for p in ws.root.rglob("*")) == before  # nothing written
    finally:
        for p in [ws.root, *files]:
            p.chmod(0o755 if p.is_dir() else 0o644)
