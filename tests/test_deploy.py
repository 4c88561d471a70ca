"""ladd.deploy: executing a plan (every label mode, seeds, stop, the live view, resume), the
cross-architecture table, evaluation. The flat sample list of each mode is
tests/training/test_data.py's."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from plans import plan, train_and_test

from ladd.data import load_source
from ladd.dense import augment
from ladd.deploy import evaluate_architectures, plan_architectures
from ladd.labeler import Labeler, LabelerMeta
from ladd.models import create_model
from ladd.pipeline import run_train
from ladd.sets import random_real
from ladd.store import Workspace, load_model
from ladd.trainers import TrainHooks, train_models
from ladd.training import MODES, TrainConfig, TrainingStopped, build_training_data

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


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_trains_and_lowers_its_loss(sets, mode: str) -> None:
    _, la, test = sets
    res = train_and_test(la, test, TrainConfig(mode=mode, **TINY))
    curve = res.loss_curves[0]
    assert len(curve) == 7 and curve[-1] < curve[0], curve  # MTT's protocol: epochs + 1 passes
    assert 0.0 <= res.accuracy_mean <= 1.0 and res.flops > 0 and res.seconds > 0
    assert len(res.per_class[0]) == 10 and sum(map(sum, res.confusion)) == len(test)


def test_same_seed_same_numbers_and_global_rng_untouched(sets) -> None:
    _, la, test = sets
    cfg = TrainConfig(mode="ladd", **{**TINY, "epochs": 2, "dsa": True})
    state = torch.random.get_rng_state()
    a = train_and_test(la, test, cfg)
    b = train_and_test(la, test, cfg)
    assert torch.equal(state, torch.random.get_rng_state())
    assert a.loss_curves == b.loss_curves and a.per_seed == b.per_seed
    c = train_and_test(la, test, replace(cfg, seeds=(0, 1)))
    assert c.loss_curves[0] == a.loss_curves[0] and c.loss_curves[1] != a.loss_curves[0]
    assert len(c.models) == 2 and c.accuracy_std >= 0
    # FLOPs: counted once, scaled by samples and seeds
    assert c.flops == 2 * a.flops


def test_a_sets_own_lr_trains_its_distillation_architecture(sets) -> None:
    """A set that carries a learned lr (DATM's lr_best.pt) trains the architecture it was
    distilled with at that lr under mtt, and the run says so (tests/test_plan.py has the rule
    for every case)."""
    ds, _, test = sets
    datm = replace(ds, lr=0.03)
    res = train_and_test(
        datm, test, TrainConfig(mode="baseline", **{**TINY, "lr": None, "epochs": 1})
    )
    assert res.lr == 0.03  # the set's own learning rate, for the architecture it was made with
    assert res.config.protocol == "mtt" and res.to_dict()["config"]["protocol"] == "mtt"
    assert res.to_dict()["lr"] == 0.03


def test_stop_event_and_the_fast_trainer_on_a_cpu(sets) -> None:
    _, la, _ = sets
    data = build_training_data(la, "ladd")
    stop = threading.Event()
    stop.set()
    with pytest.raises(TrainingStopped):
        train_models(data, plan(data, TrainConfig(**TINY), None), TrainHooks(stop=stop))
    events = []
    p = plan(la, TrainConfig(**{**TINY, "epochs": 1, "trainer": "fast"}), None)
    assert p.engine == "sequential"  # the fast trainer on a CPU: one seed after another
    out = train_models(data, p, TrainHooks(progress=events.append))
    assert len(out.models) == 1 and not out.models[0].training
    assert events and events[-1].step == events[-1].total


def test_cross_architecture_table(sets) -> None:
    _, la, test = sets
    cfg = TrainConfig(mode="ladd", **{**TINY, "epochs": 1})
    plans = plan_architectures(la, cfg, ["convnet_d1", "convnet_d2"], "cpu")
    assert [p.config.arch for p in plans] == ["convnet_d1", "convnet_d2"]
    res = evaluate_architectures(plans, la, test)
    rows = res.table()
    assert [r["arch"] for r in rows] == ["convnet_d1", "convnet_d2"]
    assert 0 <= res.average <= 1 and "table" in res.to_dict()


def test_recorded_run_keeps_model_weights(sets, tmp_path: Path) -> None:
    _, la, test = sets
    ws = Workspace(tmp_path)
    cfg = TrainConfig(mode="ladd", **{**TINY, "epochs": 1, "seeds": (0, 1)})
    run_id, res = run_train(ws, plan(la, cfg, None), la, test)
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
        ws, plan(la, cfg, None), la, test, monitor_every=2, progress=events.append
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
    p = plan(la, cfg, None)
    _, whole = run_train(Workspace(tmp_path / "whole"), p, la, test)

    def crash(ev):
        if ev.stage == "train" and ev.step >= 3:
            raise _Crash

    ws = Workspace(tmp_path / "crashed")
    with pytest.raises(_Crash):
        run_train(ws, p, la, test, progress=crash, checkpoint_seconds=0.0, monitor_every=1)
    assert list((ws.root / "checkpoints").glob("train-*.safetensors"))
    run_id, again = run_train(ws, p, la, test, checkpoint_seconds=0.0, monitor_every=1)
    assert ws.db.get_run(run_id).metrics["resumed"] is True
    assert again.loss_curves == whole.loss_curves
    # the live view's points from before the crash came back with the state: one per pass,
    # every seed, as an uninterrupted monitored run has them
    _, watched = run_train(Workspace(tmp_path / "watched"), p, la, test, monitor_every=1)
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
        TrainConfig(trainer="")
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
    # whitened: at 16 px (768 dimensions; 3072 at 32 px made the float64 fit the slow part)
    small = random_real("shapes", 2, seed=0, limit_per_class=20, image_size=16)
    small_test = load_source("shapes", "test", limit_per_class=10, image_size=16)
    zca = fit_zca(eval_inputs(small, small_test, dev)[:100].clone())
    whitened = replace(small, zca=zca)
    lazy_w = eval_inputs(whitened, small_test, dev, lazy=True)
    eager_w = eval_inputs(whitened, small_test, dev)
    assert not torch.allclose(eager_w, eval_inputs(small, small_test, dev))  # it whitens
    torch.testing.assert_close(lazy_w[:50], eager_w[:50])
