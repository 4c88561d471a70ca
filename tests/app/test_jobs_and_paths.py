"""app/paths.py and app/jobs.py: the allow-list of server paths, background jobs."""

from __future__ import annotations

import os
import threading
import time

import pytest

pytest.importorskip("streamlit")


def test_paths_outside_allowed_roots_are_refused(tmp_path, monkeypatch):
    from app.paths import PathNotAllowed, check_path

    monkeypatch.setenv("LADD_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("LADD_ALLOWED_DIRS", os.pathsep.join([str(tmp_path / "extra")]))
    (tmp_path / "ws").mkdir()
    (tmp_path / "extra").mkdir()
    (tmp_path / "ws" / "a").mkdir()
    assert check_path("a") == (tmp_path / "ws" / "a").resolve()
    assert check_path(tmp_path / "extra") == (tmp_path / "extra").resolve()
    for bad in ["/etc/passwd", tmp_path / "ws" / ".." / "elsewhere", "../../etc"]:
        with pytest.raises((PathNotAllowed, FileNotFoundError)):
            check_path(bad)
    link = tmp_path / "ws" / "link"
    link.symlink_to("/etc")
    with pytest.raises(PathNotAllowed):
        check_path(link)


def test_job_registry_runs_reports_stops_and_fails_politely():
    from app.jobs import JobRegistry

    reg = JobRegistry(max_running=1)

    def work(job):
        for i in range(3):
            job.progress(
                stage="train", step=i + 1, total=3, loss=1.0 / (i + 1), message=f"step {i}"
            )
        return "ok"

    done = reg.wait(reg.submit("train", "quick", work).id, timeout=10)
    assert done.status == "done" and done.result == "ok" and done.fraction == 1.0
    assert done.snapshot()["losses"] == [1.0, 0.5, 1.0 / 3]

    running = threading.Event()

    def forever(job):
        while True:
            running.set()
            job.progress(step=0, total=1)  # raises TrainingStopped once a stop was asked
            time.sleep(0.01)

    job = reg.submit("train", "long", forever)
    assert running.wait(timeout=10)  # stopped while it runs (not before it started)
    assert job.status == "running"
    reg.stop(job.id)
    assert reg.wait(job.id, timeout=10).status == "stopped"

    def broken(job):
        raise ValueError("bad input\nsecond line")

    failed = reg.wait(reg.submit("train", "broken", broken).id, timeout=10)
    assert failed.status == "failed" and failed.error == "ValueError: bad input"
    assert [j.title for j in reg.jobs("train")] == ["broken", "long", "quick"]


def test_training_job_loads_the_test_split_from_data_root_and_logs_the_set_warnings(
    tmp_path, monkeypatch
):
    """Issue 24: the dashboard's training job loaded the test split without data_root (the
    CLI and sweeps passed it); it now loads as `ladd train` does (ladd.sets.inputs), and the
    set's warnings (here: uneven classes) reach the job's log."""
    import dataclasses

    import ladd.sets.inputs as inputs
    from app import tasks
    from app.jobs import registry
    from ladd.sets import random_real
    from ladd.training import TrainConfig

    ds = random_real("shapes", 2, seed=0)
    uneven = dataclasses.replace(ds, images=ds.images[:19], labels=ds.labels[:19])
    set_dir = uneven.save_mtt(tmp_path / "ws" / "sets" / "uneven")
    seen: list[object] = []
    real = inputs.load_source

    def spy(name, split, **kw):
        seen.append((name, split, kw.get("data_root")))
        return real(name, split, **{**kw, "data_root": None})  # shapes needs no files

    monkeypatch.setattr(inputs, "load_source", spy)
    cfg = TrainConfig(
        mode="baseline", epochs=1, seeds=(0,), trainer="reference", model_options={"width": 8}
    )
    planned = tasks.plan_training_job(
        str(tmp_path / "ws"), str(set_dir), cfg, data_root=str(tmp_path / "data"), device="cpu"
    )
    assert seen == [("shapes", "test", str(tmp_path / "data"))]  # loaded at the click
    job = tasks.submit_training(planned, "data root")
    done = registry().wait(job.id, timeout=300)
    assert done.status == "done", done.error
    assert seen == [("shapes", "test", str(tmp_path / "data"))]
    assert any(m.startswith("warning: ") and "uneven classes" in m for m in done.log)


def test_a_labeler_job_on_imagenet1k_decodes_in_fork_server_workers(tmp_path, monkeypatch):
    """A job runs in a thread of the Streamlit server: a streamed source's DataLoader workers
    start from a fork server (forking a threaded server is unsafe), a loaded source has none."""
    import ladd.pipeline
    from app import tasks
    from app.jobs import registry

    seen: list[dict] = []

    def fake_run_labeler(ws, source, cfg, **kw):
        seen.append({"source": source, **{k: kw.get(k) for k in ("workers", "start_method")}})
        return type("Run", (), {"checkpoints": ()})()

    monkeypatch.setattr(ladd.pipeline, "run_labeler", fake_run_labeler)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    (tmp_path / "ws").mkdir()
    for source in ("imagenet1k", "shapes"):
        job = tasks.submit_labeler(str(tmp_path / "ws"), source, 2, 1, 8, None)
        done = registry().wait(job.id, timeout=60)
        assert done.status == "done", done.error
    assert seen == [
        {"source": "imagenet1k", "workers": 5, "start_method": "forkserver"},
        {"source": "shapes", "workers": None, "start_method": None},
    ]
