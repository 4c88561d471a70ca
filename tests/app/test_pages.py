"""Every dashboard page under streamlit.testing.v1.AppTest, on the small offline demo.

The demo is built once per session into a temporary workspace (LADD_WORKSPACE points the app
at it). Each test opens the app, switches to a page, checks it renders without an exception or
an error message, and that its key widgets change what is shown.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the app package lives at the repository root
    sys.path.insert(0, str(ROOT))
MAIN = str(ROOT / "app" / "main.py")
TIMEOUT = 120


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The small demo in a fresh workspace; the app reads it through LADD_WORKSPACE."""
    from ladd.demo import build_demo

    root = tmp_path_factory.mktemp("workspace")
    mp = pytest.MonkeyPatch()
    mp.setenv("LADD_WORKSPACE", str(root))
    mp.delenv("LADD_CACHE_DIR", raising=False)
    mp.setenv("LADD_ALLOWED_DIRS", "")
    t0 = time.perf_counter()
    arts = build_demo(root, source="shapes", size="small", device="cpu")
    print(f"\nsmall demo built in {time.perf_counter() - t0:.1f} s")
    yield arts
    mp.undo()


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    if page is not None:
        at.switch_page(f"../pages/{page}").run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def wait_for(at: AppTest, predicate, timeout: float = 300) -> AppTest:
    """Rerun the script until `predicate(at)` holds (a background job finishing)."""
    deadline = time.time() + timeout
    while not predicate(at):
        assert time.time() < deadline, "timed out waiting for a background job"
        assert not at.error, [e.value for e in at.error]
        time.sleep(0.5)
        at.run()
    return at


def successes(at: AppTest) -> str:
    return " ".join(s.value for s in at.success)


# ---------------------------------------------------------------------------------------------


def test_home_shows_device_workspace_and_built_demo(demo):
    at = open_page()
    assert at.title[0].value == "LADD Studio"
    assert metric(at, "Device").startswith(("CPU", "GPU"))
    assert str(demo.workspace) in " ".join(c.value for c in at.caption)
    table = at.dataframe[0].value
    assert list(table["size"]) == ["small"]


def test_home_demo_button_runs_in_background_and_reuses_artifacts(demo):
    at = open_page()
    at.segmented_control(key="demo_size").set_value("small").run()
    at.button(key="demo_go").click().run()
    assert_clean(at)
    wait_for(at, lambda a: "done" in successes(a))
    assert_clean(at)


def test_distilled_page_shows_grid_stats_and_format(demo):
    at = open_page("1_distilled.py")
    assert "Format detected" in successes(at)
    before = charts(at)[0]
    at.slider(key="ds_per_class").set_value(1).run()
    assert_clean(at)
    assert charts(at)[0] != before  # fewer images per class drawn
    stats = at.dataframe[0].value
    assert "all" in list(stats["class"])


def test_distilled_page_refuses_paths_outside_the_workspace(demo):
    at = open_page("1_distilled.py")
    at.segmented_control(key="ds_from").set_value("path").run()
    at.text_input(key="ds_path").set_value("/etc").run()
    assert at.error and "outside the folders" in at.error[0].value
    assert not at.exception
    at.text_input(key="ds_path").set_value(str(demo.distilled_dir)).run()
    assert_clean(at)
    assert "Format detected" in successes(at)


def test_distilled_page_reports_a_bad_file_as_a_message(demo):
    bad = Path(demo.workspace) / "broken.safetensors"  # outside sets/: not listed
    bad.write_bytes(b"not a safetensors file")
    try:
        at = open_page("1_distilled.py")
        at.segmented_control(key="ds_from").set_value("path").run()
        at.text_input(key="ds_path").set_value(str(bad)).run()
        assert not at.exception
        assert at.error, "a bad file must produce an error message"
    finally:
        bad.unlink()


def test_distilled_page_upload_of_a_label_augmented_file(demo):
    at = open_page("1_distilled.py")
    at.segmented_control(key="ds_from").set_value("upload").run()
    data = Path(demo.set_path).read_bytes()
    at.get("file_uploader")[0].set_value(
        [("demo.safetensors", data, "application/octet-stream")]
    ).run()
    assert_clean(at)
    assert "Format detected" in successes(at)


def test_distilled_page_makes_a_random_real_set(demo):
    at = open_page("1_distilled.py")
    at.segmented_control(key="ds_from").set_value("random real").run()
    at.number_input(key="rr_ipc").set_value(1).run()
    at.button(key="rr_go").click().run()
    assert_clean(at)
    wait_for(at, lambda a: any("random_shapes_ipc1" in str(s.value) for s in a.selectbox))
    assert_clean(at)


def test_subsampling_slider_changes_crop_count_and_compare_mode(demo):
    at = open_page("2_subsampling.py")
    assert metric(at, "Labels per image") == "25"
    at.slider(key="sub_n").set_value(3).run()
    assert_clean(at)
    assert metric(at, "Labels per image") == "9"
    assert metric(at, "Crop size") == "20 px"  # 32 px x 0.625
    at.toggle(key="sub_cmp").set_value(True).run()
    assert_clean(at)
    assert [m.value for m in at.metric if m.label == "Labels per image"] == ["9", "9"]
    at.slider(key="sub_n2").set_value(2).run()
    assert [m.value for m in at.metric if m.label == "Labels per image"] == ["9", "4"]


def test_subsampling_state_survives_a_page_switch(demo):
    at = open_page("2_subsampling.py")
    at.slider(key="sub_n").set_value(4).run()
    at.switch_page("../pages/home.py").run()
    at.switch_page("../pages/2_subsampling.py").run()
    assert metric(at, "Labels per image") == "16"


def test_subsampling_reads_its_view_from_the_url(demo):
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.query_params["sub_n"] = "2"
    at.run()
    at.switch_page("../pages/2_subsampling.py").run()
    assert metric(at, "Labels per image") == "4"


def test_soft_labels_heatmaps_bars_and_epoch_curve(demo):
    at = open_page("3_soft_labels.py")
    at.selectbox(key="sl_set").set_value(str(Path(demo.set_path).relative_to(demo.workspace))).run()
    assert_clean(at)
    n_ckpt = len(demo.checkpoints)
    titles = [c["layout"].get("title", {}).get("text", "") for c in charts(at)]
    assert sum("epoch" in t and "P(" in t for t in titles) == n_ckpt
    fig5 = at.dataframe[0].value
    assert len(fig5) == n_ckpt and {"mean_max_prob", "mean_entropy"} <= set(fig5.columns)
    at.segmented_control(key="sl_metric").set_value("entropy").run()
    assert_clean(at)
    titles = [c["layout"].get("title", {}).get("text", "") for c in charts(at)]
    assert sum("entropy" in t for t in titles) == n_ckpt
    at.multiselect(key="sl_ep").set_value([read_epoch(demo.checkpoints[0])]).run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == 1


def read_epoch(path) -> int:
    from ladd.labeler import read_meta

    return read_meta(path).epoch


def test_soft_labels_trains_a_labeler_in_the_background(demo):
    at = open_page("3_soft_labels.py")
    at.number_input(key="lt_epochs").set_value(1).run()
    at.number_input(key="lt_limit").set_value(10).run()
    at.number_input(key="lt_width").set_value(8).run()
    at.button(key="lt_go").click().run()
    assert_clean(at)
    wait_for(at, lambda a: "Labeler on shapes" in successes(a))
    assert_clean(at)


def test_training_page_runs_a_job_and_records_the_run(demo):
    at = open_page("4_training.py")
    before = len(at.dataframe[0].value)
    at.selectbox(key="tr_set").set_value(str(Path(demo.set_path).relative_to(demo.workspace))).run()
    at.number_input(key="tr_epochs").set_value(1).run()
    at.number_input(key="tr_width").set_value(8).run()
    at.selectbox(key="tr_mode").set_value("crops_dense").run()
    assert at.selectbox(key="tr_trainer").value == "fast"  # the default
    at.selectbox(key="tr_trainer").set_value("reference").run()
    at.button(key="tr_go").click().run()
    assert_clean(at)
    wait_for(at, lambda a: "Training: crops_dense" in successes(a))
    assert_clean(at)
    runs = at.dataframe[0].value
    assert len(runs) == before + 1 and runs.iloc[0]["mode"] == "crops_dense"
    from ladd.store import Workspace

    newest = Workspace(demo.workspace).db.list_runs(kind="train")[0]
    assert newest.config["train"]["trainer"] == "reference"


def test_compare_page_accuracy_confusion_and_two_cams(demo):
    at = open_page("5_compare.py")
    at.selectbox(key="cmp_a").set_value(demo.baseline_run).run()
    at.selectbox(key="cmp_b").set_value(demo.ladd_run).run()
    assert_clean(at)
    specs = charts(at)
    cams = [
        s
        for s in specs
        if any("#" in (a.get("text") or "") for a in s["layout"].get("annotations", []))
    ]
    assert len(cams) == 2
    captions = " ".join(c.value for c in at.caption)
    assert captions.count("GradCAM of") == 2 and "probability" in captions
    at.selectbox(key="cmp_method").set_value("eigencam").run()
    assert_clean(at)
    assert " ".join(c.value for c in at.caption).count("EigenCAM of") == 2
    per_class = at.dataframe[0].value
    assert list(per_class.columns) == ["class", "A", "B", "B - A"]


def test_every_page_loads_on_an_empty_workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("LADD_WORKSPACE", str(tmp_path))
    for page in [
        "home.py",
        "1_distilled.py",
        "2_subsampling.py",
        "3_soft_labels.py",
        "4_training.py",
        "5_compare.py",
    ]:
        at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
        at.switch_page(f"../pages/{page}").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])


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
