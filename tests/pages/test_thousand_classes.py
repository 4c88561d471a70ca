"""Every page at 1000 classes (ImageNet-1K scale), on the synthetic workspace of thousand.py:
class pickers search 1000 named options, soft labels show their top-k and "other", per-class
accuracy is a table worst first with the largest confusions beside it, nothing draws (or
converts) a chart or an image per class of the whole set."""

from __future__ import annotations

import json
import re

import numpy as np
from page_helpers import assert_clean, charts, metric, open_page
from test_every_page import registered_pages

OPTION = re.compile(r"^\d+: \w+$")


def table(at, columns: set[str]):
    """The first dataframe with these columns."""
    found = [d.value for d in at.dataframe if columns <= set(d.value.columns)]
    assert found, f"no table with {columns} in {[list(d.value.columns) for d in at.dataframe]}"
    return found[0]


def search(options: list[str], text: str) -> list[str]:
    """What typing `text` in a selectbox leaves (it filters its options as you type)."""
    return [o for o in options if text.lower() in o.lower()]


def test_every_page_opens_on_a_1000_class_workspace(thousand):
    for page in registered_pages():
        at = open_page(page)  # asserts no exception and no error message
        assert not any(len(c["data"]) >= 1000 for c in charts(at)), page  # no trace per class


def test_the_class_picker_offers_1000_named_options_and_a_search_finds_one(thousand):
    at = open_page("3_soft_labels.py")
    picker = at.selectbox(key="sl_class")
    assert len(picker.options) == 1000 and all(OPTION.match(o) for o in picker.options)
    assert picker.options[537] == f"537: {thousand.names[537]}"
    found = search(picker.options, "crimson_otter")
    assert len(found) == 1
    index = int(found[0].split(":")[0])
    picker.set_value(index).run()
    assert_clean(at)
    titles = [c["layout"].get("title", {}).get("text", "") for c in charts(at)]
    assert sum("P(crimson_otter)" in t for t in titles) == len(thousand.checkpoints)


def test_soft_labels_show_the_top_k_classes_and_the_other_mass(thousand):
    at = open_page("3_soft_labels.py")
    top = table(at, {"class", "mean", "min", "max"})
    assert len(top) == 10 + 1 and top["class"].iloc[-1] == "other (990 classes)"
    assert list(top["mean"].iloc[:-1]) == sorted(top["mean"].iloc[:-1], reverse=True)
    assert abs(top["mean"].sum() - 1.0) < 1e-3  # the k classes and "other" hold all the mass
    bars = next(c for c in charts(at) if c["data"] and c["data"][0]["type"] == "bar")
    assert len(bars["data"]) == 25 and all(len(t["x"]) == 11 for t in bars["data"])  # 5 x 5 crops
    at.number_input(key="sl_topk").set_value(3).run()
    assert_clean(at)
    assert len(table(at, {"class", "mean", "min", "max"})) == 3 + 1
    assert not any("mean_max_prob" in d.value.columns for d in at.dataframe)  # on request only
    at.toggle(key="sl_whole").set_value(True).run()
    assert_clean(at)
    assert len(table(at, {"epoch", "mean_max_prob"})) == len(thousand.checkpoints)


def test_per_class_accuracy_is_a_table_worst_first_with_the_top_confusions(thousand):
    at = open_page("5_compare.py")
    at.selectbox(key="cmp_a").set_value(thousand.baseline_run).run()
    at.selectbox(key="cmp_b").set_value(thousand.ladd_run).run()
    assert_clean(at)
    assert not [c for c in charts(at) if any(t["type"] == "heatmap" for t in c["data"])]
    per_class = table(at, {"index", "class", "A", "B", "B - A"})
    assert len(per_class) == 1000 and set(per_class["class"]) == set(thousand.names)
    assert list(per_class["B"]) == sorted(per_class["B"])  # worst first
    at.segmented_control(key="cmp_sort").set_value("B - A").run()
    per_class = table(at, {"index", "class", "A", "B", "B - A"})
    assert list(per_class["B - A"]) == sorted(per_class["B - A"])
    confusions = [d.value for d in at.dataframe if "predicted" in d.value.columns]
    assert len(confusions) == 2
    result = thousand.root / "runs" / str(thousand.baseline_run) / "result.json"
    off = np.asarray(json.loads(result.read_text())["confusion"])
    np.fill_diagonal(off, 0)
    counts = list(confusions[0]["count"])
    assert 0 < len(counts) <= 20 and counts == sorted(counts, reverse=True)
    assert counts[0] == off.max()
    at.number_input(key="cmp_conf").set_value(5).run()
    assert all(len(d.value) <= 5 for d in at.dataframe if "predicted" in d.value.columns)


def test_cam_grid_of_one_class_picked_by_name(thousand):
    at = open_page("5_compare.py")
    at.selectbox(key="cmp_pick").set_value("class").run()
    picker = at.selectbox(key="cmp_class")
    assert len(picker.options) == 1000
    (found,) = search(picker.options, "noble_panda")
    picker.set_value(int(found.split(":")[0])).run()
    assert_clean(at)
    line = next(c.value for c in at.caption if c.value.startswith("Of "))
    assert line.startswith("Of 1 real test images (class noble_panda, of 1000)")
    grid = [c for c in charts(at) if c["data"] and all(t["type"] == "image" for t in c["data"])]
    heads = [a["text"] for a in grid[0]["layout"]["annotations"] if a["text"].startswith("<b>")]
    assert heads == ["<b>noble_panda</b>"]


def test_the_distilled_grid_shows_a_window_of_classes(thousand):
    at = open_page("1_distilled.py")
    at.selectbox(key="ds_set").set_value(f"sets/{thousand.distilled_dir.name}").run()
    assert_clean(at)
    assert metric(at, "Classes") == "1000"
    grid = charts(at)[0]
    assert grid["layout"]["yaxis"]["ticktext"] == list(thousand.names[:20])
    picker = at.selectbox(key="ds_first")
    (found,) = search(picker.options, "umber_walrus")
    picker.set_value(int(found.split(":")[0])).run()  # the 997th class: three are left
    assert_clean(at)
    assert charts(at)[0]["layout"]["yaxis"]["ticktext"] == list(thousand.names[996:])
    stats = at.dataframe[0].value
    assert list(stats["class"]) == [*thousand.names[996:], "all"]


def test_subsampling_measures_the_overhead_on_request(thousand):
    at = open_page("2_subsampling.py")
    assert metric(at, "Label bytes / image") == f"{25 * 4 * 1000:,}"  # N = 5, float32
    assert metric(at, "Storage overhead") == "-"
    at.toggle(key="sub_measure").set_value(True).run()
    assert_clean(at)
    assert metric(at, "Storage overhead").endswith("%")


def test_a_pick_over_many_images_scores_a_seeded_draw_of_them(thousand, monkeypatch):
    from app import cache

    monkeypatch.setattr(cache, "CAM_POOL", 100)  # the 1000 test images are "many" here
    at = open_page("5_compare.py")
    at.selectbox(key="cmp_pick").set_value("random").run()
    at.slider(key="cmp_k").set_value(3).run()
    assert_clean(at)
    line = next(c.value for c in at.caption if c.value.startswith("Of "))
    assert line.startswith("Of 100 real test images (a seeded draw, of 1000)")
    counts = [int(v) for v in re.findall(r"\d+", line.split(":", 1)[1])]
    assert len(counts) == 4 and sum(counts) == 100  # both right, only B, only A, both wrong
    grid = [c for c in charts(at) if c["data"] and all(t["type"] == "image" for t in c["data"])]
    assert len(grid) == 1 and len(grid[0]["data"]) == 3 * 3  # inputs, A, B; three images


def test_an_rded_folder_of_1000_classes_opens_decoding_only_the_images_shown(thousand, monkeypatch):
    """RDED's 2,000 files are listed, not decoded: the grid's window of classes (20 classes x 2
    images), the one image the sub-sampler cuts, and the first image (its size) are all that a
    page decodes (ladd.sets.view)."""
    from ladd.sets import readers

    decoded: list[int] = []  # files per decode call: a whole-folder read would be 2000
    real = readers.decode_images

    def counting(items, *args, **kwargs):
        decoded.append(len(items))
        return real(items, *args, **kwargs)

    monkeypatch.setattr(readers, "decode_images", counting)
    at = open_page("1_distilled.py")
    at.selectbox(key="ds_set").set_value(f"sets/{thousand.rded_dir.name}").run()
    assert_clean(at)
    shown = (metric(at, "Images"), metric(at, "Classes"), metric(at, "Images per class"))
    assert shown == ("2000", "1000", "2")
    assert charts(at)[0]["layout"]["yaxis"]["ticktext"] == [f"class {k}" for k in range(20)]
    assert list(at.dataframe[0].value["images"])[:20] == [2] * 20
    assert 0 < sum(decoded) <= 1 + 20 * 2, decoded

    decoded.clear()
    at = open_page("2_subsampling.py")
    at.selectbox(key="sub_set").set_value(f"sets/{thousand.rded_dir.name}").run()
    assert_clean(at)
    assert sum(decoded) <= 1, decoded  # image 0 (already read by the page above, if cached)
