"""bench/trace_click.py: the dashboard's training click walks down the layers (issue 24)."""

from __future__ import annotations

import pytest

from bench.trace_click import Walk, layer_of, trace_training_click


def test_layers_are_the_walks_modules_and_helpers_are_not():
    assert layer_of("app.tasks") == 0 and layer_of("ladd.pipeline") == 1
    assert layer_of("ladd.deploy") == 2 and layer_of("ladd.trainers.loop") == 3
    for helper in ("ladd.training", "ladd.results", "ladd.store", "ladd.progress", "torch.nn"):
        assert layer_of(helper) is None


def test_only_climbs_followed_by_another_descent_count():
    walk = Walk()
    walk.events = [
        ("down", 1, 2, "settle"),
        ("up", 2, 1, "settle"),  # mid-walk: the pipeline goes down again after it
        ("down", 1, 2, "train"),
        ("down", 2, 3, "fit"),
        ("up", 3, 2, "fit"),  # the final unwinding
        ("up", 2, 1, "train"),
    ]
    assert [e[3] for e in walk.mid_walk_returns()] == ["settle"]
    assert len(walk.descents()) == 3


@pytest.mark.parametrize("trainer", ["fast", "reference"])
def test_the_training_click_returns_to_a_higher_layer_at_most_twice(tmp_path, trainer):
    """Traced with sys.setprofile from app.tasks.submit_training to the job's end: the pipeline
    settles the config once (ladd.deploy.resolve_config) and trains once; the result is read
    from ladd.results, the compile cache is set by the trainers (issue 24 counted 5 before)."""
    pytest.importorskip("streamlit")
    walk = trace_training_click(tmp_path, trainer=trainer)
    downs = [e[3] for e in walk.descents()]
    assert "ladd.pipeline.run_train" in downs
    assert "ladd.deploy.train_and_evaluate" in downs
    assert "ladd.trainers.train_models" in downs  # the walk reached the engines
    mid = walk.mid_walk_returns()
    assert len(mid) <= 2, mid
