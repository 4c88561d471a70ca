"""ladd.compare: which images a CAM grid shows, the grid itself, and its figure files."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import torch

from ladd.compare import (
    GRID_FORMATS,
    PICKS,
    SLIDE_INCHES,
    CamGrid,
    cam_grid,
    cam_grid_on,
    display_images,
    grid_figure_size,
    pick_images,
    predict,
    render_cam_grid,
    run_inputs,
)
from ladd.models import create_model

# Ten images, classes 0..4 twice. A right on 0-4, B right on 2-7.
LABELS = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
PRED_A = np.array([0, 1, 2, 3, 4, 1, 2, 3, 4, 0])
PRED_B = np.array([1, 2, 2, 3, 4, 0, 1, 2, 4, 0])


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("b_right_a_wrong", [5, 6, 7]),
        ("a_right_b_wrong", [0, 1]),
        ("both_wrong", [8, 9]),
        ("both_right", [2, 3, 4]),
        ("random", list(range(10))),
    ],
)
def test_each_rule_returns_exactly_the_qualifying_images(rule, expected):
    got = pick_images(LABELS, PRED_A, PRED_B, rule, k=100)
    assert sorted(got.tolist()) == expected


def test_picked_images_are_ordered_by_class_then_index():
    got = pick_images(LABELS, PRED_A, PRED_B, "random", k=100)
    assert got.tolist() == [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]


def test_a_class_restricts_any_rule_and_the_class_rule_needs_one():
    assert pick_images(LABELS, PRED_A, PRED_B, "class", 5, klass=2).tolist() == [2, 7]
    assert pick_images(LABELS, PRED_A, PRED_B, "b_right_a_wrong", 5, klass=1).tolist() == [6]
    with pytest.raises(ValueError, match="needs a class"):
        pick_images(LABELS, PRED_A, PRED_B, "class", 5)


def test_more_candidates_than_k_draws_k_reproducibly_by_seed():
    labels = np.arange(200) % 10
    preds = labels.copy()
    first = pick_images(labels, preds, preds, "random", 6, seed=3)
    assert len(first) == 6 and len(set(first.tolist())) == 6
    np.testing.assert_array_equal(first, pick_images(labels, preds, preds, "random", 6, seed=3))
    draws = {tuple(pick_images(labels, preds, preds, "random", 6, seed=s)) for s in range(5)}
    assert len(draws) > 1  # the seed changes the draw


def test_no_qualifying_image_gives_an_empty_pick_and_bad_input_raises():
    assert pick_images(LABELS, LABELS, LABELS, "both_wrong", 4).size == 0
    with pytest.raises(ValueError, match="unknown pick"):
        pick_images(LABELS, PRED_A, PRED_B, "ladd_wins", 4)
    with pytest.raises(ValueError, match="differ in length"):
        pick_images(LABELS, PRED_A[:3], PRED_B, "random", 4)
    with pytest.raises(ValueError, match="at least 1"):
        pick_images(LABELS, PRED_A, PRED_B, "random", 0)
    assert set(PICKS) >= {"b_right_a_wrong", "both_wrong", "class", "random"}


def _model(seed: int) -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return create_model("convnet_d3", num_classes=10, image_size=32, width=8)


def test_predict_is_the_models_argmax_and_softmax_max_in_batches():
    model = _model(0).eval()
    x = torch.randn(7, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    got = predict(model, x, batch_size=3)
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1)
    np.testing.assert_array_equal(got.predicted, probs.argmax(1).numpy())
    np.testing.assert_allclose(got.probability, probs.max(1).values.numpy(), rtol=1e-5)


@pytest.fixture(scope="module")
def grid() -> CamGrid:
    pytest.importorskip("pytorch_grad_cam")
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    images = (torch.rand(4, 32, 32, 3, generator=torch.Generator().manual_seed(2)) * 255).byte()
    names = [f"class {i}" for i in range(10)]
    return cam_grid(
        [_model(0), _model(1)],
        [x, x],
        images.numpy(),
        np.array([0, 1, 2, 3]),
        np.array([10, 11, 12, 13]),
        ["A #1 baseline", "B #2 ladd"],
        names,
        method="gradcam",
    )


def test_the_grid_holds_one_map_and_title_per_run_and_image(grid):
    assert grid.shape == (2, 4)
    assert grid.maps.shape == (2, 4, 32, 32) and grid.overlays().shape == (2, 4, 32, 32, 3)
    for r, model in enumerate((_model(0), _model(1))):
        x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        p = predict(model, x)
        np.testing.assert_array_equal(grid.predicted[r], p.predicted)
        for c in range(4):
            name = f"class {p.predicted[c]}"
            assert grid.title(r, c) == f"{name} {p.probability[c]:.2f}"
            assert grid.correct(r, c) == (p.predicted[c] == c)


def test_the_grid_on_a_real_set_takes_its_columns_images_labels_and_class_names():
    """cam_grid_on (what the page, the report and the CLI call) picks the columns from each
    model's whole-set inputs and shows the set's own uint8 images (grey repeated to RGB)."""
    from contextlib import contextmanager
    from types import SimpleNamespace

    pytest.importorskip("pytorch_grad_cam")
    g = torch.Generator().manual_seed(3)
    grey = (torch.rand(6, 1, 32, 32, generator=g) * 255).to(torch.uint8)
    test = SimpleNamespace(
        images=grey,
        labels=torch.tensor([5, 4, 3, 2, 1, 0]),
        info=SimpleNamespace(class_names=[f"c{i}" for i in range(10)]),
    )
    x = torch.randn(6, 3, 32, 32, generator=g)
    inputs = [x, x * 0.5]  # each model's own input space
    models = [_model(0), _model(1)]
    held: list[int] = []

    @contextmanager
    def guard(r: int):
        held.append(r)
        yield

    idx = [4, 1]
    got = cam_grid_on(models, inputs, test, idx, ["A", "B"], explain_true=True, guard=guard)
    assert held == [0, 1]
    np.testing.assert_array_equal(got.indices, idx)
    np.testing.assert_array_equal(got.labels, [1, 4])
    assert got.class_names[4] == "c4" and got.row_names == ("A", "B")
    want = grey[idx].permute(0, 2, 3, 1).repeat(1, 1, 1, 3).numpy()
    np.testing.assert_array_equal(got.images, want)
    np.testing.assert_array_equal(display_images(grey[idx]), want)
    by_hand = cam_grid(
        models,
        [v[idx] for v in inputs],
        want,
        np.array([1, 4]),
        np.array(idx),
        ["A", "B"],
        test.info.class_names,
        explain_true=True,
    )
    np.testing.assert_allclose(got.maps, by_hand.maps, atol=1e-6)
    np.testing.assert_array_equal(got.predicted, by_hand.predicted)


def test_rows_must_share_one_method(grid):
    from ladd.cam import CamResult

    res = [
        CamResult(grid.maps[i], grid.predicted[i], grid.probability[i], grid.predicted[i], m)
        for i, m in enumerate(("gradcam", "eigencam"))
    ]
    with pytest.raises(ValueError, match="different CAM methods"):
        CamGrid.from_results(grid.images, grid.labels, grid.indices, res, ["a", "b"], ["c"] * 10)


def test_figure_fits_a_slide_for_any_grid_shape():
    for rows, cols in [(1, 1), (3, 6), (3, 12), (6, 2)]:
        w, h = grid_figure_size(rows, cols)
        assert w <= SLIDE_INCHES[0] + 1e-6 and h <= SLIDE_INCHES[1] + 1e-6
        assert w == pytest.approx(SLIDE_INCHES[0], rel=1e-3) or h == pytest.approx(
            SLIDE_INCHES[1], rel=1e-3
        )


def test_png_scale_sets_pixels_and_svg_pdf_are_what_they_say(grid):
    from PIL import Image

    sizes = {}
    for scale in (2, 3):
        png = render_cam_grid(grid, "png", scale=scale)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        sizes[scale] = Image.open(io.BytesIO(png)).size
    w, h = grid_figure_size(3, 4)  # an input row + two runs, four images
    assert sizes[2] == pytest.approx((w * 200, h * 200), abs=2)
    assert sizes[3] == pytest.approx((w * 300, h * 300), abs=2)
    svg = render_cam_grid(grid, "svg").decode("utf-8")
    assert "<svg" in svg and grid.title(0, 0) in svg  # titles are text, not pixels
    assert render_cam_grid(grid, "pdf")[:5] == b"%PDF-"
    assert set(GRID_FORMATS) == {"png", "svg", "pdf"}
    with pytest.raises(ValueError, match="unknown figure format"):
        render_cam_grid(grid, "gif")


def test_run_inputs_use_the_runs_set_statistics_not_the_sources(tmp_path):
    from ladd.data import load_source
    from ladd.data.imageset import normalise
    from ladd.sets import random_real
    from ladd.summaries import RunSummary

    test = load_source("shapes", "test", limit_per_class=1, cache_dir=tmp_path / "cache")
    ds = random_real("shapes", 1, cache_dir=tmp_path / "cache", limit_per_class=2)
    # A set normalised with other statistics than the source's (as GLaD's sets are).
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.3, 0.25)
    pixels = ds.images * torch.tensor(ds.std).view(3, 1, 1) + torch.tensor(ds.mean).view(3, 1, 1)
    other = replace(
        ds, images=(pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    )
    other = replace(other, mean=mean, std=std)
    other.save_mtt(tmp_path / "set")
    run = RunSummary(id=7, kind="train", status="done", created=0.0, set_path=str(tmp_path / "set"))
    got = run_inputs(run, test)
    torch.testing.assert_close(got, normalise(test.images, mean, std))
    assert not torch.allclose(got, normalise(test.images, test.info.mean, test.info.std))
    with pytest.raises(ValueError, match="does not record its set"):
        run_inputs(replace(run, set_path=None), test)


def test_run_inputs_read_the_set_as_the_run_recorded_it(tmp_path):
    """A bare image tensor has no statistics of its own: the run's recorded reading (mean/std,
    class count) is what tells them, so the reload must use it, not the defaults."""
    from ladd.data import load_source
    from ladd.data.imageset import normalise
    from ladd.sets.inputs import SetReading
    from ladd.summaries import RunSummary

    test = load_source("shapes", "test", limit_per_class=1, cache_dir=tmp_path / "cache")
    path = tmp_path / "bare.pt"
    torch.save(torch.randn(10, 3, 32, 32), path)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.3, 0.25)
    reading = SetReading(source="shapes", mean=mean, std=std, num_classes=10).to_dict()
    run = RunSummary(
        id=3, kind="train", status="done", created=0.0, set_path=str(path), reading=reading
    )
    got = run_inputs(run, test, cache_dir=tmp_path / "cache")
    torch.testing.assert_close(got, normalise(test.images, mean, std))
    # Without the record the set cannot be read at all (its normalisation is unknown).
    with pytest.raises(Exception, match="normalisation unknown"):
        run_inputs(replace(run, reading=None), test)
