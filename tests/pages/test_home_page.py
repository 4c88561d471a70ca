"""The home page: device, workspace, the demo and what it trained."""

from __future__ import annotations

import threading
import time

import pytest
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


@pytest.fixture
def building_demo(demo):
    """A fake demo job that stays running until released (the registry's one slot permitting)."""
    from app.jobs import registry

    release = threading.Event()

    def work(job):
        job.progress(stage="demo", step=40, total=100, message="ladd training")
        release.wait(120)

    job = registry().submit("demo", "Demo (shapes, small)", work)
    deadline = time.time() + 120  # another job may hold the one slot for a while
    while job.status != "running":
        assert job.status == "queued" and time.time() < deadline
        time.sleep(0.05)
    yield job
    release.set()
    registry().wait(job.id, timeout=30)


def _counts_drawn(monkeypatch) -> list[tuple[str, float | None]]:
    """(metric label, run_every of the fragment it was drawn in, None outside one) per metric the
    home page draws: a fragment with run_every redraws itself without a page reload."""
    import streamlit as st
    from streamlit.delta_generator import DeltaGenerator

    drawn: list[tuple[str, float | None]] = []
    inside: list[float | None] = [None]
    real_fragment, real_metric = st.fragment, DeltaGenerator.metric

    def fragment(func=None, *, run_every=None, **kw):
        def wrap(f):
            def body(*a, **k):
                inside[0] = run_every
                try:
                    return f(*a, **k)
                finally:
                    inside[0] = None

            body.__name__ = body.__qualname__ = f.__qualname__
            return real_fragment(body, run_every=run_every, **kw)

        return wrap(func) if func is not None else wrap

    def metric(self, label, *a, **k):
        drawn.append((label, inside[0]))
        return real_metric(self, label, *a, **k)

    monkeypatch.setattr(st, "fragment", fragment)
    monkeypatch.setattr(DeltaGenerator, "metric", metric)
    return drawn


def test_home_counts_refresh_themselves_while_a_demo_builds(building_demo, monkeypatch):
    """Sets and runs a building demo adds appear without a reload: while a demo job runs the
    counts are drawn in a fragment that reruns itself every few seconds, and show what the
    workspace holds."""
    drawn = _counts_drawn(monkeypatch)
    at = open_page()
    live = dict(drawn)
    assert live["Sets in workspace"] and live["Runs recorded"], drawn
    assert int(metric(at, "Sets in workspace")) >= 2  # the demo's random-real and dense sets
    assert int(metric(at, "Runs recorded")) >= 4  # labeler, distill, augment, 2 train runs
    assert "ladd training" in " ".join(c.value for c in at.caption)


def test_home_counts_are_drawn_once_when_no_demo_builds(demo, monkeypatch):
    from app.jobs import registry

    assert not registry().active("demo")
    drawn = _counts_drawn(monkeypatch)
    open_page()
    assert ("Sets in workspace", None) in drawn and ("Runs recorded", None) in drawn
