"""pages/5_compare.py: two runs side by side, the CAM grid, figure and report downloads."""

from __future__ import annotations

import re

from page_helpers import assert_clean, charts, open_page


def cam_grid_chart(at) -> dict:
    """The figure whose traces are images (the CAM grid)."""
    found = [c for c in charts(at) if c["data"] and all(t["type"] == "image" for t in c["data"])]
    assert len(found) == 1, f"{len(found)} CAM grids on the page"
    return found[0]


def texts(chart: dict) -> list[str]:
    return [a.get("text") or "" for a in chart["layout"].get("annotations", [])]


def downloads(at) -> list[str]:
    return [b.proto.label for b in at.get("download_button")]


def test_compare_page_accuracy_confusion_and_a_cam_grid_of_runs_by_images(demo):
    at = open_page("5_compare.py")
    at.selectbox(key="cmp_a").set_value(demo.baseline_run).run()
    at.selectbox(key="cmp_b").set_value(demo.ladd_run).run()
    at.selectbox(key="cmp_pick").set_value("random").run()
    at.slider(key="cmp_k").set_value(4).run()
    assert_clean(at)
    grid = cam_grid_chart(at)
    assert len(grid["data"]) == 3 * 4  # the inputs, then run A, then run B; four images
    ann = texts(grid)
    assert {
        "input",
        f"A #{demo.baseline_run} demo baseline",
        f"B #{demo.ladd_run} demo ladd",
    } <= set(ann)  # the row names
    # Under each of the 2 x 4 maps: the predicted class and its probability.
    assert sum(bool(re.search(r">[\w ]+ [01]\.\d\d<", t)) for t in ann) == 8
    assert sum(t.startswith("<b>") for t in ann) == 4  # true classes over the columns
    tables = [list(d.value.columns) for d in at.dataframe]
    assert tables[:2] == [["field", "value"]] * 2  # each run's facts as recorded (issue 40)
    assert ["class", "A", "B", "B - A"] in tables  # per-class accuracy
    assert {"PNG", "SVG", "PDF", "Download the report (HTML)"} <= set(downloads(at))


def test_picking_one_class_fills_every_column_with_it(demo):
    at = open_page("5_compare.py")
    at.selectbox(key="cmp_pick").set_value("class").run()
    at.selectbox(key="cmp_class").set_value(3).run()
    at.slider(key="cmp_k").set_value(3).run()
    assert_clean(at)
    heads = [t for t in texts(cam_grid_chart(at)) if t.startswith("<b>")]
    assert heads == ["<b>diamond</b>"] * 3


def test_the_counts_add_up_and_an_empty_pick_is_a_message(demo):
    at = open_page("5_compare.py")
    at.selectbox(key="cmp_a").set_value(demo.baseline_run).run()
    at.selectbox(key="cmp_b").set_value(demo.baseline_run).run()  # the same run twice
    at.selectbox(key="cmp_pick").set_value("b_right_a_wrong").run()
    assert_clean(at)
    line = next(c.value for c in at.caption if c.value.startswith("Of "))
    total, *parts = (int(v) for v in re.findall(r"\d+", line))
    assert sum(parts) == total and parts[1] == parts[2] == 0  # nobody beats itself
    assert any("No test image is B right, A wrong" in i.value for i in at.info)
    assert "PNG" not in downloads(at) and "Download the report (HTML)" in downloads(at)


def test_another_method_and_more_runs_as_rows(demo):
    at = open_page("5_compare.py")
    at.selectbox(key="cmp_a").set_value(demo.baseline_run).run()
    at.selectbox(key="cmp_b").set_value(demo.ladd_run).run()
    at.selectbox(key="cmp_pick").set_value("random").run()
    at.slider(key="cmp_k").set_value(2).run()
    at.selectbox(key="cmp_method").set_value("eigencam").run()
    assert_clean(at)
    assert len(cam_grid_chart(at)["data"]) == 3 * 2
    extra = extra_run(demo)
    at.run()  # the page lists it now
    at.multiselect(key="cmp_more").set_value([extra]).run()
    assert_clean(at)
    grid = cam_grid_chart(at)
    assert len(grid["data"]) == 4 * 2  # a third run is a third row of maps
    assert any(t.startswith(f"#{extra} extra baseline") for t in texts(grid))


def extra_run(demo) -> int:
    """One more finished run on the demo's set (1 epoch), recorded like any other."""
    from ladd.data import load_source
    from ladd.pipeline import run_train
    from ladd.plan import plan_training
    from ladd.sets import LabelAugmentedSet
    from ladd.store import Workspace
    from ladd.training import TrainConfig

    ws = Workspace(demo.workspace)
    la = LabelAugmentedSet.load(demo.set_path)
    test = load_source("shapes", "test", limit_per_class=2, cache_dir=ws.cache_dir)
    cfg = TrainConfig(mode="baseline", epochs=1, seeds=(0,), model_options={"width": 8})
    run_id, _ = run_train(
        ws,
        plan_training(la, cfg, "cpu"),
        la,
        test,
        set_path=demo.set_path,
        source="shapes",
        label="extra baseline",
    )
    return run_id


def test_compare_page_says_which_codec_the_ladd_runs_labels_came_through(demo):
    """Issue 26: both demo runs train on its label-augmented set (float32 labels; the baseline
    reads only its images and hard labels), so each run's column names the codec."""
    at = open_page("5_compare.py")
    at.selectbox(key="cmp_a").set_value(demo.baseline_run).run()
    at.selectbox(key="cmp_b").set_value(demo.ladd_run).run()
    assert_clean(at)
    said = [c.value for c in at.caption if "Dense labels of its set" in c.value]
    assert said == ["Dense labels of its set stored as **float32**"] * 2
