"""ladd.report: the one-file HTML comparison of two runs, and the figures it shares with pages."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from ladd.report import (
    CamOptions,
    Series,
    build_report,
    report_command,
    series_from_result,
    training_curves,
)

pytest.importorskip("plotly")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, one_thread):
    """A workspace with two finished train runs on one random-real shapes set: a baseline
    (2 seeds) and crops with hard labels (1 seed)."""
    from ladd.data import load_source
    from ladd.distill import RandomConfig
    from ladd.pipeline import run_distill, run_train
    from ladd.plan import plan_training
    from ladd.store import Workspace
    from ladd.training import TrainConfig

    ws = Workspace(tmp_path_factory.mktemp("report-ws"))
    train = load_source("shapes", "train", limit_per_class=4, cache_dir=ws.cache_dir)
    test = load_source("shapes", "test", limit_per_class=6, cache_dir=ws.cache_dir)
    made = run_distill(ws, "shapes", "random", RandomConfig(ipc=2, seed=0), train_set=train)
    ids = []
    for mode, seeds in (("baseline", (0, 1)), ("crops_hard", (0,))):
        cfg = TrainConfig(
            mode=mode, epochs=3, seeds=seeds, n=3, model_options={"width": 8}, trainer="reference"
        )
        plan = plan_training(made.dataset, cfg, "cpu")
        run_id, _ = run_train(
            ws, plan, made.dataset, test, set_path=made.path, source="shapes", label=f"t {mode}"
        )
        ids.append(run_id)
    return ws, ids[0], ids[1]


def test_the_report_is_one_offline_file_with_configs_tables_figures_and_cams(two_runs):
    pytest.importorskip("pytorch_grad_cam")
    ws, a, b = two_runs
    text = build_report(ws, a, b, cam=CamOptions(pick="random", k=4, per_class=2))
    # Self-contained: plotly.js inline, nothing loaded from elsewhere.
    assert not re.search(r"<script[^>]+src=", text)
    assert not re.search(r"<link[^>]+href=", text)
    assert text.count("Plotly.newPlot") == 5  # bars, difference, 2 confusions, curves
    assert "<img class='cam' alt='CAM grid' src='data:image/png;base64," in text
    # Both runs by name, their configs side by side, every class in the per-class table.
    assert f"A #{a} t baseline" in text and f"B #{b} t crops_hard" in text
    assert "config: mode</th><td>baseline</td><td>crops_hard</td>" in text
    from ladd.data.shapes import SHAPE_CLASSES

    for name in SHAPE_CLASSES:
        assert f"<tr><td>{name}</td>" in text
    assert "GradCAM of the predicted class; 4 image(s), at random" in text


def test_a_given_grid_image_is_embedded_and_cams_can_be_left_out(two_runs):
    import base64

    ws, a, b = two_runs
    png = b"\x89PNG\r\n\x1a\nnot really"
    text = build_report(ws, a, b, cam=None, cam_png=png, cam_note="as shown on the page")
    assert base64.b64encode(png).decode() in text and "as shown on the page" in text
    bare = build_report(ws, a, b, cam=None)
    assert "<img class='cam'" not in bare and "No CAM grid in this report." in bare


def test_a_grid_that_cannot_be_made_is_a_note_not_an_error(two_runs):
    ws, a, b = two_runs
    text = build_report(ws, a, b, cam=CamOptions(method="no-such-cam"))
    assert "The CAM grid could not be made" in text and "unknown CAM method" in text


def test_report_command_writes_the_file_and_refuses_bad_input(two_runs, tmp_path):
    ws, a, b = two_runs
    out = report_command(a, b, tmp_path / "r.html", workspace=ws.root, cams=False)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError, match="unknown pick"):
        report_command(a, b, tmp_path / "x.html", workspace=ws.root, pick="best")
    with pytest.raises(KeyError):
        report_command(a, 999, tmp_path / "x.html", workspace=ws.root, cams=False)
    labeler_like = ws.db.list_runs("distill")[0].id
    with pytest.raises(ValueError, match="compares train runs"):
        build_report(ws, a, labeler_like, cam=None)


def test_series_band_is_mean_min_max_over_the_seeds_that_have_a_value():
    s = Series("run", (1, 2, 3), ((1.0, 2.0, math.nan), (3.0, 6.0, math.nan)))
    x, mean, low, high = s.band()
    np.testing.assert_array_equal(x, [1, 2])  # epoch 3: no seed has a value yet
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(low, [1.0, 2.0])
    np.testing.assert_allclose(high, [3.0, 6.0])
    live = Series.from_points("job", {0: {2: 0.5, 4: 0.6}, 1: {2: 0.7}})
    assert live.epochs == (2, 4) and live.values[1][0] == 0.7 and math.isnan(live.values[1][1])
    with pytest.raises(ValueError, match="one value per epoch"):
        Series("bad", (1, 2), ((1.0,),))


def test_series_from_a_result_puts_epochs_on_x_and_the_final_accuracy_at_the_end():
    result = {
        "loss_curves": [[2.0, 1.5, 1.0], [2.2, 1.4, 1.1]],
        "per_seed": [0.4, 0.5],
        "config": {"epochs": 3},
        "monitor": [{"epoch": 1, "accuracy": [0.2, 0.3]}],
    }
    loss, acc = series_from_result("r", result)
    assert loss.epochs == (1, 2, 3) and loss.values == ((2.0, 1.5, 1.0), (2.2, 1.4, 1.1))
    assert acc.epochs == (1, 3) and acc.values == ((0.2, 0.4), (0.3, 0.5))


def test_training_curves_draw_a_band_for_several_seeds_and_match_colours_by_run():
    two = Series("A", (1, 2), ((1.0, 0.5), (1.2, 0.7)))
    one = Series("B", (1, 2), ((0.9, 0.4),))
    acc_a = Series("A", (2,), ((0.3,), (0.4,)))
    fig = training_curves([two, one], [acc_a])
    bands = [t for t in fig.data if t.fill == "toself"]
    lines = [t for t in fig.data if t.fill != "toself"]
    assert len(bands) == 2  # A's loss and A's accuracy; B has one seed: no band
    assert [list(t.x) for t in lines] == [[1, 2], [1, 2], [2]]
    assert lines[0].line.color == lines[2].line.color != lines[1].line.color
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.xaxis2.title.text == "epoch"


def test_ladd_report_cli_writes_once_and_replaces_only_with_force(two_runs, tmp_path):
    from typer.testing import CliRunner

    from ladd.cli import app

    ws, a, b = two_runs
    out = tmp_path / "ab.html"
    args = ["report", str(a), str(b), "--out", str(out), "--workspace", str(ws.root), "--no-cams"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "plotly" in html.lower()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "already exists" in again.output
    assert out.read_text(encoding="utf-8") == html  # untouched
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0
    bad = CliRunner().invoke(app, [*args[:4], str(tmp_path / "ab.pdf"), *args[5:]])
    assert bad.exit_code == 1 and "HTML" in bad.output


def test_the_report_at_1000_classes_has_tables_not_1000_bars_or_heatmaps():
    """Above 20 classes the per-class part is a worst-first table, the sorted accuracies and
    each run's top confusions (largest first), instead of a bar per class and two 1000 x 1000
    heatmaps; at 10 classes it is as before."""
    import numpy as np

    from ladd.report import per_class_section

    k = 1000
    names = [f"n{i:08d}" for i in range(k)]
    rng = np.random.default_rng(0)
    acc = rng.uniform(size=(2, k))
    conf = np.diag(np.full(k, 5))
    conf[3, 7], conf[9, 2], conf[4, 4] = 9, 4, 1  # the two largest off-diagonal cells
    result = {"per_class": acc.tolist(), "confusion": conf.tolist()}
    table, figures, heatmaps, confusions = per_class_section(names, ("A", "B"), (result, result))
    assert heatmaps == [] and [t for t, _ in figures] == ["Per-class accuracy, worst first"]
    worst = int(np.argmin(acc.mean(axis=0)))
    assert table.index(names[worst]) < table.index(names[int(np.argmax(acc.mean(axis=0)))])
    assert confusions.count("<h3>") == 2
    first, second = confusions.index(">n00000003<"), confusions.index(">n00000009<")
    assert first < second and ">9</td>" in confusions  # 9 images, then 4
    assert len(table) + len(confusions) < 200_000
    few = per_class_section(names[:10], ("A", "B"), ({"per_class": [[0.5] * 10],
                            "confusion": np.eye(10, dtype=int).tolist()},) * 2)  # fmt: skip
    assert few[3] is None and len(few[2]) == 2 and len(few[1]) == 2
