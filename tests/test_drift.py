"""ladd.drift: per-crop divergence from the image's label and the drift rule, on a set built to
drift, with the divergences worked out by hand (JS in nats, as HALD's crop-consistency
analysis: Jiacheng8/HALD @ ffbca04, analysis/crop_consistency/semantic_consistency.py:43-50)."""

from __future__ import annotations

import math

import pytest
import torch

from ladd.drift import DRIFT_JS, crop_drift, js_divergence, labeler_drift, set_drift


def _js(p: list[float], q: list[float]) -> float:
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    kl = lambda x: sum(a * math.log(a / c) for a, c in zip(x, m, strict=True))  # noqa: E731
    return 0.5 * (kl(p) + kl(q))


FULL0 = [0.8, 0.1, 0.1]  # image 0, class 0: the labeler sees class 0 in the whole image
FULL1 = [0.2, 0.5, 0.3]  # image 1, class 2: the labeler sees class 1 in the whole image
CROPS0 = [FULL0, [0.1, 0.8, 0.1], [0.45, 0.5, 0.05], [0.6, 0.3, 0.1]]
CROPS1 = [FULL1, FULL1, [0.1, 0.1, 0.8], [0.5, 0.3, 0.2]]


def _built_to_drift():
    dense = torch.tensor([CROPS0, CROPS1])  # (2, 4, 3)
    labels = torch.tensor([0, 2])
    full = torch.tensor([FULL0, FULL1])
    return dense, labels, full


def test_js_by_hand_and_its_bounds():
    p, q = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]
    got = float(js_divergence(torch.tensor(p), torch.tensor(q)))
    assert got == pytest.approx(_js(p, q), abs=1e-6) == pytest.approx(0.309883, abs=1e-5)
    one_hot = js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert float(one_hot) == pytest.approx(math.log(2), abs=1e-6)  # disjoint: ln 2
    assert float(js_divergence(torch.tensor(p), torch.tensor(p))) == pytest.approx(0, abs=1e-7)


def test_the_rule_flags_local_drift_and_not_a_wrong_whole_image():
    dense, labels, full = _built_to_drift()
    d = crop_drift(dense, labels, full)
    want_js = [[_js(c, FULL0) for c in CROPS0], [_js(c, FULL1) for c in CROPS1]]
    torch.testing.assert_close(d.js, torch.tensor(want_js), atol=1e-6, rtol=0)
    # image 0: crop 1 is another class far from the image (0.31 nats), crop 2 another class
    # just over the line (0.1019 nats), crop 3 the image's class
    # image 1: crops 0-1 are as wrong as the whole image (JS 0: not local), crop 2 is the
    # image's class, crop 3 another class at 0.0637 nats (under the line)
    assert want_js[0][2] == pytest.approx(0.101854, abs=1e-5) and want_js[1][3] < DRIFT_JS
    assert d.drifted.tolist() == [[False, True, True, False], [False, False, False, False]]
    assert d.agrees.tolist() == [[True, False, False, True], [False, False, True, False]]
    s = d.summary()
    assert s["drifted_fraction"] == pytest.approx(2 / 8)
    assert s["images_with_drift"] == pytest.approx(1 / 2)
    assert s["mean_js"] == pytest.approx(sum(map(sum, want_js)) / 8, abs=1e-6)
    assert d.per_crop()["drifted"] == [0.0, 0.5, 0.5, 0.0]
    rows = d.listing()
    assert [(r["image"], r["crop"], r["top_class"]) for r in rows] == [(0, 1, 1), (0, 2, 1)]
    assert rows[0]["js"] == pytest.approx(0.309883, abs=1e-5)
    counts, edges = d.histogram(bins=7)
    assert sum(counts) == 8 and edges[-1] == pytest.approx(math.log(2))
    assert "0.1 nats" in d.rule and d.reference == "full image label"


def test_without_the_full_image_label_the_mean_crop_label_is_the_reference():
    dense, labels, _ = _built_to_drift()
    d = crop_drift(dense, labels)
    mean0 = [sum(c[k] for c in CROPS0) / 4 for k in range(3)]
    assert float(d.js[0, 1]) == pytest.approx(_js(CROPS0[1], mean0), abs=1e-6)
    assert d.reference == "mean crop label"


def test_a_set_streams_its_stored_labels_a_chunk_at_a_time():
    from ladd.sets import LabelAugmentedSet

    g = torch.Generator().manual_seed(0)
    m, k = 30, 1000
    dense = torch.softmax(3 * torch.randn(m, 9, k, generator=g), -1)
    full = torch.softmax(3 * torch.randn(m, k, generator=g), -1)
    la = LabelAugmentedSet(
        images=torch.zeros(m, 3, 8, 8),
        labels=torch.randint(0, k, (m,), generator=g),
        dense=dense,
        n=3,
        r=0.5,
        class_names=tuple(str(i) for i in range(k)),
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
        full_soft=full,
    ).with_codec("topk:5,uint8")
    whole = crop_drift(la.probs(), la.labels, full)
    streamed = set_drift(la, floats=4 * 9 * k)  # 4 images at a time
    torch.testing.assert_close(streamed.js, whole.js)
    assert torch.equal(streamed.drifted, whole.drifted)


def test_a_labelers_drift_compares_its_crops_with_its_full_image():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    x = torch.randn(5, 3, 8, 8)
    labels = torch.tensor([0, 1, 2, 3, 0])
    d = labeler_drift(x, labels, model, 2, 0.75, batch_size=2)
    from ladd.dense import full_image_soft_labels, generate_dense_labels

    want = crop_drift(
        generate_dense_labels(x, model, 2, 0.75), labels, full_image_soft_labels(x, model)
    )
    torch.testing.assert_close(d.js, want.js)
    assert d.js.shape == (5, 4)


def test_drift_of_a_set_refuses_a_labeler_of_another_input_space():
    """ladd drift / ladd stats --drift check each labeler against the set's input space, as
    crop statistics and augment do: a labeler trained under other normalisation statistics
    would compare crops seen through the wrong transform."""
    from ladd.drift import drift_of_set
    from ladd.sets import random_real
    from tests.test_dense import make_labeler

    ds = random_real("shapes", 1, seed=0, limit_per_class=4, image_size=16)
    wrong = make_labeler(ds, mean=(0.4914, 0.4822, 0.4465))
    with pytest.raises(ValueError, match="normalisation mean differs"):
        drift_of_set(ds, [wrong], 2, 0.5, device="cpu")
    (epoch,) = drift_of_set(ds, [make_labeler(ds)], 2, 0.5, device="cpu").values()
    assert epoch.js.shape == (10, 4)
