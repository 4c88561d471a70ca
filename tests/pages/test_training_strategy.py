"""pages/4_training.py's label strategy (issue 37): the dense loss, schedule and weights picked
on the page train the run and are recorded with it."""

from __future__ import annotations

import json
from pathlib import Path

from page_helpers import assert_clean, open_page, successes, wait_for


def test_a_label_strategy_picked_on_the_page_is_trained_and_recorded(demo):
    from ladd.store import Workspace

    at = open_page("4_training.py")
    at.selectbox(key="tr_set").set_value(str(Path(demo.set_path).relative_to(demo.workspace))).run()
    at.number_input(key="tr_epochs").set_value(1).run()
    at.number_input(key="tr_width").set_value(8).run()
    at.selectbox(key="tr_mode").set_value("ladd").run()
    assert at.selectbox(key="tr_loss").value == "soft_ce"  # LADD's own, by default
    at.selectbox(key="tr_loss").set_value("kl").run()
    at.selectbox(key="tr_sched").set_value("temperature:calibrated").run()
    at.selectbox(key="tr_bal").set_value("learned").run()
    at.checkbox(key="tr_live").set_value(False).run()
    at.button(key="tr_go").click().run()
    assert_clean(at)
    wait_for(at, lambda a: "Training: ladd" in successes(a))
    assert_clean(at)
    ws = Workspace(demo.workspace)
    newest = ws.db.list_runs(kind="train")[0]
    train = newest.config["train"]
    assert (train["loss_fn"], train["label_schedule"], train["balance"]) == (
        "kl:t=20",
        "temperature:calibrated",
        "learned",
    )
    result = json.loads((ws.db.runs_dir / str(newest.id) / "result.json").read_text())
    assert (
        len(result["strategy"]["weight_dense"]) == 1 and result["strategy"]["student_temperature"]
    )


def test_a_strategy_no_run_can_train_is_refused_at_the_click(demo):
    at = open_page("4_training.py")
    at.selectbox(key="tr_set").set_value(str(Path(demo.set_path).relative_to(demo.workspace))).run()
    at.selectbox(key="tr_sched").set_value("temperature").run()  # with soft_ce: no temperature
    at.button(key="tr_go").click().run()
    assert any("needs a loss that uses one" in e.value for e in at.error)
