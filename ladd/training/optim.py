"""The protocol's optimiser, lr schedule and weight EMA, and what the loop does after a pass.

- `make_optimizer`: SGD (mtt, glad) or RDED's AdamW with its weight-decay groups (rded).
- `LRSchedule`: the protocol's schedule on torch.optim.lr_scheduler, stepped once per pass.
- `WeightEMA`: the EMA GLaD tests (ema_pytorch's update rule).
- `PassEnd`: schedule, EMA and monitor after every pass of a seed group; its optimiser and EMA
  state for a checkpoint.
- `check_finite`: a pass's mean loss must be finite; `check_finite_weights`: so must the
  trained weights before a run is recorded done.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ladd.training.config import TrainConfig
from ladd.training.errors import NonFiniteLoss, NonFiniteWeights
from ladd.training.protocols import RDED_ADAMW, half_cosine_factor

__all__ = [
    "LRSchedule",
    "Monitor",
    "PassEnd",
    "WeightEMA",
    "check_finite",
    "check_finite_weights",
    "float_state",
    "make_optimizer",
    "make_scheduler",
]


def make_optimizer(
    params: Iterable[torch.Tensor],
    cfg: TrainConfig,
    lr: float,
    *,
    foreach: bool | None = None,
    names: list[str] | None = None,
    stacked: bool = False,
) -> torch.optim.Optimizer:
    """The protocol's optimiser over `params` (a module's parameters, or stacked tensors (S, ...)
    when `stacked`): SGD with the config's momentum and weight decay (mtt, glad), or RDED's AdamW
    (rded), which needs the parameters' `names`.

    RDED's groups (validation/utils.py `get_parameters`, lines 67-84): weight decay on the
    parameters whose name contains "weight" and that have more than one dimension (of their own:
    a stacked tensor's seed axis does not count), none on the rest (biases, norm scales, ViT's
    class token and positions).
    """
    if cfg.protocol_spec.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, foreach=foreach
        )
    params = list(params)
    if names is None or len(names) != len(params):
        raise ValueError("AdamW's weight-decay groups need the name of every parameter")
    own = 1 if stacked else 0
    decay = [p for n, p in zip(names, params, strict=True) if "weight" in n and p.dim() - own > 1]
    ids = {id(p) for p in decay}
    rest = [p for p in params if id(p) not in ids]
    groups = [
        {"params": decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups,
        lr=lr,
        betas=RDED_ADAMW["betas"],
        weight_decay=RDED_ADAMW["weight_decay"],
        foreach=foreach,
    )


class LRSchedule:
    """A protocol's lr schedule on an optimiser, built from torch.optim.lr_scheduler; call
    `end_of_pass(p)` after every pass p = 0, 1, ... (the field's loops step once per pass).

    step_half (MTT utils.py `evaluate_synset`): after pass Epoch // 2 + 1 the lr is x 0.1 and the
      optimiser is made anew (its momentum buffers are cleared here: SGD then starts them from
      the next gradient, as a new optimiser would).
    warmup_cosine (GLaD utils.py `evaluate_synset`): LinearLR(start_factor=1e-7, total_iters=E//2)
      and CosineAnnealingLR(T_max=E//2) are made at the start; the first steps until pass E // 2,
      the second from then on.
    half_cosine (RDED validation/main.py lines 95-102, stepped after every epoch, line 187):
      LambdaLR with factor 0.5 (1 + cos(pi e / E / 2)) at pass e (e <= E; 0 after): from 1 down
      to 0.5 + 0.5 cos(pi (E - 1) / 2E) at the last pass, never to 0.
    """

    def __init__(self, opt: torch.optim.Optimizer, cfg: TrainConfig) -> None:
        self.opt = opt
        self.kind = cfg.protocol_spec.schedule
        half = cfg.epochs // 2
        self.switch_at = half
        if self.kind == "step_half":
            self.decay_after = half + 1
            # stepped after pass p, its last_epoch becomes p + 1: the lr of pass decay_after + 1 on
            self.scheds = [
                torch.optim.lr_scheduler.MultiStepLR(opt, [self.decay_after + 1], gamma=0.1)
            ]
        elif self.kind == "half_cosine":
            epochs = cfg.epochs
            self.scheds = [
                torch.optim.lr_scheduler.LambdaLR(
                    opt, lambda e: half_cosine_factor(e, epochs), last_epoch=-1
                )
            ]
        elif self.kind == "warmup_cosine":
            self.scheds = [
                torch.optim.lr_scheduler.LinearLR(
                    opt, start_factor=1e-7, end_factor=1.0, total_iters=max(1, half)
                ),
                torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, half)),
            ]
        else:
            raise ValueError(f"unknown schedule {self.kind!r}")
        self.current = 0

    def end_of_pass(self, p: int) -> None:
        self.scheds[self.current].step()
        if self.kind == "step_half" and p == self.decay_after:
            self.opt.state.clear()  # MTT: a new SGD object, so no momentum carried over
        if self.kind == "warmup_cosine" and p == self.switch_at:
            self.current = 1

    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def fast_forward(self, passes_done: int) -> None:
        """Replay the schedule of `passes_done` passes on a fresh optimiser (resuming): the lr
        only depends on the pass index, so the replay gives the same floats; the optimiser's
        state comes from the checkpoint instead."""
        with warnings.catch_warnings():  # no optimiser step in a replay: torch would warn
            warnings.simplefilter("ignore", UserWarning)
            for p in range(passes_done):
                self.scheds[self.current].step()
                if self.kind == "warmup_cosine" and p == self.switch_at:
                    self.current = 1


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> LRSchedule:
    """The lr schedule of cfg's (resolved) protocol on `opt`."""
    return LRSchedule(opt, cfg)


class WeightEMA:
    """The exponential moving average GLaD tests: ema_pytorch's EMA(beta, power=1,
    update_after_step=0, update_every=1), updated once per pass (its `update` and
    `get_current_decay`): the first two updates copy the weights, update u >= 2 blends with
    decay min(u / (u + 1), beta) (a running mean that settles at beta).

    Works on any list of float tensors, stacked seeds (S, ...) included (element-wise).
    """

    def __init__(self, tensors: list[torch.Tensor], beta: float) -> None:
        self.beta = float(beta)
        self.shadow = [t.detach().clone() for t in tensors]
        self.updates = 0

    def decay(self, u: int) -> float:
        """ema_pytorch's get_current_decay at update u (0-based): 0 for u = 0, then 1 - 1/(1+u)."""
        return 0.0 if u <= 0 else min(1.0 - 1.0 / (1.0 + u), self.beta)

    @torch.no_grad()
    def update(self, tensors: list[torch.Tensor]) -> None:
        u = self.updates
        self.updates += 1
        for sh, t in zip(self.shadow, tensors, strict=True):
            if u <= 1:  # update_after_step = 0 copies once; the next update initialises: a copy
                sh.copy_(t.detach())
            else:
                sh.lerp_(t.detach().to(sh.dtype), 1.0 - self.decay(u))


def check_finite(mean_losses: torch.Tensor, pass_index: int, seeds: tuple[int, ...]) -> None:
    """Raise NonFiniteLoss naming the seed and epoch when a pass's mean loss is not finite."""
    bad = (~torch.isfinite(mean_losses.detach().float().reshape(-1))).nonzero().flatten().tolist()
    if bad:
        s = seeds[bad[0]] if bad[0] < len(seeds) else bad[0]
        value = float(mean_losses.reshape(-1)[bad[0]])
        raise NonFiniteLoss(
            f"the training loss of seed {s} became {value} in epoch {pass_index + 1}: stopped "
            "(check the set for NaN/Inf values, or lower the learning rate)"
        )


Monitor = Callable[[int, tuple[int, ...], list[nn.Module]], None]


def float_state(
    module_params: list[torch.Tensor], buffers: list[torch.Tensor]
) -> list[torch.Tensor]:
    """The tensors an EMA follows: every parameter and every float buffer (ema_pytorch's set)."""
    return [*module_params, *(b for b in buffers if b.is_floating_point())]


class PassEnd:
    """What the training loop (ladd.trainers.loop.fit) does after every pass p of a seed group:
    step the protocol's lr schedule, update the EMA (GLaD), and call the monitor every
    `monitor_every` passes. (The loop refuses a non-finite loss, check_finite, when it reads a
    pass's losses: a pass late, so that no step waits on the device.)

    `tensors` are the trained tensors (float_state): one model's, or the stacked seeds' (S, ...)
    when `stacked`.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        opt: torch.optim.Optimizer,
        tensors: list[torch.Tensor],
        seeds: tuple[int, ...],
        *,
        stacked: bool,
        monitor: Monitor | None = None,
        monitor_every: int = 0,
        extras: list[torch.Tensor] | tuple[torch.Tensor, ...] = (),
    ) -> None:
        self.cfg, self.seeds, self.tensors, self.stacked = cfg, seeds, tensors, stacked
        self.extras = list(extras)  # trained beside the model (a label strategy's weights)
        self.schedule = make_scheduler(opt, cfg)
        beta = cfg.protocol_spec.ema_beta
        self.ema = WeightEMA(tensors, beta) if beta else None
        self.monitor, self.monitor_every = monitor, int(monitor_every)

    def __call__(self, p: int, models: Callable[[], list[nn.Module]]) -> None:
        self.schedule.end_of_pass(p)
        if self.ema is not None:
            self.ema.update(self.tensors)
        if self.monitor is not None and self.monitor_every > 0:
            if (p + 1) % self.monitor_every == 0 or p + 1 == self.cfg.passes:
                live = models()
                if self.ema is not None:  # what would be tested now: the EMA's weights
                    live = [_with_weights(m, self._values(i)) for i, m in enumerate(live)]
                self.monitor(p, self.seeds, live)

    def _values(self, i: int) -> list[torch.Tensor]:
        src = self.ema.shadow if self.ema is not None else self.tensors
        return [t[i] for t in src] if self.stacked else src

    def state(self, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and JSON of the optimiser, EMA and schedule position, for a checkpoint."""
        tensors: dict[str, torch.Tensor] = {}
        for i, t in enumerate(self.tensors):
            # SGD's momentum buffer as opt.<i> (the name every saved run has); any other state
            # (AdamW's exp_avg, exp_avg_sq, step) as opt.<i>.<key>
            for key, value in self.schedule.opt.state.get(t, {}).items():
                if isinstance(value, torch.Tensor):
                    name = "" if key == "momentum_buffer" else f".{key}"
                    tensors[f"{prefix}opt.{i}{name}"] = value
        if self.ema is not None:
            for i, t in enumerate(self.ema.shadow):
                tensors[f"{prefix}ema.{i}"] = t
        for j, t in enumerate(self.extras):  # their optimiser state (no EMA follows them)
            for key, value in self.schedule.opt.state.get(t, {}).items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{prefix}extra.{j}.{key}"] = value
        return tensors, {"ema_updates": self.ema.updates if self.ema is not None else 0}

    def restore(
        self, prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any], passes_done: int
    ) -> None:
        """Continue after `passes_done` passes from a checkpoint written by `state`."""
        opt = self.schedule.opt
        for i, t in enumerate(self.tensors):
            buf = tensors.get(f"{prefix}opt.{i}")
            if buf is not None:
                opt.state[t]["momentum_buffer"] = buf.to(t.device, t.dtype).clone()
            head = f"{prefix}opt.{i}."
            for name, value in tensors.items():
                if name.startswith(head):
                    key = name[len(head) :]
                    if key == "step":  # AdamW keeps its step count on the CPU (not capturable)
                        opt.state[t][key] = value.detach().cpu().clone()
                    else:
                        opt.state[t][key] = value.to(t.device, t.dtype).clone()
        if self.ema is not None:
            for i, sh in enumerate(self.ema.shadow):
                sh.copy_(tensors[f"{prefix}ema.{i}"])
            self.ema.updates = int(meta["ema_updates"])
        for j, t in enumerate(self.extras):
            head = f"{prefix}extra.{j}."
            for name, value in tensors.items():
                if name.startswith(head):
                    key = name[len(head) :]
                    on_cpu = key == "step"
                    opt.state[t][key] = (
                        value.detach().cpu().clone()
                        if on_cpu
                        else value.to(t.device, t.dtype).clone()
                    )
        self.schedule.fast_forward(passes_done)

    def final(self, models: list[nn.Module]) -> list[nn.Module]:
        """The models to test: under GLaD the EMA's weights are copied into them."""
        if self.ema is not None:
            with torch.no_grad():
                for i, m in enumerate(models):
                    for dst, val in zip(_float_tensors(m), self._values(i), strict=True):
                        dst.copy_(val)
        return models


def _float_tensors(model: nn.Module) -> list[torch.Tensor]:
    return float_state(list(model.parameters()), list(model.buffers()))


def _with_weights(model: nn.Module, values: list[torch.Tensor]) -> nn.Module:
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for dst, val in zip(_float_tensors(twin), values, strict=True):
            dst.copy_(val)
    return twin.eval()


def check_finite_weights(models: list[nn.Module], seeds: tuple[int, ...]) -> None:
    """Raise NonFiniteWeights naming the seed and the tensor when a trained model holds a NaN
    or Inf (a finite loss does not prove finite weights: an infinite lr can leave every weight
    non-finite while the last pass's loss was read before the step that broke it)."""
    for seed, model in zip(seeds, models, strict=True):
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise NonFiniteWeights(
                    f"seed {seed}'s trained weights are not finite ({name} holds NaN or Inf): "
                    "the run is not recorded as done (check the set and lower the learning rate)"
                )
