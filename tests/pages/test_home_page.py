"""The home page: device, workspace, the demo."""

from __future__ import annotations

from page_helpers import assert_clean, metric, open_page, successes, wait_for


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
