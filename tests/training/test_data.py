"""ladd.training.data and .losses: the flat training set of each label mode (paper Table 6),
the full images' labels (hard by default, a set's own soft labels as an option), the loss scale
(batch mean or Eq. 5's per-image sum) and the soft-target cross-entropy."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from plans import plan

from ladd.dense import augment
from ladd.sets import random_real
from ladd.trainers.reference import train_reference
from ladd.training import (
    MODES,
    TrainConfig,
    build_training_data,
    init_model,
    loss_weight,
    soft_cross_entropy,
)
from tests.test_dense import make_labeler


def _tiny_la():
    from ladd.sets import LabelAugmentedSet

    g = torch.Generator().manual_seed(0)
    m, k, n = 4, 3, 2
    dense = torch.softmax(torch.randn(m, n * n, k, generator=g), -1)
    return LabelAugmentedSet(
        images=torch.randn(m, 3, 8, 8, generator=g),
        labels=torch.tensor([0, 1, 2, 0]),
        dense=dense,
        n=n,
        r=0.5,
        class_names=("a", "b", "c"),
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        full_soft=torch.softmax(torch.randn(m, k, generator=g), -1),
    )


def test_table6_modes_build_the_samples_they_describe():
    la = _tiny_la()
    hard = F.one_hot(la.labels, 3).float()
    both = build_training_data(la, "full_hard_soft")
    assert (both.num_full, both.num_crops, len(both)) == (8, 0, 8)
    torch.testing.assert_close(both.inputs[:4], la.images)
    torch.testing.assert_close(both.inputs[4:], la.images)
    torch.testing.assert_close(both.targets[:4], hard)
    torch.testing.assert_close(both.targets[4:], la.full_soft)  # the labeler's full-image label
    crops = build_training_data(la, "crops_hard_dense")
    assert (crops.num_full, crops.num_crops, len(crops)) == (0, 32, 32)
    torch.testing.assert_close(crops.inputs[:16], crops.inputs[16:])
    torch.testing.assert_close(crops.targets[:16], hard.repeat_interleave(4, 0))
    torch.testing.assert_close(crops.targets[16:], la.dense.reshape(16, 3))
    ladd = build_training_data(la, "ladd")
    torch.testing.assert_close(ladd.targets[:4], hard)  # Eq. 5: one-hot full-image labels
    assert {m.name for m in MODES.values()} >= {"full_hard_soft", "crops_hard_dense"}
    assert all(m.description for m in MODES.values())


def test_image_sum_loss_is_the_batch_mean_times_samples_per_image():
    la = _tiny_la()
    data = build_training_data(la, "ladd")  # 4 images + 16 crops: 5 samples per image
    assert loss_weight(TrainConfig(loss="mean"), data) == 1.0
    assert loss_weight(TrainConfig(loss="image_sum"), data) == 5.0
    assert loss_weight(TrainConfig(loss="image_sum"), build_training_data(la, "baseline")) == 1.0
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="sum")


def test_image_sum_scales_the_updates_by_samples_per_image():
    la = _tiny_la()
    data = build_training_data(la, "ladd")  # 5 samples per image
    base = dict(arch="convnet_d1", epochs=1, lr=1e-3, batch_size=64, seeds=(0,), dsa=False)
    base.update(momentum=0.0, weight_decay=0.0, model_options={"width": 4}, protocol="mtt")
    spec = plan(data, TrainConfig(**base)).spec
    start = [p.detach().clone() for p in init_model(spec, 0).parameters()]
    moved = {}
    for loss in ("mean", "image_sum"):
        m = train_reference(data, plan(data, TrainConfig(loss=loss, **base))).models[0]
        moved[loss] = torch.cat(
            [(p.detach() - s).flatten() for p, s in zip(m.parameters(), start, strict=True)]
        )
    # two small plain-SGD steps: the move is linear in the loss scale up to second order
    want = 5.0 * moved["mean"]
    assert float((moved["image_sum"] - want).norm() / want.norm()) < 2e-2


def test_training_data_sizes_per_mode() -> None:
    ds = random_real("shapes", 10, seed=0, limit_per_class=20)
    la = augment(ds, make_labeler(ds), 5, 0.625, device="cpu", codec=None)
    sizes = {m: len(build_training_data(la, m)) for m in MODES}
    # "100 full images + 2,500 crops = 2,600 samples per epoch"
    assert sizes == {
        "baseline": 100,
        "full_soft": 100,
        "full_hard_soft": 200,  # each full image twice: hard label, labeler's soft label
        "crops_hard": 2500,
        "crops_dense": 2500,
        "crops_hard_dense": 5000,  # each crop twice: hard label, dense label
        "ladd": 2600,
    }
    data = build_training_data(la, "ladd")
    assert (data.num_full, data.num_crops, data.num_classes) == (100, 2500, 10)
    torch.testing.assert_close(data.targets[:100], F.one_hot(la.labels, 10).float())
    torch.testing.assert_close(data.targets[100:125], la.dense[0])  # image 0's crops, raster order
    torch.testing.assert_close(data.targets.sum(1), torch.ones(2600))
    assert data.inputs.shape == (2600, 3, 32, 32)
    with pytest.raises(ValueError, match="dense labels"):
        build_training_data(ds, "ladd")
    assert len(build_training_data(ds, "crops_hard", n=2, r=0.5)) == 400
    with pytest.raises(ValueError, match="unknown mode"):
        build_training_data(la, "nonsense")


def test_soft_cross_entropy_matches_torch() -> None:
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 1, 1, 2])
    torch.testing.assert_close(
        soft_cross_entropy(logits, F.one_hot(y, 4).float()), F.cross_entropy(logits, y)
    )
    probs = torch.softmax(torch.randn(5, 4), 1)
    torch.testing.assert_close(soft_cross_entropy(logits, probs), F.cross_entropy(logits, probs))


def test_a_sets_soft_labels_are_an_option_and_hard_labels_the_default() -> None:
    """Eq. 5 writes one-hot labels for the full images: a set's own soft labels (DATM's) are
    used only with full_labels="set_soft" ("set", its older name, reads the same with a
    DeprecationWarning), in baseline and LADD modes alike."""
    ds = random_real("shapes", 2, seed=0, limit_per_class=20)
    la = augment(ds, make_labeler(ds), 3, 0.625, device="cpu", codec=None)
    logits = torch.randn(len(ds), 10, generator=torch.Generator().manual_seed(0))
    datm = replace(ds, soft_labels=logits, lr=0.03)
    hard = F.one_hot(ds.labels, 10).float()
    torch.testing.assert_close(build_training_data(datm, "baseline").targets, hard)
    data = build_training_data(datm, "baseline", full_labels="set_soft")
    with pytest.warns(DeprecationWarning, match="'set_soft'"):
        old = TrainConfig(full_labels="set")  # the older spelling, read by the config
    assert old.full_labels == "set_soft"
    again = build_training_data(datm, "baseline", full_labels=old.full_labels)
    assert torch.equal(again.targets, data.targets)
    with pytest.raises(ValueError, match="unknown full_labels 'set'; use one of hard, set_soft"):
        build_training_data(datm, "baseline", full_labels="set")  # never hard labels silently
    torch.testing.assert_close(data.targets, torch.softmax(logits, 1))
    la_datm = replace(la, soft_labels=logits)
    m = len(ds)
    torch.testing.assert_close(build_training_data(la_datm, "ladd").targets[:m], hard)
    soft = build_training_data(la_datm, "ladd", full_labels="set_soft").targets[:m]
    torch.testing.assert_close(soft, torch.softmax(logits, 1))
