"""The loss of a batch under a label strategy, for every engine (ladd.trainers).

`LabelStrategy` is the settled choice (a dense loss, a schedule, a balance), read from a
settled TrainConfig (`strategy_of`). `Objective` is one seed group's running state of it: the
learned log-weights (one pair per seed), the calibrated student temperature, the pass it is
in. An engine builds one per group (`make_objective`, None for LADD's default: then the engines
run their own soft cross-entropy, unchanged) and calls it on every batch:

    per_seed = objective(logits, targets, classes, soft, weight)

logits (S, B, K) for stacked seeds or (B, K) for one; targets the batch's probability rows;
classes (S, B) / (B,) each sample's image class; soft (S, B) / (B,) True where the target is
the labeler's label (a dense crop, or the labeler's label of a full image); weight (S, B) 1 for
real samples and 0 for padding. Returns each seed's loss (S,) (or a 0-dim tensor for one seed):

    (sum over hard samples of CE(z, y) * a  +  sum over soft samples of loss(z, p) * b) / B
    + (f_h * s_h + f_d * s_d when learned)

with a = b = 1 ("fixed") or exp(-s) ("learned"; ladd.strategies.balance). In a hard pass of a
phase schedule (HALD) every sample trains on its class, smoothed (the soft flag is ignored).
The engines call `begin_pass()` before each pass's steps; the state (`state()`, `load()`) is
part of a checkpoint, so a resumed run continues the schedule and the calibration exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ladd.strategies.balance import BALANCES
from ladd.strategies.base import DenseLoss, Schedule, StrategyError, smooth_one_hot
from ladd.strategies.losses import LOSSES
from ladd.strategies.losses.soft_ce import cross_entropy
from ladd.strategies.schedules import SCHEDULES
from ladd.strategies.schedules.temperature import CALIBRATION_GRID, CALIBRATION_START

__all__ = ["LabelStrategy", "Objective", "make_objective", "strategy_of"]

DEFAULT_LOSS, DEFAULT_SCHEDULE, DEFAULT_BALANCE = "soft_ce", "constant", "fixed"


@dataclass(frozen=True)
class LabelStrategy:
    """A settled label strategy: its pieces, their full specs and the balance."""

    loss: DenseLoss
    schedule: Schedule
    balance: str = DEFAULT_BALANCE

    def __post_init__(self) -> None:
        if self.balance not in BALANCES:
            raise StrategyError(
                f"unknown balance {self.balance!r}; use one of {', '.join(BALANCES)}"
            )
        if self.schedule.sets_temperature and not self.loss.uses_temperature:
            raise StrategyError(
                f"the {self.schedule.name} schedule sets a temperature: it needs a loss that "
                f"uses one (kl), not {self.loss.spec}"
            )

    @classmethod
    def parse(cls, loss: str, schedule: str, balance: str) -> LabelStrategy:
        return cls(LOSSES.parse(loss), SCHEDULES.parse(schedule), str(balance).strip().lower())

    @property
    def default(self) -> bool:
        """LADD's own: the soft cross-entropy, every pass alike, both terms weighing 1."""
        return (
            self.loss.spec == DEFAULT_LOSS
            and self.schedule.spec == DEFAULT_SCHEDULE
            and self.balance == DEFAULT_BALANCE
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "loss_fn": self.loss.spec,
            "label_schedule": self.schedule.spec,
            "balance": self.balance,
        }


def strategy_of(cfg: Any) -> LabelStrategy:
    """The label strategy a TrainConfig asks for (its loss_fn, label_schedule, balance)."""
    return LabelStrategy.parse(
        getattr(cfg, "loss_fn", DEFAULT_LOSS),
        getattr(cfg, "label_schedule", DEFAULT_SCHEDULE),
        getattr(cfg, "balance", DEFAULT_BALANCE),
    )


def make_objective(
    cfg: Any, seeds: int, device: torch.device, *, stacked: bool
) -> Objective | None:
    """The objective of a settled config for a group of `seeds` seeds, None for LADD's
    default (the engines then compute the soft cross-entropy themselves)."""
    strategy = strategy_of(cfg)
    if strategy.default:
        return None
    return Objective(strategy, cfg.passes, seeds, device, stacked=stacked)


class Objective:
    """One seed group's loss under a label strategy (module doc)."""

    def __init__(
        self,
        strategy: LabelStrategy,
        passes: int,
        seeds: int,
        device: torch.device,
        *,
        stacked: bool,
    ) -> None:
        self.strategy, self.passes, self.seeds, self.stacked = strategy, int(passes), seeds, stacked
        self.loss, self.schedule = strategy.loss, strategy.schedule
        self.learned = strategy.balance == "learned"
        # (S, 2): log-weights of the hard and the dense term; trained with the model
        self.log_weights = (
            nn.Parameter(torch.zeros(seeds, 2, device=device)) if self.learned else None
        )
        self.calibrated = self.schedule.calibrated
        self.student_t = torch.full((seeds,), CALIBRATION_START, device=device)
        self.fitted_t = self.student_t.clone()  # the last batch's fit, applied at the next pass
        lo, hi, count = CALIBRATION_GRID
        self.grid = torch.linspace(lo, hi, count, device=device)
        self.pass_index = torch.zeros((), dtype=torch.long)  # passes begun (on the CPU)
        self.teacher_t = torch.ones((), device=device)
        self.phase = "soft"

    # -- what the optimiser trains and what a checkpoint keeps -----------------------------------

    def parameters(self) -> list[torch.Tensor]:
        """The tensors the run's optimiser trains besides the model's (the log-weights)."""
        return [self.log_weights] if self.log_weights is not None else []

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Add the log-weights to `optimizer` as their own group, without weight decay."""
        if self.log_weights is not None:
            optimizer.add_param_group({"params": [self.log_weights], "weight_decay": 0.0})

    def state(self) -> dict[str, torch.Tensor]:
        out = {
            "objective.pass": self.pass_index.clone(),
            "objective.student_t": self.student_t,
            "objective.fitted_t": self.fitted_t,
        }
        if self.log_weights is not None:
            out["objective.log_weights"] = self.log_weights
        return out

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.pass_index.copy_(tensors["objective.pass"])
            self.student_t.copy_(tensors["objective.student_t"])
            self.fitted_t.copy_(tensors["objective.fitted_t"])
            if self.log_weights is not None:
                self.log_weights.copy_(tensors["objective.log_weights"])
        if int(self.pass_index) > 0:  # the pass it stopped after: its phase and temperature
            self._set_pass(int(self.pass_index) - 1)

    def summary(self) -> dict[str, Any]:
        """What a run records of the strategy's end state, per seed."""
        out: dict[str, Any] = {**self.strategy.to_dict()}
        if self.log_weights is not None:
            w = torch.exp(-self.log_weights.detach()).cpu()
            out["weight_hard"] = [float(v) for v in w[:, 0]]
            out["weight_dense"] = [float(v) for v in w[:, 1]]
        if self.calibrated:
            out["student_temperature"] = [float(v) for v in self.student_t.cpu()]
        if self.schedule.sets_temperature:
            out["last_temperature"] = float(self.teacher_t)
        return out

    # -- the passes --------------------------------------------------------------------------------

    def _set_pass(self, p: int) -> None:
        self.phase = self.schedule.phase(p, self.passes)
        t = self.schedule.temperature(p, self.passes)
        if t is None:
            t = self.loss.temperature if self.loss.temperature is not None else 1.0
        self.teacher_t.fill_(float(t))

    def begin_pass(self) -> None:
        """Before pass p's steps: its phase and temperature; the student temperature fitted on
        the last batch of the pass before (LPQLD updates it after each epoch)."""
        p = int(self.pass_index)
        if p > 0 and self.calibrated:
            self.student_t.copy_(self.fitted_t)
        self._set_pass(p)
        self.pass_index += 1

    # -- the loss ---------------------------------------------------------------------------------

    def __call__(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        classes: torch.Tensor,
        soft: torch.Tensor,
        weight: torch.Tensor | None = None,
        *,
        denominator: torch.Tensor | float | None = None,
        batch_soft: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Each seed's loss (module doc). A sharded engine passes this shard's `denominator`
        (its sample count) and `batch_soft`, the soft flags of the whole global batch (B,):
        the learned weights' penalty takes the global batch's shares."""
        one = logits.dim() == 2
        if one:  # one seed: (B, K) -> (1, B, K)
            logits, targets = logits.unsqueeze(0), targets.unsqueeze(0)
            classes, soft = classes.unsqueeze(0), soft.unsqueeze(0)
            weight = weight.unsqueeze(0) if weight is not None else None
        z = logits.float()
        w = weight.float() if weight is not None else torch.ones(z.shape[:2], device=z.device)
        k = z.shape[-1]
        if self.phase == "hard":
            smooth = smooth_one_hot(classes, k, self.schedule.hard_smoothing)
            per = cross_entropy(z, smooth)  # (S, B): every sample on its class
            hard_sum, soft_sum = (per * w).sum(-1), torch.zeros_like(w[:, 0])
            soft_w = torch.zeros_like(w)
        else:
            t = self.teacher_t
            ts = self.student_t.view(-1, 1) if self.calibrated else None
            if self.calibrated and one:
                ts = ts[:1]
            dense = self.loss.per_sample(z, targets, classes, t, ts)  # (S, B)
            hard = cross_entropy(z, targets)
            soft_w = w * soft.float()
            hard_sum = (hard * (w - soft_w)).sum(-1)
            soft_sum = (dense * soft_w).sum(-1)
            if self.calibrated:
                self._fit_student(z.detach(), targets, soft_w)
        denom = w.sum(-1).clamp_min(1.0) if denominator is None else denominator
        if self.log_weights is None:
            loss = (hard_sum + soft_sum) / denom
        else:
            lw = self.log_weights[:1] if one and self.seeds > 1 else self.log_weights
            if self.phase == "hard":  # every sample is in the hard term
                f_soft = torch.zeros_like(hard_sum)
            elif batch_soft is not None:
                f_soft = batch_soft.float().mean().expand_as(hard_sum)
            else:
                f_soft = soft_w.sum(-1) / w.sum(-1).clamp_min(1.0)
            f_hard = 1.0 - f_soft
            loss = (torch.exp(-lw[:, 0]) * hard_sum + torch.exp(-lw[:, 1]) * soft_sum) / denom
            loss = loss + f_hard * lw[:, 0] + f_soft * lw[:, 1]
        return loss[0] if one else loss

    @torch.no_grad()
    def _fit_student(self, z: torch.Tensor, targets: torch.Tensor, soft_w: torch.Tensor) -> None:
        """LPQLD's calibration on this batch (the last of a pass is the one kept): per seed,
        the grid temperature whose student KL to the teacher at this pass's T is smallest,
        over the soft samples (batch-mean)."""
        t = self.teacher_t
        best = torch.full_like(self.fitted_t[: z.shape[0]], float("inf"))
        pick = self.fitted_t[: z.shape[0]].clone()
        count = soft_w.sum(-1).clamp_min(1.0)
        for g in self.grid:  # 100 small reductions; the first smallest wins, as np.argmin
            kl = self.loss.per_sample(z, targets, None, t, g.view(1, 1))
            value = (kl * soft_w).sum(-1) / count
            better = value < best
            best = torch.where(better, value, best)
            pick = torch.where(better, g, pick)
        self.fitted_t[: z.shape[0]].copy_(pick)
