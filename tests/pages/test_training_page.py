"""pages/4_training.py: background deployment training and the training curves."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from page_helpers import assert_clean, charts, open_page, successes, wait_for


def curves_chart(at) -> dict:
    """The training-curves figure (loss and accuracy panels, epochs on x)."""
    found = [
        c
        for c in charts(at)
        if [a.get("text") for a in c["layout"].get("annotations", [])][:1] == ["training loss"]
    ]
    assert found, "no training curves on the page"
    return found[0]


def test_training_page_runs_a_job_and_records_the_run(demo):
    at = open_page("4_training.py")
    before = len(at.dataframe[0].value)
    at.selectbox(key="tr_set").set_value(str(Path(demo.set_path).relative_to(demo.workspace))).run()
    at.number_input(key="tr_epochs").set_value(1).run()
    at.number_input(key="tr_width").set_value(8).run()
    at.selectbox(key="tr_mode").set_value("crops_dense").run()
    assert at.selectbox(key="tr_trainer").value == "fast"  # the default
    at.selectbox(key="tr_trainer").set_value("reference").run()
    assert at.selectbox(key="tr_protocol").value == "auto"  # the set's family decides
    at.selectbox(key="tr_protocol").set_value("glad").run()
    assert at.checkbox(key="tr_live").value is True
    at.button(key="tr_go").click().run()
    assert_clean(at)
    wait_for(at, lambda a: "Training: crops_dense" in successes(a))
    assert_clean(at)
    runs = at.dataframe[0].value
    assert len(runs) == before + 1 and runs.iloc[0]["mode"] == "crops_dense"
    from ladd.store import Workspace

    newest = Workspace(demo.workspace).db.list_runs(kind="train")[0]
    assert newest.config["train"]["trainer"] == "reference"
    assert newest.config["train"]["protocol"] == "glad"  # as picked, recorded settled
    assert runs.iloc[0]["protocol"] == "glad"
    import json

    runs_dir = Workspace(demo.workspace).db.runs_dir
    result = json.loads((runs_dir / str(newest.id) / "result.json").read_text())
    assert [row["epoch"] for row in result["monitor"]] == [1]  # the live view's point, kept
    # The finished job's run joins the curves at once, next to the demo's two runs.
    names = {t.get("name", "") for t in curves_chart(at)["data"]}
    assert any(n.startswith(f"#{newest.id} ") for n in names)


def test_finished_baseline_and_ladd_runs_are_overlaid_per_epoch(demo):
    from ladd.demo import DEMO_SIZES

    at = open_page("4_training.py")
    at.multiselect(key="tr_overlay").set_value([demo.baseline_run, demo.ladd_run]).run()
    assert_clean(at)
    chart = curves_chart(at)
    epochs = DEMO_SIZES["small"].train_epochs
    lines = [t for t in chart["data"] if t.get("fill") != "toself"]
    loss = [t for t in lines if t.get("xaxis", "x") == "x"]
    names = " ".join(t["name"] for t in loss)
    assert f"#{demo.baseline_run} " in names and f"#{demo.ladd_run} " in names
    ours = (f"#{demo.baseline_run} ", f"#{demo.ladd_run} ")
    loss = [t for t in loss if t["name"].startswith(ours)]
    assert len(loss) == 2
    import json

    from ladd.store import Workspace

    runs_dir = Workspace(demo.workspace).db.runs_dir
    passes = {}
    for run_id in (demo.baseline_run, demo.ladd_run):
        result = json.loads((runs_dir / str(run_id) / "result.json").read_text())
        passes[f"#{run_id} "] = len(result["loss_curves"][0])
        assert passes[f"#{run_id} "] == result["config"]["epochs"] + 1  # MTT: epochs + 1 passes
    assert epochs + 1 in passes.values()
    for t in loss:
        n = passes[t["name"].split(" ")[0] + " "]
        assert list(t["x"]) == list(range(1, n + 1))  # passes, not seeds in turn
    accuracy = [t for t in lines if t.get("xaxis") == "x2" and t["name"].startswith(ours)]
    assert len(accuracy) == 2
    for t in accuracy:  # the demo's monitor points, then the final test after the last pass
        n = passes[t["name"].split(" ")[0] + " "]
        assert list(t["x"]) == sorted(t["x"]) and t["x"][-1] == n and len(t["x"]) > 1


def _monitor(epoch: int, accuracy: list[float], loss: list[float]) -> SimpleNamespace:
    """The event the trainers' monitor hook sends (ladd.progress.ProgressEvent + metrics)."""
    return SimpleNamespace(
        stage="monitor",
        step=epoch,
        total=10,
        loss=None,
        message="",
        note=False,
        metrics={"accuracy": accuracy, "loss": loss},
    )


@pytest.fixture
def monitored_job(demo):
    """A fake running training job that has reported two monitor events (3 seeds)."""
    from app.jobs import registry

    release = threading.Event()

    def work(job):
        job.progress(stage="train", step=1, total=10, loss=2.0)  # an ordinary bar update
        job.progress(_monitor(2, [0.20, 0.30, 0.40], [1.5, 1.6, 1.7]))
        job.progress(_monitor(4, [0.40, 0.50, 0.60], [1.0, 1.1, 1.2]))
        release.wait(120)

    job = registry().submit("train", "Training: fake / convnet_d3", work)
    deadline = time.time() + 120  # another job may hold the one slot for a while
    while not job.snapshot()["curves"].get("accuracy", {}).get(2, {}).get(4):
        assert job.status != "failed" and time.time() < deadline
        time.sleep(0.05)
    yield job
    release.set()
    registry().wait(job.id, timeout=30)


def test_a_running_job_draws_its_monitor_points_against_epochs(monitored_job):
    snap = monitored_job.snapshot()
    assert snap["curves"]["accuracy"] == {
        0: {2: 0.2, 4: 0.4},
        1: {2: 0.3, 4: 0.5},
        2: {2: 0.4, 4: 0.6},
    }
    assert snap["step"] == 1 and snap["losses"] == [2.0]  # monitor reports do not move the bar
    at = open_page("4_training.py")
    chart = curves_chart(at)
    live = [t for t in chart["data"] if "fake / convnet_d3 (running)" in (t.get("name") or "")]
    assert len(live) == 2  # loss and accuracy lines (their bands carry no name)
    acc = next(t for t in live if t.get("xaxis") == "x2")
    assert list(acc["x"]) == [2, 4]
    assert acc["y"] == pytest.approx([0.3, 0.5])  # the mean over the three seeds
    band = [t for t in chart["data"] if t.get("fill") == "toself" and t.get("xaxis") == "x2"]
    assert any(pytest.approx([0.4, 0.6, 0.4, 0.2]) == t["y"] for t in band)  # max, then min


def test_a_scalar_metric_belongs_to_the_seed_it_names():
    from app.jobs import Job

    job = Job(id="t", kind="train", title="t")
    job.progress(_monitor(3, [0.5], [1.0]))
    event = _monitor(3, [], [])
    event.metrics = {"accuracy": 0.7, "seed": 2}
    job.progress(event)
    assert job.snapshot()["curves"]["accuracy"] == {0: {3: 0.5}, 2: {3: 0.7}}
