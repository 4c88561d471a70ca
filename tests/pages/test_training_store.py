"""pages/4_training.py with a soft-label store beside the set (issue 36): the store's path
offers label mode "store", the run is planned at the click and recorded with the store's
facts; a store that cannot be paired is an error on the page, and no job starts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from page_helpers import assert_clean, open_page, successes, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stores"))
import upstream_stores as us  # noqa: E402


@pytest.fixture
def store_workspace(tmp_path, monkeypatch):
    """A workspace of one image folder (10 classes x 2 images of 16 px, SRe2L's names) under
    sets/ with an SRe2L store of 2 epochs (batches of 8) under stores/, the app pointed at it."""
    from ladd.store import Workspace

    ws = Workspace(tmp_path / "ws")
    us.write_images(ws.sets_dir / "imgs", 10, 2, 16)
    us.write_sre2l(ws.root / "stores" / "sre2l", 20, 10, epochs=2, batch=8, size=16)
    us.write_sre2l(ws.root / "stores" / "other", 10, 5, epochs=2, batch=8, size=16)  # 10 images
    monkeypatch.setenv("LADD_WORKSPACE", str(ws.root))
    monkeypatch.delenv("LADD_CACHE_DIR", raising=False)
    monkeypatch.setenv("LADD_ALLOWED_DIRS", "")
    return ws


def _modes(at) -> list[str]:
    return [o.split(":")[0] for o in at.selectbox(key="tr_mode").options]


def test_a_store_beside_an_image_folder_trains_in_mode_store(store_workspace):
    from ladd.stores import open_store

    ws = store_workspace
    at = open_page("4_training.py")
    at.selectbox(key="tr_set").set_value("sets/imgs").run()
    assert "store" not in _modes(at)  # no store given: no mode that needs one
    at.text_input(key="tr_store").input("stores/sre2l").run()
    assert_clean(at)
    assert "store" in _modes(at)
    assert any("2 epochs of 20 crops, batch 8" in c.value for c in at.caption)
    at.selectbox(key="tr_source").set_value("shapes").run()
    at.selectbox(key="tr_mode").set_value("store").run()
    at.number_input(key="tr_epochs").set_value(1).run()
    at.number_input(key="tr_width").set_value(8).run()
    at.checkbox(key="tr_live").set_value(False).run()
    at.button(key="tr_go").click().run()
    assert_clean(at)
    wait_for(at, lambda a: "Training: store" in successes(a))
    assert_clean(at)
    (run,) = ws.db.list_runs(kind="train")
    assert run.status == "done" and run.config["train"]["mode"] == "store"
    facts = run.config["plan"]["set"]["soft_labels"]
    store = ws.root / "stores" / "sre2l"
    assert facts["digest"] == open_store(store).digest() and facts["family"] == "sre2l"
    assert facts["path"] == str(store.resolve()) and facts["epochs"] == 2
    assert run.config["train"]["batch_size"] == 8  # the store's
    assert at.dataframe[0].value.iloc[0]["mode"] == "store"
    # the store cleared: its mode goes back to the default, not a broken choice
    at.text_input(key="tr_store").input("").run()
    assert_clean(at)
    assert "store" not in _modes(at) and at.selectbox(key="tr_mode").value == "ladd"


def test_a_store_that_does_not_pair_is_an_error_on_the_page(store_workspace):
    from app.jobs import registry

    at = open_page("4_training.py")
    at.selectbox(key="tr_set").set_value("sets/imgs").run()
    at.text_input(key="tr_store").input("stores/other").run()  # made from 10 images, not 20
    assert any("Cannot read this store" in e.value for e in at.error)
    at.selectbox(key="tr_source").set_value("shapes").run()
    at.selectbox(key="tr_mode").set_value("store").run()
    before = len(registry().active("train"))
    at.button(key="tr_go").click().run()
    assert any("Cannot start" in e.value and "not the folder" in e.value for e in at.error)
    assert len(registry().active("train")) == before
    assert not store_workspace.db.list_runs(kind="train")
    at.text_input(key="tr_store").input("../elsewhere").run()  # outside the allowed folders
    assert any("outside the folders" in e.value for e in at.error)
