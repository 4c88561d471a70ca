"""The models of a run: their spec, their seeded initial weights, their cost per sample, and
what a trainer returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ladd.flops import train_flops_per_sample
from ladd.models import ModelSpec, create_from_spec
from ladd.training.config import TrainConfig
from ladd.training.data import TrainingData

__all__ = ["TrainedModels", "init_model", "model_spec", "step_flops"]


def model_spec(cfg: TrainConfig, num_classes: int, image_size: int, channels: int = 3) -> ModelSpec:
    """The ModelSpec of a config's architecture (model_options applied)."""
    return ModelSpec(cfg.arch, num_classes, image_size, channels, dict(cfg.model_options))


def init_model(spec: ModelSpec, seed: int) -> nn.Module:
    """A freshly initialised model: the same seed gives the same weights, whichever trainer."""
    return create_from_spec(spec, seed=seed)


def step_flops(data: TrainingData, spec: ModelSpec, batch_size: int, device: torch.device) -> float:
    """FLOPs of one forward + backward per sample, measured once on a small batch."""
    probe = init_model(spec, 0).to(device)
    x = data.inputs[: min(batch_size, 8, len(data))].to(device)
    return train_flops_per_sample(probe, x, data.num_classes)


@dataclass
class TrainedModels:
    """What a trainer returns: one model per seed (eval mode, on the device)."""

    models: list[nn.Module]
    loss_curves: list[list[float]]  # per seed, the mean training loss of each epoch
    seconds: float
    flops: int = 0  # filled in by ladd.trainers.train_models (counted once, whatever the engine)
    # How the engine ran, JSON-ready (the fast trainer's EngineReport.to_dict(); None for the
    # reference loop), filled in by ladd.trainers.train_models.
    engine: dict[str, Any] | None = None
    # A label strategy's end state (ladd.strategies.Objective.summary: the learned weights and
    # the calibrated temperature per seed, seeds in order); None for LADD's default.
    strategy: dict[str, Any] | None = None
