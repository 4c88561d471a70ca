"""pages/4_training.py: background deployment training."""

from __future__ import annotations

from pathlib import Path

from page_helpers import assert_clean, open_page, successes, wait_for


def test_training_page_runs_a_job_and_records_the_run(demo):
    at = open_page("4_training.py")
    before = len(at.dataframe[0].value)
    at.selectbox(key="tr_set").set_value(str(Path(demo.set_path).relative_to(demo.workspace))).run()
    at.number_input(key="tr_epochs").set_value(1).run()
    at.number_input(key="tr_width").set_value(8).run()
    at.selectbox(key="tr_mode").set_value("crops_dense").run()
    assert at.selectbox(key="tr_trainer").value == "fast"  # the default
    at.selectbox(key="tr_trainer").set_value("reference").run()
    at.button(key="tr_go").click().run()
    assert_clean(at)
    wait_for(at, lambda a: "Training: crops_dense" in successes(a))
    assert_clean(at)
    runs = at.dataframe[0].value
    assert len(runs) == before + 1 and runs.iloc[0]["mode"] == "crops_dense"
    from ladd.store import Workspace

    newest = Workspace(demo.workspace).db.list_runs(kind="train")[0]
    assert newest.config["train"]["trainer"] == "reference"
