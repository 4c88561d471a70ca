"""ladd.cam: maps of every registered architecture, for each CAM method."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ladd.cam import CAM_METHODS, compute_cam, explain, overlay
from ladd.models import create_model, list_models

pytest.importorskip("pytorch_grad_cam")


def _model(name: str) -> torch.nn.Module:
    opts = {"width": 16} if name.startswith("convnet") else {}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model(name, num_classes=4, image_size=32, **opts)


@pytest.mark.parametrize("name", list_models())
def test_gradcam_maps_are_unit_range_at_input_size_for_every_model(name):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    maps = compute_cam(_model(name), x, targets=[0, 3], method="gradcam")
    assert maps.shape == (2, 32, 32) and maps.dtype == np.float32
    assert 0.0 <= maps.min() and maps.max() <= 1.0


@pytest.mark.parametrize("method", list(CAM_METHODS))
def test_every_method_explains_each_image_of_a_batch(method):
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    res = explain(_model("convnet_d3"), x, targets=None, method=method)
    assert res.maps.shape == (3, 32, 32)
    # One target per image: no image is left with an all-zero map.
    assert all(res.maps[i].max() > 0 for i in range(3))
    np.testing.assert_array_equal(res.targets, res.predicted)
    assert ((res.probability > 0) & (res.probability <= 1)).all()


def test_prediction_and_probability_match_the_model():
    model = _model("convnet_d3").eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        probs = torch.softmax(model(x), 1)
    res = explain(model, x, targets=1)
    np.testing.assert_array_equal(res.predicted, probs.argmax(1).numpy())
    np.testing.assert_allclose(res.probability, probs.max(1).values.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(res.targets, [1, 1])


def test_bad_method_and_target_raise_clear_errors():
    model, x = _model("convnet_d3"), torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown CAM method"):
        explain(model, x, method="scorecam-ish")
    with pytest.raises(ValueError, match="out of range"):
        explain(model, x, targets=9)
    with pytest.raises(ValueError, match="one per image"):
        explain(model, torch.randn(2, 3, 32, 32), targets=[0, 1, 2])


def test_overlay_blends_into_uint8_rgb():
    img = np.zeros((8, 8, 3), np.uint8)
    mask = np.zeros((8, 8), np.float32)
    mask[0, 0] = 1.0
    out = overlay(img, mask, alpha=0.5)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] > out[0, 0, 2]  # hot = red
    assert out[7, 7, 2] > out[7, 7, 0]  # cold = blue
    with pytest.raises(ValueError):
        overlay(img, np.zeros((4, 4)))
