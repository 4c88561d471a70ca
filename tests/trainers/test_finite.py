"""No run whose training broke (a NaN or Inf loss, or NaN or Inf weights) is recorded done, on
any engine or protocol: the loop stops it (NonFiniteLoss, NonFiniteWeights), the pipeline
records it failed and keeps no weights. (The ddp engine's case runs in the shared torchrun job
of tests/trainers/test_distributed.py; options that are not finite are refused when the config
is made, tests/test_plan.py.)"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from plans import plan

from ladd.data import load_source
from ladd.pipeline import run_train
from ladd.sets import random_real
from ladd.store import Workspace
from ladd.training import NonFiniteLoss, NonFiniteWeights, TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")
ENGINES = ("reference", "sequential", "stacked")
PROTOCOLS = ("mtt", "glad", "rded")


@pytest.fixture(scope="module")
def tiny():
    ds = random_real("shapes", 1, seed=0, limit_per_class=2, image_size=16)  # 10 images
    test = load_source("shapes", "test", limit_per_class=1, image_size=16)
    return ds, test


def _failed(ws: Workspace, error: type[Exception]) -> None:
    (rec,) = ws.db.list_runs("train")
    assert rec.status == "failed" and rec.error.startswith(error.__name__), rec.error
    assert not [k for k in rec.artifacts if k.startswith("model_seed")]  # no weights saved


def _cfg(protocol: str, **kw) -> TrainConfig:
    base = dict(mode="baseline", protocol=protocol, seeds=(0, 1), batch_size=4)
    base.update(kw)
    return TrainConfig(model_options={"width": 4}, **base)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_run_whose_training_blows_up_is_recorded_failed(tmp_path, tiny, engine, protocol):
    """lr 1e30 (finite: the config takes it): the weights and then the loss overflow within
    a few steps; the run ends with the non-finite error and is recorded failed."""
    ds, test = tiny
    ws = Workspace(tmp_path)
    with pytest.raises((NonFiniteLoss, NonFiniteWeights)) as err:
        run_train(ws, plan(ds, _cfg(protocol, lr=1e30, epochs=3), engine), ds, test)
    _failed(ws, type(err.value))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_set_of_huge_values_fails_the_run(tmp_path, tiny, engine):
    """Finite images the readers accept (1e30) overflow the forward: the run fails."""
    ds, test = tiny
    huge = replace(ds, images=ds.images * 1e30)
    ws = Workspace(tmp_path)
    with pytest.raises((NonFiniteLoss, NonFiniteWeights)) as err:
        run_train(ws, plan(huge, _cfg("mtt", lr=0.01, epochs=1), engine), huge, test)
    _failed(ws, type(err.value))


@pytest.mark.parametrize("engine", ENGINES)
def test_weights_that_are_not_finite_are_refused_though_every_loss_was_finite(
    monkeypatch, tmp_path, tiny, engine
):
    """A finite loss does not prove finite weights (an lr that breaks the weights in the last
    step leaves the last loss, read before it, finite). Whatever engine trained them, fit
    checks the models it returns: one NaN put in a trained tensor after the last pass ends the
    run with NonFiniteWeights, every loss finite, and the run is recorded failed, no weights."""
    from ladd.training import PassEnd

    real = PassEnd.final

    def poisoned(self, models):
        out = real(self, models)
        with torch.no_grad():
            next(out[-1].parameters()).view(-1)[0] = float("nan")
        return out

    monkeypatch.setattr(PassEnd, "final", poisoned)
    ds, test = tiny
    ws = Workspace(tmp_path)
    losses: list[float] = []
    # the last model of the first group the loop finishes: seed 0 alone (one seed a group),
    # seed 1 of the stacked pair
    seed = 1 if engine == "stacked" else 0
    with pytest.raises(NonFiniteWeights, match=f"seed {seed}'s trained weights are not finite"):
        run_train(
            ws,
            plan(ds, _cfg("mtt", lr=0.01, epochs=1), engine),
            ds,
            test,
            progress=lambda ev: losses.extend((ev.metrics or {}).get("loss", [])),
        )
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    _failed(ws, NonFiniteWeights)
