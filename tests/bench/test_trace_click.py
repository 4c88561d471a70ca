"""bench/trace_click.py: the dashboard's training click and `ladd train` walk down the layers
with the config settled once (issue 34: "down to the loop and back with at most two climbs to
a higher layer, the config crossing no layer twice")."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/ is not installed
from bench.trace_click import (  # noqa: E402
    LAYER_NAMES,
    Walk,
    layer_of,
    trace_ladd_train,
    trace_training_click,
)

PATH = ["ladd.plan.plan_training", "ladd.pipeline.run_train", "ladd.deploy.execute",
        "ladd.trainers.train_models"]  # fmt: skip


def test_layers_are_the_walks_modules_and_helpers_are_not():
    assert layer_of("app.tasks") == 0 and layer_of("ladd.cli") == 0
    assert layer_of("ladd.plan") == 1 and layer_of("ladd.pipeline") == 2
    assert layer_of("ladd.deploy") == 3 and layer_of("ladd.trainers.loop") == 4
    for helper in ("ladd.training", "ladd.results", "ladd.store", "ladd.progress", "torch.nn"):
        assert layer_of(helper) is None


def test_only_climbs_followed_by_another_descent_count_and_crossings_are_counted_per_layer():
    walk = Walk()
    walk.events = [
        ("down", 0, 1, "settle", "config"),
        ("up", 1, 0, "settle", ""),  # mid-walk: the front end goes down again after it
        ("down", 0, 2, "record", "plan"),
        ("down", 2, 3, "execute", "plan"),
        ("down", 3, 4, "train", "plan"),
        ("up", 4, 3, "train", ""),  # the final unwinding
        ("up", 3, 2, "execute", ""),
    ]
    assert [e[3] for e in walk.mid_walk_returns()] == ["settle"]
    assert len(walk.descents()) == 4 and len(walk.crossings()) == 4
    assert walk.layers_crossed_twice() == []
    walk.events.insert(3, ("down", 2, 3, "settle again", "config"))  # the old re-settling
    assert walk.layers_crossed_twice() == [3]
    assert "layers it entered twice: ladd.deploy" in walk.lines()[-1]


def _check(walk: Walk) -> None:
    print(f"\n{chr(10).join(walk.lines())}")  # the walk, in the test's output (pytest -s)
    downs = [e[3] for e in walk.descents()]
    assert [d for d in downs if d in PATH] == PATH  # down to the loop, in order, once each
    crossing = [(LAYER_NAMES[b], what) for _, b, what, _ in walk.crossings()]
    assert crossing == [
        ("ladd.plan", "ladd.plan.plan_training"),
        ("ladd.pipeline", "ladd.pipeline.run_train"),
        ("ladd.deploy", "ladd.deploy.execute"),
        ("ladd.trainers", "ladd.trainers.train_models"),
    ]
    assert walk.layers_crossed_twice() == []  # the config enters each layer once
    assert walk.crossings()[0][3] == "config" and {c[3] for c in walk.crossings()[1:]} == {"plan"}
    mid = walk.mid_walk_returns()
    assert len(mid) <= 2, mid
    assert walk.events[-1][0] == "up"  # and back


@pytest.mark.parametrize("trainer", ["fast", "reference"])
def test_the_training_click_settles_once_and_climbs_at_most_twice(tmp_path, trainer):
    """Traced with sys.setprofile from app.tasks.plan_training_job (the click) through the job
    submit_training starts, to the job's end."""
    pytest.importorskip("streamlit")
    _check(trace_training_click(tmp_path, trainer=trainer))


def test_ladd_train_settles_once_and_climbs_at_most_twice(tmp_path):
    """Traced with sys.setprofile from the command line's `train` to its end."""
    _check(trace_ladd_train(tmp_path))
