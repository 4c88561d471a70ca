"""Planning helpers the training tests share (not a test module: no test_ prefix).

Every engine takes a settled plan (ladd.plan.plan_training); these plan a test's own tensors or
set on the CPU with the engine a test names, as the front ends plan theirs.
"""

from __future__ import annotations

from typing import Any

from ladd.deploy import execute
from ladd.plan import TrainPlan, plan_training
from ladd.results import DeployResult
from ladd.training import TrainConfig, TrainingData


def plan(
    data: Any, cfg: TrainConfig, engine: str | None = "reference", device: str = "cpu"
) -> TrainPlan:
    """`cfg` settled for `data` (a TrainingData or a set) on `device`, on `engine` (None: the
    engine the plan picks, as the front ends leave it)."""
    return plan_training(data, cfg, device, engine=engine)


def train_and_test(
    dataset: Any,
    test_set: Any,
    cfg: TrainConfig,
    *,
    device: str = "cpu",
    engine: str | None = None,
    **kw: Any,
) -> DeployResult:
    """Plan `cfg` for `dataset` and execute it (what `ladd train` runs, without a record)."""
    return execute(plan_training(dataset, cfg, device, engine=engine), dataset, test_set, **kw)


def same_weights(a: Any, b: Any) -> bool:
    """Two trainings' models (TrainedModels or DeployResult) hold bit-identical tensors."""
    return all(
        sa.keys() == sb.keys() and all(sa[k].equal(sb[k]) for k in sa)
        for sa, sb in (
            (ma.state_dict(), mb.state_dict()) for ma, mb in zip(a.models, b.models, strict=True)
        )
    )


def toy_data(t: int = 40, k: int = 4, size: int = 16, seed: int = 0, sharp: float = 1.0):
    """`t` random 3-channel `size` px images with random soft targets over `k` classes."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(t, 3, size, size, generator=g)
    y = torch.softmax(torch.randn(t, k, generator=g) * sharp, 1)
    return TrainingData(x, y, num_full=t, num_crops=0, num_classes=k, num_images=t)


class Killed(Exception):
    """A run cut short by a test (raised from a progress hook)."""


def killer(at: int):
    """A progress hook that raises Killed at the first pass report whose step is >= `at`."""

    def kill(ev: Any) -> None:
        if not ev.note and ev.step >= at:
            raise Killed

    return kill


__all__ = [
    "Killed",
    "TrainingData",
    "killer",
    "plan",
    "same_weights",
    "toy_data",
    "train_and_test",
]
