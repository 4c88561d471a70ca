"""ladd.cropped: training inputs cut when a batch is drawn are the eager sample list, sample for
sample, and train every engine to the eager run's weights (issue 27: 224 px at 1000 classes
cannot hold 26 float images per stored one)."""

from __future__ import annotations

import pytest
import torch
from plans import plan

from ladd.cropped import CroppedInputs
from ladd.data.imageset import exact_pixels
from ladd.sets import DistilledSet
from ladd.trainers import train_models
from ladd.training import TrainConfig, build_training_data

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)


def _set(m: int = 12, size: int = 20, k: int = 4, eight_bit: bool = True) -> DistilledSet:
    g = torch.Generator().manual_seed(0)
    if eight_bit:  # pixels as an 8-bit file holds them, normalised as the readers do
        p = torch.randint(0, 256, (m, 3, size, size), generator=g).float() / 255
        images = (p - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    else:
        images = torch.randn(m, 3, size, size, generator=g)
    return DistilledSet(
        images=images,
        labels=torch.arange(m) % k,
        soft_labels=None,
        lr=None,
        mean=MEAN,
        std=STD,
        class_names=tuple(f"c{i}" for i in range(k)),
        format="tensor",
    )


@pytest.mark.parametrize("eight_bit", [True, False])
@pytest.mark.parametrize(("mode", "n", "r"), [("crops_hard", 5, 0.625), ("crops_hard", 3, 0.7)])
def test_every_sample_is_the_eager_lists(mode, n, r, eight_bit) -> None:
    ds = _set(eight_bit=eight_bit)
    eager = build_training_data(ds, mode, n=n, r=r, lazy_inputs=False)
    lazy = build_training_data(ds, mode, n=n, r=r, lazy_inputs=True)
    assert isinstance(lazy.inputs, CroppedInputs) and isinstance(eager.inputs, torch.Tensor)
    assert lazy.inputs.images.dtype == (torch.uint8 if eight_bit else torch.float32)
    assert lazy.inputs.shape == eager.inputs.shape and len(lazy) == len(eager)
    assert (lazy.num_full, lazy.num_crops) == (eager.num_full, eager.num_crops)
    assert torch.equal(lazy.targets, eager.targets)
    every = torch.arange(len(eager))
    got = lazy.inputs[every]
    # float images: the same gather and resize, bit for bit; uint8: normalised after the
    # (linear) bilinear resize instead of before, float32 rounding apart.
    tol = 1e-5 if eight_bit else 0.0
    assert (got - eager.inputs).abs().max().item() <= tol
    # any index shape, shuffled, with repeats: the stacked engine draws (S, B)
    idx = torch.randint(0, len(eager), (3, 7), generator=torch.Generator().manual_seed(1))
    assert lazy.inputs[idx].shape == (3, 7, 3, 20, 20)
    assert (lazy.inputs[idx] - eager.inputs[idx]).abs().max().item() <= tol
    assert (lazy.inputs[:5] - eager.inputs[:5]).abs().max().item() <= tol


def test_lazy_inputs_hold_the_stored_images_once() -> None:
    ds = _set(m=12, size=20)
    lazy = build_training_data(ds, "crops_hard", n=5, r=0.625, lazy_inputs=True)
    eager = build_training_data(ds, "crops_hard", n=5, r=0.625, lazy_inputs=False)
    assert lazy.inputs.stored_bytes == 12 * 3 * 20 * 20  # uint8, once
    # crops_hard trains on the crops alone (no full image): 12 x 25 float crops, 25 x the images
    assert eager.inputs.numel() == 12 * 25 * 3 * 20 * 20
    assert eager.inputs.numel() * eager.inputs.element_size() == 100 * lazy.inputs.stored_bytes
    # channels_last batches for NHWC engines
    cl = lazy.inputs.contiguous(memory_format=torch.channels_last)
    assert cl[torch.arange(4)].is_contiguous(memory_format=torch.channels_last)


def test_the_limit_that_refused_a_large_set_now_draws_it_lazily(monkeypatch) -> None:
    ds = _set(m=12, size=20)
    monkeypatch.setenv("LADD_MAX_CROP_BYTES", "1M")  # the eager list needs ~1.1 MB
    data = build_training_data(ds, "crops_hard", n=5, r=0.625)
    assert isinstance(data.inputs, CroppedInputs)
    monkeypatch.setenv("LADD_MAX_CROP_BYTES", "4G")
    assert isinstance(build_training_data(ds, "crops_hard", n=5, r=0.625).inputs, torch.Tensor)


def test_eight_bit_pixels_are_recognised_only_when_exact() -> None:
    ds = _set(eight_bit=True)
    p = exact_pixels(ds.images, ds.mean, ds.std, chunk=5)
    assert p is not None and p.dtype == torch.uint8
    back = (p.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(
        1, 3, 1, 1
    )
    assert (back - ds.images).abs().max() < 1e-5
    assert exact_pixels(_set(eight_bit=False).images, MEAN, STD) is None
    assert exact_pixels(ds.images, None, None) is None
    assert exact_pixels(ds.images, (0.5, 0.5, 0.5), STD) is None  # another normalisation


def test_refusals() -> None:
    with pytest.raises(ValueError, match="mean and std"):
        CroppedInputs(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 1, 1, 2, 0.5)
    with pytest.raises(ValueError, match="square"):
        CroppedInputs(torch.zeros(2, 3, 8, 6), 1, 1, 2, 0.5)
    with pytest.raises(ValueError, match="at least one"):
        CroppedInputs(torch.zeros(2, 3, 8, 8), 0, 0, 2, 0.5)


@pytest.mark.parametrize("engine", ["reference", "sequential", "stacked"])
def test_every_engine_trains_the_eager_runs_weights_from_lazy_inputs(engine, one_thread) -> None:
    """Float inputs: the lazily cut batches are the eager ones bit for bit, so the trained
    weights are equal (tolerance 0: the engines see the same tensors)."""
    ds = _set(m=8, size=16, eight_bit=False)
    cfg = TrainConfig(
        arch="convnet_d2",
        mode="crops_hard",
        epochs=2,
        lr=0.05,
        batch_size=32,
        seeds=(0, 1),
        protocol="mtt",
        n=3,
        r=0.625,
        model_options={"width": 4},
    )
    p = plan(ds, cfg, engine)
    runs = [
        train_models(build_training_data(ds, cfg.mode, n=3, r=0.625, lazy_inputs=lazy), p)
        for lazy in (False, True)
    ]
    for a, b in zip(runs[0].models, runs[1].models, strict=True):
        for (k, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(p, q), k


def test_a_full_images_only_mode_goes_lazy_past_the_limit_too(monkeypatch) -> None:
    """The baseline at ImageNet-1K, IPC 10, 224 px is 6 GB of float images: past the limit they
    stay uint8 and are normalised per batch, the same samples."""
    ds = _set(m=12, size=20)
    eager = build_training_data(ds, "baseline", lazy_inputs=False)
    monkeypatch.setenv("LADD_MAX_CROP_BYTES", "20K")  # 12 x 3 x 20 x 20 floats twice: 115 KB
    lazy = build_training_data(ds, "baseline")
    assert isinstance(lazy.inputs, CroppedInputs) and lazy.inputs.images.dtype == torch.uint8
    assert (lazy.num_full, lazy.num_crops, len(lazy)) == (12, 0, 12)
    every = torch.arange(12)
    assert (lazy.inputs[every] - eager.inputs).abs().max().item() <= 1e-5
    assert torch.equal(lazy.targets, eager.targets)
    monkeypatch.setenv("LADD_MAX_CROP_BYTES", "4G")
    assert isinstance(build_training_data(ds, "baseline").inputs, torch.Tensor)
