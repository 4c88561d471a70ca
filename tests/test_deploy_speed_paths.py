"""evaluate_models' fast path: all seeds in one vmapped forward gives each model's own scores."""

from __future__ import annotations

import pytest
import torch

from ladd.deploy import evaluate_models
from ladd.models import create_model


def _models(arch: str = "convnet_d2", **options) -> list[torch.nn.Module]:
    return [create_model(arch, 5, 16, seed=s, **options).eval() for s in range(3)]


@pytest.mark.parametrize(
    ("arch", "options"),
    [("convnet_d2", {"width": 8}), ("convnet_d2", {"width": 8, "norm": "batch"}), ("alexnet", {})],
    ids=["convnet", "convnet-batchnorm", "alexnet"],
)
def test_stacked_evaluation_equals_evaluating_each_model(arch, options, one_thread) -> None:
    models = _models(arch, **options)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(70, 3, 16, 16, generator=g)
    labels = torch.randint(0, 5, (70,), generator=g)
    if options.get("norm") == "batch":  # running statistics that differ per model
        for i, m in enumerate(models):
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.fill_(0.1 * i)
                    mod.running_var.fill_(1.0 + i)
    each = evaluate_models(models, x, labels, 5, batch_size=32, stacked=False)
    together = evaluate_models(models, x, labels, 5, batch_size=32, stacked=True)
    assert together == each
    assert len({s.accuracy for s in each}) > 1 or len(models) == 1  # really different models
    assert evaluate_models(models, x, labels, 5, batch_size=32) == each  # default: per model


def test_models_of_different_architectures_are_evaluated_one_by_one(one_thread) -> None:
    models = [_models()[0], create_model("convnet_d2", 5, 16, seed=0, width=4).eval()]
    x = torch.randn(10, 3, 16, 16)
    labels = torch.zeros(10, dtype=torch.long)
    scores = evaluate_models(models, x, labels, 5)  # the default: one by one
    assert len(scores) == 2 and all(0.0 <= s.accuracy <= 1.0 for s in scores)
    for s in scores:
        assert sum(map(sum, s.confusion)) == 10
    with pytest.raises(ValueError, match="one architecture"):
        evaluate_models(models, x, labels, 5, stacked=True)  # shapes differ: cannot stack
