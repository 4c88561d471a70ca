"""app/paths.py and app/jobs.py: the allow-list of server paths, background jobs."""

from __future__ import annotations

import os
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

    def forever(job):
        while True:
            job.progress(step=0, total=1)
            time.sleep(0.01)

    job = reg.submit("train", "long", forever)
    time.sleep(0.1)
    reg.stop(job.id)
    assert reg.wait(job.id, timeout=10).status == "stopped"

    def broken(job):
        raise ValueError("bad input\nsecond line")

    failed = reg.wait(reg.submit("train", "broken", broken).id, timeout=10)
    assert failed.status == "failed" and failed.error == "ValueError: bad input"
    assert [j.title for j in reg.jobs("train")] == ["broken", "long", "quick"]
