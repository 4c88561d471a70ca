"""Pages on a hostile or damaged workspace (issue #38, classes 4 and 5).

Class names, run labels and archive member names from files render as text, never as
Markdown (a class named `![x](http://host/a)` made the viewer's browser fetch that URL); a runs
row with invalid JSON and a runs.sqlite that is not a database are named on Home, Training and
Compare while the rest of each page works. Each test points the app at its own copy of the
demo's runs (the shared demo workspace is left as it is).
"""

from __future__ import annotations

import shutil
import sqlite3
import zipfile
from dataclasses import replace

import pytest
from page_helpers import MAIN, TIMEOUT, AppTest, open_page

EVIL = "![x](http://host/a)"
ESCAPED = "\\!\\[x\\](http://host/a)"


def _all_text(at: AppTest) -> list[str]:
    """Every text element's Markdown source and every metric label on the page."""
    parts = [
        *(m.value for m in at.markdown),
        *(c.value for c in at.caption),
        *(e.value for e in at.error),
        *(w.value for w in at.warning),
        *(i.value for i in at.info),
        *(s.value for s in at.success),
        *(m.label for m in at.metric),
    ]
    return [str(p) for p in parts]


def _unrendered(at: AppTest) -> list[str]:
    """Texts in which the hostile name is still Markdown (an image to fetch)."""
    return [t for t in _all_text(at) if "![x](" in t]


@pytest.fixture(scope="module")
def hostile_ws(small_demo, tmp_path_factory):
    """A workspace with the demo's runs copied, one more train run labelled EVIL (the
    baseline's results), a damaged run (invalid JSON config), a set whose class 0 is named
    EVIL, and a zip whose class folder is EVIL and whose image does not decode."""
    from ladd.sets import load_set
    from ladd.store import RunsDB

    arts = small_demo.arts
    root = tmp_path_factory.mktemp("hostile_ws")
    shutil.copy(small_demo.root / "runs.sqlite", root / "runs.sqlite")
    shutil.copytree(small_demo.root / "runs", root / "runs")
    db = RunsDB(root / "runs.sqlite")
    base = db.get_run(arts.baseline_run)
    evil_run = db.start_run("train", {**base.config, "label": EVIL})
    shutil.copy(
        root / "runs" / str(arts.baseline_run) / "result.json",
        db.run_dir(evil_run) / "result.json",
    )
    db.finish_run(evil_run, base.metrics, base.artifacts)
    damaged = db.start_run("train", {"label": "to be damaged"})
    db.finish_run(damaged, {}, {})
    con = sqlite3.connect(db.path)
    with con:
        con.execute("UPDATE runs SET config = '{not json' WHERE id = ?", (damaged,))
    con.close()
    ds = load_set(arts.distilled_dir)
    names = (EVIL, *ds.class_names[1:])
    replace(ds, class_names=names).save_mtt(root / "sets" / "evil")
    with zipfile.ZipFile(root / "evil.zip", "w") as zf:
        zf.writestr(f"set/{EVIL}/0.png", b"\x89PNG\r\n\x1a\n not an image")
        zf.writestr("set/other/0.png", b"\x89PNG\r\n\x1a\n not an image")
    return root, evil_run, damaged


@pytest.fixture
def in_hostile_ws(hostile_ws, small_demo, monkeypatch):
    root, evil_run, damaged = hostile_ws
    monkeypatch.setenv("LADD_WORKSPACE", str(root))
    monkeypatch.setenv("LADD_ALLOWED_DIRS", str(small_demo.root))  # the runs' model files
    return hostile_ws


def test_a_class_name_from_a_file_renders_as_text(in_hostile_ws) -> None:
    """Sub-sampling's caption names the image's class: the name is escaped Markdown."""
    at = open_page("2_subsampling.py")
    at.selectbox(key="sub_set").set_value("sets/evil").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [c.value for c in at.caption if c.value.startswith("Image 0 ")]
    assert captions and ESCAPED in captions[0], captions
    assert not _unrendered(at)


def test_an_archive_member_quoted_in_an_error_renders_as_text(in_hostile_ws) -> None:
    """The Distilled images page quotes the image that did not decode: its class folder (a
    member name of the zip) is escaped in the error."""
    root, _, _ = in_hostile_ws
    at = open_page("1_distilled.py")
    at.segmented_control(key="ds_from").set_value("path").run()
    at.text_input(key="ds_path").set_value(str(root / "evil.zip")).run()
    assert not at.exception
    assert at.error and ESCAPED in at.error[0].value, [e.value for e in at.error]
    assert not _unrendered(at)


def test_a_run_label_from_a_record_renders_as_text(in_hostile_ws) -> None:
    """Compare's metrics are labelled with the runs' names: the label from the record (a
    user's --label, or one built from folder names) is escaped."""
    _, evil_run, _ = in_hostile_ws
    at = open_page("5_compare.py")
    at.selectbox(key="cmp_a").set_value(evil_run).run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric if m.label.startswith("A #")]
    assert labels == [f"A #{evil_run} {ESCAPED}"], labels
    assert not _unrendered(at)


@pytest.mark.parametrize("page", [None, "4_training.py", "5_compare.py"])
def test_a_damaged_run_is_named_and_the_page_works(in_hostile_ws, page) -> None:
    """Issue #38: a runs row with invalid JSON broke Home, Training and Compare. Each names
    the damaged run and the database in a warning and shows the rest."""
    root, _, damaged = in_hostile_ws
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    if page is not None:
        at.switch_page(f"../pages/{page}").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    warned = [w.value for w in at.warning if f"run {damaged} is damaged" in w.value]
    assert warned and "runs.sqlite" in warned[0], [w.value for w in at.warning]
    if page is None:
        assert any(m.label == "Runs recorded" for m in at.metric)
    elif page == "4_training.py":
        table = at.dataframe[0].value
        assert list(table.loc[table["id"] == damaged, "status"]) == ["damaged"]
    else:
        assert at.selectbox(key="cmp_a").options  # the good runs are there to compare


@pytest.mark.parametrize("page", [None, "4_training.py", "5_compare.py"])
def test_a_runs_file_that_is_not_a_database_is_named_and_the_page_works(
    tmp_path, monkeypatch, page
) -> None:
    """Issue #38: a runs.sqlite that is not a database broke the same pages. One error names
    the file; the rest of the page shows (Home's counts, Training's form, Compare's note)."""
    (tmp_path / "runs.sqlite").write_bytes(b"not a database, whatever its name says" * 50)
    monkeypatch.setenv("LADD_WORKSPACE", str(tmp_path))
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    if page is not None:
        at.switch_page(f"../pages/{page}").run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "runs.sqlite" in errors[0], errors
    if page is None:
        assert {"Device", "Sets in workspace", "Runs recorded"} <= {m.label for m in at.metric}
    elif page == "4_training.py":
        assert at.button(key="tr_go") is not None
    else:
        assert any("No finished training runs" in i.value for i in at.info)
