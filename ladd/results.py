"""What a deployment returns: data only, with its JSON form (ladd.deploy computes them).

`DeployResult` is one training and its test (accuracy over seeds, per class, the confusion
matrix, the curves, what it cost); `CrossArchResult` one set across architectures (paper
Table 2). They live apart from ladd.deploy so that the layers above read a result without
calling back into the layer that made it (bench/trace_click.py traces that walk).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ladd.plan import TrainPlan
from ladd.training import TrainConfig

__all__ = ["CrossArchResult", "DeployResult"]


@dataclass
class DeployResult:
    """Accuracy of models trained on a set, mean +- std over seeds, and what it cost."""

    plan: TrainPlan
    accuracy_mean: float
    accuracy_std: float
    per_seed: list[float]
    per_class: list[list[float]]  # (S, K)
    confusion: list[list[int]]  # (K, K), summed over seeds, [true][predicted]
    loss_curves: list[list[float]]
    seconds: float
    flops: int
    num_samples: int  # training samples per epoch
    class_names: list[str]
    engine: dict[str, Any] | None = None  # how the fast trainer ran (compile vs train seconds)
    # The live view's points (monitor_every > 0): {"epoch", "accuracy": [per seed, in
    # config.seeds order; None where a seed has no point]} on the fixed monitor subset of the
    # test split (MONITOR_IMAGES), for the curves only; never used to choose anything.
    monitor: list[dict[str, Any]] = field(default_factory=list)
    models: list[nn.Module] = field(default_factory=list, repr=False)
    # A label strategy's end state (learned weights, calibrated temperature per seed); None for
    # LADD's default (ladd.strategies.Objective.summary).
    strategy: dict[str, Any] | None = None

    @property
    def config(self) -> TrainConfig:
        """The settled config the models were trained under (the plan's)."""
        return self.plan.config

    @property
    def lr(self) -> float:
        return self.plan.lr

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (models left out): the plan's record, then what the run measured."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("models", "plan")}
        d["config"] = self.plan.train_record()
        d["plan"] = self.plan.record()
        d["lr"] = self.plan.lr
        d["per_class_mean"] = [statistics.fmean(c) for c in zip(*self.per_class, strict=True)]
        return d


@dataclass
class CrossArchResult:
    """Accuracy of one set across architectures (paper Table 2)."""

    results: dict[str, DeployResult]

    def table(self) -> list[dict[str, Any]]:
        rows = [
            {
                "arch": a,
                "accuracy_mean": r.accuracy_mean,
                "accuracy_std": r.accuracy_std,
                "seconds": r.seconds,
                "flops": r.flops,
            }
            for a, r in self.results.items()
        ]
        return rows

    @property
    def average(self) -> float:
        return statistics.fmean(r.accuracy_mean for r in self.results.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table(),
            "average": self.average,
            "results": {a: r.to_dict() for a, r in self.results.items()},
        }
