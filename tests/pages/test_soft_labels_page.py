"""pages/3_soft_labels.py: dense labels across labeler epochs."""

from __future__ import annotations

from pathlib import Path

from page_helpers import assert_clean, charts, open_page, successes, wait_for


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
