"""pages/5_compare.py: two runs side by side, CAMs."""

from __future__ import annotations

from page_helpers import assert_clean, charts, open_page


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
