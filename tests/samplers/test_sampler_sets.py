"""A label-augmented set made with another sampler: its labels are of its own crops, its file
records the sampler, and every training path cuts the same crops (CPU-sized, shapes)."""

from __future__ import annotations

import pytest
import torch

from ladd.data import load_source
from ladd.dense import augment, generate_dense_labels
from ladd.deploy import execute
from ladd.labeler import Labeler, LabelerMeta
from ladd.models import create_model
from ladd.plan import plan_training
from ladd.samplers import cut_boxes, parse_sampler
from ladd.sets import LabelAugmentedSet, random_real
from ladd.training import TrainConfig, build_training_data

SPEC = "multiscale:2@0.75,3@0.5"

pytestmark = pytest.mark.usefixtures("one_thread")


def _labeler(ds) -> Labeler:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model("convnet_d3", 10, 32, width=8).eval()
    meta = LabelerMeta(
        arch="convnet_d3",
        spec=model.spec.to_dict(),
        source="shapes",
        epoch=10,
        mean=ds.mean,
        std=ds.std,
        class_names=ds.class_names,
        seed=0,
        test_accuracy=0.0,
        image_size=32,
    )
    return Labeler(model, meta)


@pytest.fixture(scope="module")
def made():
    ds = random_real("shapes", 1, seed=0, limit_per_class=10)  # 10 images
    lab = _labeler(ds)
    return ds, lab, augment(ds, lab, sampler=SPEC, device="cpu", codec=None)


def test_dense_labels_of_a_sampler_label_its_boxes():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 5))
    x = torch.randn(3, 3, 16, 16)
    got = generate_dense_labels(x, model, 0, 0.0, sampler=SPEC)
    crops = cut_boxes(x, parse_sampler(SPEC).boxes(16)).flatten(0, 1)
    want = torch.softmax(model(crops), 1).reshape(3, 13, 5)
    assert got.shape == (3, 13, 5)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_the_set_records_its_sampler_and_reads_back(made, tmp_path):
    _, _, la = made
    assert (la.sampler, la.n, la.num_crops) == (SPEC, 0, 13)
    assert la.describe()["sampler"] == SPEC
    back = LabelAugmentedSet.load(la.save(tmp_path / "set.ladd", codec="topk:3,uint8"))
    assert back.sampler == SPEC and back.num_crops == 13
    assert back.crop_sampler() == parse_sampler(SPEC)


def test_a_grid_given_as_a_sampler_is_recorded_as_n_and_r(made):
    ds, lab, _ = made
    la = augment(ds, lab, sampler="grid:3,0.5", device="cpu", codec=None)
    assert (la.sampler, la.n, la.r) == (None, 3, 0.5)


def test_training_cuts_the_sets_own_crops_eager_and_lazy(made):
    ds, lab, la = made
    eager = build_training_data(la, "ladd", lazy_inputs=False)
    lazy = build_training_data(la, "ladd", lazy_inputs=True)
    assert len(eager) == len(lazy) == 10 + 10 * 13
    torch.testing.assert_close(lazy.inputs[torch.arange(len(lazy))], eager.inputs)
    want = cut_boxes(la.images, parse_sampler(SPEC).boxes(32)).flatten(0, 1)
    torch.testing.assert_close(eager.inputs[10:], want)
    assert eager.soft.tolist() == [False] * 10 + [True] * 130


def test_a_plain_set_trains_crops_hard_on_the_configs_sampler(made):
    ds, _, _ = made
    plan = plan_training(ds, TrainConfig(mode="crops_hard", sampler="random:6,seed=1"), "cpu")
    assert (plan.config.sampler, plan.config.n, plan.config.r) == ("random:6,seed=1", None, None)
    assert plan.train_record()["sampler"] == "random:6,seed=1"
    data = build_training_data(ds, "crops_hard", sampler=plan.config.sampler)
    assert len(data) == 60


def test_a_sampler_set_trains_end_to_end(made):
    ds, _, la = made
    test = load_source("shapes", "test", limit_per_class=5)
    cfg = TrainConfig(epochs=1, batch_size=64, lr=0.01, seeds=(0,), model_options={"width": 8})
    plan = plan_training(la, cfg, "cpu")
    assert plan.config.sampler == SPEC and plan.train_record()["sampler"] == SPEC
    res = execute(plan, la, test)
    assert res.num_samples == 140 and 0.0 <= res.accuracy_mean <= 1.0


def test_stats_and_drift_of_a_sampler_set_relabel_its_own_crops(made, tmp_path):
    from ladd.crop_stats import crop_stats_across
    from ladd.drift import drift_of_set

    ds, lab, la = made
    stored = drift_of_set(la)  # its stored labels against its stored full-image labels
    (epoch,) = stored
    assert stored[epoch].js.shape == (10, 13)
    again = drift_of_set(la, [lab], device="cpu")  # relabelled afresh: the same labeler
    torch.testing.assert_close(again[10].js, stored[epoch].js, atol=1e-4, rtol=0)
    stats = crop_stats_across(la.to_distilled(), [lab], device="cpu", sampler=la.crop_sampler())
    assert 0.0 < stats[10]["mean_max_prob"] <= 1.0
