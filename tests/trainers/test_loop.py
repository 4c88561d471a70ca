"""ladd.trainers.loop: the one training loop (fit), its engines and its hooks object
(CPU-sized); the checkpoint format it writes is tests/training/test_checkpoint.py's."""

from __future__ import annotations

import threading
import warnings

import pytest
import torch
from parity import normed_conv_biases
from plans import Killed, killer, plan, same_weights, toy_data

from ladd.trainers import train_models
from ladd.trainers.loop import Engine, TrainHooks, fit
from ladd.trainers.reference import train_reference
from ladd.trainers.stacked import FastOptions, StackedEngine
from ladd.training import TrainCheckpoint, TrainConfig, TrainingStopped

K, SIZE = 4, 16


def _cfg(protocol: str = "mtt", **kw) -> TrainConfig:
    base = dict(
        arch="convnet_d2",
        epochs=4,
        lr=0.05,
        batch_size=16,
        seeds=(0, 1),
        dsa=True,
        protocol=protocol,
        model_options={"width": 4},
    )
    base.update(kw)
    return TrainConfig(**base)


def _max_diff(a, b, skip: set[str] = frozenset()) -> float:
    return max(
        (p - q).abs().max().item()
        for ma, mb in zip(a.models, b.models, strict=True)
        for (k, p), q in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True)
        if k not in skip
    )


# -- each engine runs through the one loop ----------------------------------------------------


def test_every_engine_runs_through_fit(monkeypatch, one_thread):
    import ladd.trainers.reference as ref_mod
    import ladd.trainers.stacked as stacked_mod

    seen: list[str] = []

    def spy(engine: Engine, data, hooks=None):
        seen.append(engine.name)
        return fit(engine, data, hooks)

    monkeypatch.setattr(ref_mod, "fit", spy)
    monkeypatch.setattr(stacked_mod, "fit", spy)
    data, cfg = toy_data(), _cfg(epochs=1)
    for engine in ("reference", "sequential", "stacked"):
        out = train_models(data, plan(data, cfg, engine))
        assert len(out.models) == 2 and out.flops > 0
    assert seen == ["reference", "reference", "stacked"]  # sequential: the reference engine


class _Pairs(StackedEngine):
    """The stacked engine with seeds trained two at a time: the loop with several groups of
    several seeds (as a distributed engine would shard them)."""

    name = "pairs"

    def groups(self, seeds):
        return [tuple(seeds[i : i + 2]) for i in range(0, len(seeds), 2)]


def _pairs(cfg: TrainConfig, hooks: TrainHooks | None = None):
    data = toy_data()
    return fit(_Pairs(plan(data, cfg, "stacked"), FastOptions()), data, hooks)


@pytest.mark.parametrize("protocol", ["mtt", "glad", "rded"])
def test_groups_of_several_seeds_give_the_reference_weights_and_resume_exactly(
    tmp_path, protocol, one_thread
):
    """Seeds (0, 1) then (2,) as two stacked groups: the reference loop's weights (the stacked
    engine's tolerance, no DSA), progress counting seed-passes across groups, and a run killed
    in the second group resumes to the uninterrupted run's weights."""
    # under AdamW at SGD's lr 0.05, near-zero gradients' rounding moves weights by ~1e-4
    adamw = {"lr": 0.001} if protocol == "rded" else {}  # RDED's rate for ConvNets
    cfg = _cfg(protocol, seeds=(0, 1, 2), dsa=False, **adamw)
    data = toy_data()
    ref = train_reference(data, plan(data, cfg))
    events = []
    whole = _pairs(cfg, TrainHooks(progress=events.append))
    # AdamW (rded): the conv biases an instance norm removes drift on rounding noise
    # (tests/trainers/test_stacked.py, the parity test's docstring); what the models compute
    # is checked
    skip = normed_conv_biases(ref.models[0]) if protocol == "rded" else set()
    assert _max_diff(ref, whole, skip) < 1e-5
    with torch.no_grad():
        x = data.inputs
        for a, b in zip(ref.models, whole.models, strict=True):
            torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)
    for a, b in zip(ref.loss_curves, whole.loss_curves, strict=True):
        assert a == pytest.approx(b, rel=1e-5)
    passes = cfg.passes
    assert [e.step for e in events] == [2 * p for p in range(1, passes + 1)] + [
        2 * passes + p for p in range(1, passes + 1)
    ]
    assert events[-1].total == 3 * passes and events[-1].message == "seed 2 (stacked)"
    assert events[0].message == "seeds 0, 1 (stacked)"
    ckpt = TrainCheckpoint(tmp_path / "s.safetensors", key="run", seconds=0.0)
    with pytest.raises(Killed):
        _pairs(cfg, TrainHooks(progress=killer(2 * passes + 2), checkpoint=ckpt))
    meta = ckpt.saved_meta()
    assert meta["engine"] == "pairs" and meta["group"] == 1 and meta["seeds"] == [2]
    events.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # resumed, not refused and started over
        again = _pairs(cfg, TrainHooks(checkpoint=ckpt, progress=events.append))
    assert events[0].step == 2 * passes + meta["pass"] + 1  # it went on after the saved pass
    assert same_weights(whole, again) and whole.loss_curves == again.loss_curves


# -- the hooks object -------------------------------------------------------------------------


def test_the_hooks_object_carries_progress_and_stop(one_thread):
    """One TrainHooks object is all a caller hooks in (the keyword hooks are gone): the same
    run with and without a progress hook trains the same weights, and a set stop event ends
    it before its first step."""
    data, cfg = toy_data(), _cfg(epochs=2)
    p = plan(data, cfg, "sequential")
    seen = []
    a = train_models(data, p)
    b = train_models(data, p, TrainHooks(progress=seen.append))
    assert same_weights(a, b) and a.loss_curves == b.loss_curves
    assert [e.step for e in seen] == list(range(1, 2 * cfg.passes + 1))  # seed-passes
    assert [e.loss for e in seen] == pytest.approx([v for c in b.loss_curves for v in c])
    with pytest.raises(TypeError):
        train_models(data, p, progress=print)  # type: ignore[call-arg]
    stop = threading.Event()
    stop.set()
    with pytest.raises(TrainingStopped, match="stopped at epoch 0"):
        train_models(data, p, TrainHooks(stop=stop))
