"""The home page: device, workspace, the demo and what it trained."""

from __future__ import annotations

from page_helpers import assert_clean, metric, open_page, successes, wait_for


def test_home_shows_device_workspace_and_built_demo(demo):
    at = open_page()
    assert at.title[0].value == "LADD Studio"
    assert metric(at, "Device").startswith(("CPU", "GPU"))
    assert str(demo.workspace) in " ".join(c.value for c in at.caption)
    table = at.dataframe[0].value
    assert list(table["size"]) == ["small"]
    row = table.iloc[0]
    assert row["baseline"] == round(100 * demo.baseline_accuracy, 1)
    assert row["LADD"] == round(100 * demo.ladd_accuracy, 1)


def test_home_says_what_the_demo_trained_scored_and_cost(demo):
    at = open_page()
    text = " ".join(m.value for m in at.markdown)
    assert "**shapes, small**" in text
    assert f"Baseline **{demo.baseline_accuracy:.1%}**" in text
    assert f"LADD **{demo.ladd_accuracy:.1%}**" in text and "chance 10%" in text
    assert f"Built in {demo.seconds / 60:.1f} min" in text


def test_home_demo_button_runs_in_background_and_reuses_artifacts(demo):
    at = open_page()
    at.segmented_control(key="demo_source").set_value("shapes").run()
    at.segmented_control(key="demo_size").set_value("small").run()
    at.button(key="demo_go").click().run()
    assert_clean(at)
    wait_for(at, lambda a: "done" in successes(a))
    assert_clean(at)


def test_home_refuses_a_cifar_folder_outside_the_allowed_ones(demo):
    at = open_page()
    at.segmented_control(key="demo_source").set_value("cifar10").run()
    at.text_input(key="demo_data").set_value("/etc").run()
    assert at.error and "outside the folders" in at.error[0].value
    assert not at.exception
