"""Deployment training: the flat sample list of each mode, the loss, seeds, stop, evaluation."""

from __future__ import annotations

import threading
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ladd.data import load_source
from ladd.dense import augment
from ladd.deploy import evaluate_architectures, train_and_evaluate
from ladd.labeler import Labeler, LabelerMeta
from ladd.models import create_model
from ladd.pipeline import run_train
from ladd.sets import random_real
from ladd.store import Workspace, load_model
from ladd.trainers import train_models
from ladd.training import (
    MODES,
    TrainConfig,
    TrainingStopped,
    build_training_data,
    model_spec,
    soft_cross_entropy,
)

TINY = dict(epochs=6, batch_size=64, lr=0.05, seeds=(0,), dsa=False, model_options={"width": 8})


pytestmark = pytest.mark.usefixtures("one_thread")


def _labeler(ds) -> Labeler:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model("convnet_d3", 10, 32, width=8).eval()
        model.classifier.weight.data *= 30  # confident labels, like a trained labeler's
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
def sets():
    ds = random_real("shapes", 2, seed=0, limit_per_class=20)  # 20 images
    la = augment(ds, _labeler(ds), 3, 0.625, device="cpu", codec=None)  # 180 crops
    test = load_source("shapes", "test", limit_per_class=20)  # 200 images
    return ds, la, test


def test_training_data_sizes_per_mode() -> None:
    ds = random_real("shapes", 10, seed=0, limit_per_class=20)
    la = augment(ds, _labeler(ds), 5, 0.625, device="cpu", codec=None)
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


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_trains_and_lowers_its_loss(sets, mode: str) -> None:
    _, la, test = sets
    res = train_and_evaluate(la, test, TrainConfig(mode=mode, **TINY), device="cpu")
    curve = res.loss_curves[0]
    assert len(curve) == 7 and curve[-1] < curve[0], curve  # MTT's protocol: epochs + 1 passes
    assert 0.0 <= res.accuracy_mean <= 1.0 and res.flops > 0 and res.seconds > 0
    assert len(res.per_class[0]) == 10 and sum(map(sum, res.confusion)) == len(test)


def test_same_seed_same_numbers_and_global_rng_untouched(sets) -> None:
    _, la, test = sets
    cfg = TrainConfig(mode="ladd", **{**TINY, "epochs": 2, "dsa": True})
    state = torch.random.get_rng_state()
    a = train_and_evaluate(la, test, cfg, device="cpu")
    b = train_and_evaluate(la, test, cfg, device="cpu")
    assert torch.equal(state, torch.random.get_rng_state())
    assert a.loss_curves == b.loss_curves and a.per_seed == b.per_seed
    c = train_and_evaluate(la, test, replace(cfg, seeds=(0, 1)), device="cpu")
    assert c.loss_curves[0] == a.loss_curves[0] and c.loss_curves[1] != a.loss_curves[0]
    assert len(c.models) == 2 and c.accuracy_std >= 0
    # FLOPs: counted once, scaled by samples and seeds
    assert c.flops == 2 * a.flops


def test_a_sets_soft_labels_are_an_option_and_hard_labels_the_default(sets) -> None:
    """Eq. 5 writes one-hot labels for the full images: a set's own soft labels (DATM's) are
    used only with full_labels="set_soft" ("set", its older name, reads the same), in baseline
    and LADD modes alike."""
    ds, la, test = sets
    logits = torch.randn(len(ds), 10, generator=torch.Generator().manual_seed(0))
    datm = replace(ds, soft_labels=logits, lr=0.03)
    hard = F.one_hot(ds.labels, 10).float()
    torch.testing.assert_close(build_training_data(datm, "baseline").targets, hard)
    data = build_training_data(datm, "baseline", full_labels="set_soft")
    old = build_training_data(datm, "baseline", full_labels="set")
    assert torch.equal(old.targets, data.targets)
    assert TrainConfig(full_labels="set").full_labels == "set_soft"
    torch.testing.assert_close(data.targets, torch.softmax(logits, 1))
    la_datm = replace(la, soft_labels=logits)
    m = len(ds)
    torch.testing.assert_close(build_training_data(la_datm, "ladd").targets[:m], hard)
    soft = build_training_data(la_datm, "ladd", full_labels="set_soft").targets[:m]
    torch.testing.assert_close(soft, torch.softmax(logits, 1))
    res = train_and_evaluate(
        datm, test, TrainConfig(mode="baseline", **{**TINY, "lr": None, "epochs": 1}), device="cpu"
    )
    assert res.lr == 0.03  # the set's own learning rate, for the architecture it was made with
    assert res.config.protocol == "mtt" and res.to_dict()["config"]["protocol"] == "mtt"


def test_stop_event_and_fast_fallback(sets) -> None:
    _, la, _ = sets
    data = build_training_data(la, "ladd")
    spec = model_spec(TrainConfig(**TINY), 10, 32)
    stop = threading.Event()
    stop.set()
    with pytest.raises(TrainingStopped):
        train_models(data, spec, TrainConfig(**TINY), device="cpu", stop=stop)
    events = []
    cfg = TrainConfig(**{**TINY, "epochs": 1, "trainer": "fast"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = train_models(data, spec, cfg, device="cpu", progress=events.append)
    assert len(out.models) == 1 and not out.models[0].training
    assert events and events[-1].step == events[-1].total


def test_cross_architecture_table(sets) -> None:
    _, la, test = sets
    cfg = TrainConfig(mode="ladd", **{**TINY, "epochs": 1})
    res = evaluate_architectures(la, test, cfg, ["convnet_d1", "convnet_d2"], device="cpu")
    rows = res.table()
    assert [r["arch"] for r in rows] == ["convnet_d1", "convnet_d2"]
    assert 0 <= res.average <= 1 and "table" in res.to_dict()


def test_recorded_run_keeps_model_weights(sets, tmp_path: Path) -> None:
    _, la, test = sets
    ws = Workspace(tmp_path)
    cfg = TrainConfig(mode="ladd", **{**TINY, "epochs": 1, "seeds": (0, 1)})
    run_id, res = run_train(ws, la, test, cfg, device="cpu")
    rec = ws.db.get_run(run_id)
    assert rec.status == "done" and rec.metrics["accuracy_mean"] == res.accuracy_mean
    model = load_model(rec.artifacts["model_seed1"])
    x = la.images[:4]
    torch.testing.assert_close(model(x), res.models[1](x))


@pytest.mark.parametrize("trainer", ["fast", "reference"])
def test_the_live_views_points_are_kept_in_the_run(sets, tmp_path: Path, trainer: str) -> None:
    """monitor_every: per-seed accuracy on the fixed monitor subset every so many epochs, sent
    as progress and kept in result.json, so a finished run's curve still has them."""
    from ladd.deploy import monitor_subset
    from ladd.report import series_from_result

    _, la, test = sets
    ws = Workspace(tmp_path)
    cfg = TrainConfig(mode="ladd", trainer=trainer, **{**TINY, "epochs": 4, "seeds": (3, 5)})
    events = []
    run_id, res = run_train(
        ws, la, test, cfg, device="cpu", monitor_every=2, progress=events.append
    )
    # every 2nd pass, and the last: MTT's protocol trains epochs + 1 = 5 passes
    assert [row["epoch"] for row in res.monitor] == [2, 4, 5]
    n = len(monitor_subset(test))
    for row in res.monitor:
        assert len(row["accuracy"]) == 2  # in cfg.seeds order
        assert all(0.0 <= a <= 1.0 and abs(a * n - round(a * n)) < 1e-6 for a in row["accuracy"])
    sent = [e.metrics for e in events if e.stage == "monitor"]
    assert {m["epoch"] for m in sent} == {2, 4, 5}
    last = {
        s: a
        for m in sent
        if m["epoch"] == 5
        for s, a in zip(m["seeds"], m["accuracy"], strict=True)
    }
    assert res.monitor[-1]["accuracy"] == [last[3], last[5]]
    import json

    result = json.loads((ws.db.runs_dir / str(run_id) / "result.json").read_text())
    assert result["monitor"] == res.monitor
    _, acc = series_from_result("run", result)
    assert acc is not None and acc.epochs == (2, 4, 5)  # the final test at the last pass
    assert [row[-1] for row in acc.values] == res.per_seed


class _Crash(Exception):
    pass


@pytest.mark.parametrize("trainer", ["fast", "reference"])
def test_a_recorded_run_resumes_from_its_checkpoint(sets, tmp_path: Path, trainer: str) -> None:
    """run_train checkpoints every epoch boundary (checkpoint_seconds=0); the same step after a
    crash resumes (recorded as such) and ends with the uninterrupted run's weights."""
    _, la, test = sets
    cfg = TrainConfig(mode="ladd", trainer=trainer, **{**TINY, "epochs": 4, "seeds": (0, 1)})
    _, whole = run_train(Workspace(tmp_path / "whole"), la, test, cfg, device="cpu")

    def crash(ev):
        if ev.stage == "train" and ev.step >= 3:
            raise _Crash

    ws = Workspace(tmp_path / "crashed")
    with pytest.raises(_Crash):
        run_train(
            ws, la, test, cfg, device="cpu", progress=crash, checkpoint_seconds=0.0, monitor_every=1
        )
    assert list((ws.root / "checkpoints").glob("train-*.safetensors"))
    run_id, again = run_train(
        ws, la, test, cfg, device="cpu", checkpoint_seconds=0.0, monitor_every=1
    )
    assert ws.db.get_run(run_id).metrics["resumed"] is True
    assert again.loss_curves == whole.loss_curves
    # the live view's points from before the crash came back with the state: one per pass,
    # every seed, as an uninterrupted monitored run has them
    _, watched = run_train(
        Workspace(tmp_path / "watched"), la, test, cfg, device="cpu", monitor_every=1
    )
    assert again.monitor == watched.monitor
    assert [row["epoch"] for row in again.monitor] == list(range(1, 6))
    for a, b in zip(whole.models, again.models, strict=True):
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
            assert torch.equal(p, q)
    assert not list((ws.root / "checkpoints").glob("*.safetensors"))  # removed once done


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        TrainConfig(mode="x")
    with pytest.raises(ValueError, match="trainer"):
        TrainConfig(trainer="")  # unknown names are refused by train_models (test_fast)
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)


def test_a_large_test_split_is_normalised_per_batch_with_the_same_scores(sets) -> None:
    """eval_inputs(lazy=True): the uint8 split normalised (and whitened) per slice, the very
    values of the eager float copy; evaluate_models scores both alike. Chosen by size when
    lazy is None (the CIFAR test split's 123 MB float copy stays eager)."""
    from ladd.data.zca import fit_zca
    from ladd.deploy import EAGER_EVAL_BYTES, NormalisedImages, eval_inputs, evaluate_models

    ds, _, test = sets
    dev = torch.device("cpu")
    eager = eval_inputs(ds, test, dev)
    lazy = eval_inputs(ds, test, dev, lazy=True)
    assert isinstance(eager, torch.Tensor) and isinstance(lazy, NormalisedImages)
    assert lazy.images.dtype == torch.uint8 and lazy.shape == eager.shape and len(lazy) == 200
    assert torch.equal(lazy[10:30], eager[10:30])
    pick = torch.tensor([5, 1, 199])
    assert torch.equal(lazy[pick], eager[pick])
    model = create_model("convnet_d3", 10, 32, width=8, seed=0)
    a = evaluate_models([model], eager, test.labels, 10, batch_size=64)[0]
    b = evaluate_models([model], lazy, test.labels, 10, batch_size=64)[0]
    assert (a.accuracy, a.per_class, a.confusion) == (b.accuracy, b.per_class, b.confusion)
    assert 10_000 * 3 * 32 * 32 * 4 < EAGER_EVAL_BYTES  # CIFAR's test split stays eager
    zca = fit_zca(eager[:100].clone())
    whitened = replace(ds, zca=zca)
    lazy_w = eval_inputs(whitened, test, dev, lazy=True)
    torch.testing.assert_close(lazy_w[:50], eval_inputs(whitened, test, dev)[:50])
