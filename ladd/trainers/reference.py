"""The reference trainer: the field's evaluation loop, one model per seed in sequence.

Eager, batch 256, one DSA op per batch (the single form, `ladd.dsa.dsa`, drawn from the seed's
generator after the pass's shuffle), the soft-target cross-entropy (or the plan's label
strategy, ladd.strategies), the protocol's SGD and lr schedule (all from ladd.training). The
loop itself (shuffle, stop, pass end, progress, checkpoint) is ladd.trainers.loop's `fit`;
this module is its engine with one seed per group.
The plan's "sequential" engine is this trainer too (NHWC on CUDA, the run's precision).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ladd.dsa import dsa
from ladd.plan import TrainPlan
from ladd.rded import rded_augment
from ladd.strategies import make_objective
from ladd.trainers.loop import Engine, Group, TrainHooks, fit
from ladd.training import (
    TrainedModels,
    TrainingData,
    float_state,
    init_model,
    loss_weight,
    make_optimizer,
    soft_cross_entropy,
)

__all__ = ["ReferenceEngine", "train_reference"]


class ReferenceEngine(Engine):
    """One seed per group: one model, eager, its own optimiser (the field's loop).

    `channels_last`: weights in NHWC (the inputs come so from train_reference), faster
    convolutions on CUDA.
    """

    name = "reference"

    def __init__(
        self, plan: TrainPlan, device: torch.device | None = None, *, channels_last: bool = False
    ) -> None:
        super().__init__(plan, device)
        self.channels_last = channels_last

    def groups(self, seeds: tuple[int, ...]) -> list[tuple[int, ...]]:
        return [(s,) for s in seeds]

    def start(
        self, seeds: tuple[int, ...], gens: list[torch.Generator], data: TrainingData
    ) -> Group:
        return _OneSeed(self, seeds, gens[0], data)


class _OneSeed(Group):
    def __init__(
        self,
        engine: ReferenceEngine,
        seeds: tuple[int, ...],
        g: torch.Generator,
        data: TrainingData,
    ) -> None:
        cfg, dev = engine.cfg, engine.device
        (seed,) = seeds
        model = init_model(engine.spec, seed).to(dev).train()
        if engine.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model = self.prepare(model, engine)
        self.model, self.g, self.seeds = model, g, seeds
        named = list(model.named_parameters())
        self.optimizer = make_optimizer(
            [t for _, t in named], cfg, engine.lr, names=[n for n, _ in named]
        )
        self.tensors = float_state(list(model.parameters()), list(model.buffers()))
        self.inputs, self.targets = data.inputs, data.targets  # (T, C, H, W), (T, K)
        # a label strategy other than LADD's default (ladd.strategies), with what it reads
        self.objective = make_objective(cfg, 1, dev, stacked=False)
        if self.objective is not None:
            self.objective.attach(self.optimizer)
            self.extras = tuple(self.objective.parameters())
            self.classes, self.soft = data.sample_kinds()  # (T,), (T,)
        self.augmentation = cfg.augmentation  # "dsa" | "rded" | ""
        self.dsa_cfg = cfg.dsa_config
        self.bf16 = cfg.precision == "bf16" and dev.type == "cuda"
        self.weight = loss_weight(cfg, data)
        self.temperature = data.temperature  # the student's KD temperature (1: plain)

    def step(self, b: int, idx: torch.Tensor, n_real: int) -> torch.Tensor:
        i = idx[0]  # (B,): this seed's batch
        x, y = self.inputs[i], self.targets[i]
        x = self.augment(x)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(x)
        if self.objective is None:
            loss = soft_cross_entropy(logits, y, temperature=self.temperature)
        else:
            loss = self.objective(logits, y, self.classes[i], self.soft[i])
        (loss * self.weight if self.weight != 1.0 else loss).backward()
        return loss.detach().view(1)

    def begin_pass(self) -> None:
        if self.objective is not None:
            self.objective.begin_pass()

    def summary(self) -> dict | None:
        return self.objective.summary() if self.objective is not None else None

    def prepare(self, model: nn.Module, engine: ReferenceEngine) -> nn.Module:
        """The model as this engine trains it, before its optimiser is made (as it is here)."""
        return model

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """The protocol's augmentation of one batch, drawn from the seed's generator."""
        if self.augmentation == "dsa":
            return dsa(x, self.g, self.dsa_cfg)
        if self.augmentation == "rded":
            return rded_augment(x, self.g)
        return x

    def live(self) -> list[nn.Module]:
        return [self.model]

    def state(self) -> dict[str, torch.Tensor]:
        out = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.objective is not None:
            out.update(self.objective.state())
        return out

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(
            {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        )
        if self.objective is not None:
            self.objective.load(tensors)

    def trained(self) -> list[nn.Module]:
        return [self.model.to(memory_format=torch.contiguous_format)]


def train_reference(
    data: TrainingData,
    plan: TrainPlan,
    hooks: TrainHooks | None = None,
    *,
    channels_last: bool = False,
) -> TrainedModels:
    """Train one model per seed of the plan with the field's loop.

    `hooks` (progress, stop, monitor, checkpoint): see ladd.trainers.loop.TrainHooks.
    `channels_last` stores inputs and weights in NHWC (faster convolutions on CUDA; the plan's
    "sequential" engine asks for it there).
    """
    dev = plan.torch_device
    data = data.to(dev)
    if channels_last:
        data = replace(data, inputs=data.inputs.contiguous(memory_format=torch.channels_last))
    return fit(ReferenceEngine(plan, channels_last=channels_last), data, hooks)
