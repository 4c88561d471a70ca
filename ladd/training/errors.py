"""The exceptions a training run ends with."""

from __future__ import annotations

__all__ = ["NonFiniteLoss", "NonFiniteWeights", "TrainingStopped"]


class TrainingStopped(RuntimeError):
    """Long work ended early because the caller's stop event was set (training, labeler, demo)."""


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or Inf: the run stops (and is recorded as failed)."""


class NonFiniteWeights(RuntimeError):
    """A trained model holds NaN or Inf weights: the run is recorded as failed, never done."""
