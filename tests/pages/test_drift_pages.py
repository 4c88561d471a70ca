"""The drift views (ladd.drift) on the soft-labels and sub-sampling pages: a heat grid of one
image's crops per labeler epoch, live as N, R and the epoch change; over the set a histogram and
the drifted share per epoch; at 1000 classes the set is labelled only on request."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
from page_helpers import assert_clean, charts, open_page


def _array(v) -> np.ndarray:
    """A plotly array as the chart spec holds it: a list, or plotly's typed "bdata"."""
    if isinstance(v, dict):
        flat = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        shape = [int(x) for x in str(v.get("shape", len(flat))).split(",")]
        return flat.reshape(shape)
    return np.asarray(v)


def _side(chart: dict) -> int:
    return int(_array(chart["data"][0]["z"]).shape[0])


def _total(trace: dict) -> int:
    return int(_array(trace["y"]).sum())


def _images(demo) -> int:
    from ladd.sets import LabelAugmentedSet

    return len(LabelAugmentedSet.load(demo.set_path))


def _titles(at) -> list[str]:
    return [c["layout"].get("title", {}).get("text", "") for c in charts(at)]


def _drift_grids(at) -> list[dict]:
    return [
        c for c in charts(at) if "JS to the image" in c["layout"].get("title", {}).get("text", "")
    ]


def _histograms(at) -> list[dict]:
    return [
        c
        for c in charts(at)
        if "JS divergence" in str(c["layout"].get("xaxis", {}).get("title", {}).get("text", ""))
    ]


def test_soft_labels_page_draws_a_drift_grid_per_epoch_and_the_sets_histogram(demo):
    at = open_page("3_soft_labels.py")
    at.selectbox(key="sl_set").set_value(str(Path(demo.set_path).relative_to(demo.workspace))).run()
    assert_clean(at)
    grids = _drift_grids(at)
    assert len(grids) == len(demo.checkpoints)
    assert _side(grids[0]) == 5  # 5 x 5 crops
    assert len(_histograms(at)) == 1
    hist = _histograms(at)[0]
    assert len(hist["data"]) == len(demo.checkpoints)  # one series per epoch
    images = _images(demo)
    assert _total(hist["data"][0]) == images * 25  # every crop of the set, once
    assert any("drifted_fraction" in d.value.columns for d in at.dataframe)
    at.slider(key="sl_n").set_value(3).run()
    assert_clean(at)
    assert _side(_drift_grids(at)[0]) == 3  # live as N changes
    assert _total(_histograms(at)[0]["data"][0]) == images * 9


def test_subsampling_page_draws_the_drift_of_its_crops_live(demo):
    at = open_page("2_subsampling.py")
    assert_clean(at)
    grids = _drift_grids(at)
    assert len(grids) == 1 and _side(grids[0]) == 5
    assert len(_histograms(at)) == 1
    at.slider(key="sub_n").set_value(4).run()
    assert_clean(at)
    assert _side(_drift_grids(at)[0]) == 4
    epochs = at.selectbox(key="sub_dep").options
    at.selectbox(key="sub_dep").set_value(int(epochs[-1].split()[-1])).run()
    assert_clean(at)
    assert f"epoch {epochs[-1].split()[-1]}" in _drift_grids(at)[0]["layout"]["title"]["text"]


def test_at_1000_classes_one_images_drift_is_drawn_and_the_set_is_labelled_on_request(
    thousand, monkeypatch
):
    import ladd.drift

    calls = []
    real = ladd.drift.drift_across
    monkeypatch.setattr(
        ladd.drift, "drift_across", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    at = open_page("2_subsampling.py")
    grids = _drift_grids(at)
    assert len(grids) == 1 and not _histograms(at) and not calls  # one image's crops only
    at.toggle(key="sub_dset").set_value(True).run()
    assert_clean(at)
    assert len(_histograms(at)) == 1 and calls
    at = open_page("3_soft_labels.py")
    assert len(_drift_grids(at)) == len(thousand.checkpoints) and not _histograms(at)
