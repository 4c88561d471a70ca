"""pages/2_subsampling.py: N and R live."""

from __future__ import annotations

import pytest
from page_helpers import MAIN, TIMEOUT, AppTest, assert_clean, metric, open_page


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


def test_the_label_codec_changes_bytes_and_overhead_live(demo):
    """Issue 26: label bytes per image follow the codec (10 classes, N = 5: float32 4 B x 10 x
    25 = 1,000; top-5 uint8: (1 + 1) B x 5 x 25 = 250) and the overhead shrinks with them."""
    at = open_page("2_subsampling.py")
    assert metric(at, "Label bytes / image") == "1,000"
    full = float(metric(at, "Storage overhead").rstrip("%"))
    at.selectbox(key="sub_codec").set_value("topk:5,uint8,uniform").run()
    assert_clean(at)
    assert metric(at, "Label bytes / image") == "250"
    assert float(metric(at, "Storage overhead").rstrip("%")) == pytest.approx(full / 4, rel=0.02)
