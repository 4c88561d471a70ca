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


def test_a_set_without_its_normalisation_is_shown_then_read_as_told_and_saved(demo):
    """A bare DD-Ranking folder records no normalisation: shown (stretched) with a warning;
    with mean/std under 'How to read this set' it is trainable, and a saved copy records them."""
    import torch

    from ladd.sets import load_set

    bare = Path(demo.workspace) / "uploads" / "bare"
    bare.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    torch.save(torch.randn(6, 3, 8, 8, generator=g), bare / "images.pt")
    torch.save(torch.tensor([0, 0, 1, 1, 2, 2]), bare / "labels.pt")
    at = open_page("1_distilled.py")
    at.segmented_control(key="ds_from").set_value("path").run()
    at.text_input(key="ds_path").set_value(str(bare)).run()
    assert not at.exception and not at.error
    assert any("normalisation unknown" in w.value for w in at.warning)
    assert charts(at), "the grid is drawn all the same"
    at.text_input(key="ds_mean").set_value("0.5,0.5,0.5").run()
    assert at.error and "together" in at.error[0].value  # std missing: said, nothing crashes
    at.text_input(key="ds_std").set_value("0.25,0.25,0.25").run()
    assert_clean(at)
    assert not any("normalisation unknown" in w.value for w in at.warning)
    assert "Format detected" in successes(at)
    at.text_input(key="ds_save_name").set_value("bare copy").run()
    at.button(key="ds_save").click().run()
    assert_clean(at)
    saved = Path(demo.workspace) / "sets" / "bare_copy"
    assert "sets/bare_copy" in successes(at)
    ds = load_set(saved)
    assert ds.mean == (0.5, 0.5, 0.5) and ds.std == (0.25, 0.25, 0.25) and len(ds) == 6
    at.button(key="ds_save").click().run()  # never over an existing set
    assert at.error and "already exists" in at.error[0].value
    import shutil

    shutil.rmtree(saved)  # the module's demo workspace is shared by later tests
    shutil.rmtree(bare)
