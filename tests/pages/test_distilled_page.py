"""pages/1_distilled.py: reading, uploading and making sets."""

from __future__ import annotations

from pathlib import Path

from page_helpers import assert_clean, charts, open_page, successes, wait_for


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
    wait_for(at, lambda a: any("random_real_shapes_ipc1" in str(s.value) for s in a.selectbox))
    assert_clean(at)
