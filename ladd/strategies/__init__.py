"""Label strategies under one protocol (issue 37): how a student learns from the labels.

    base.py          DenseLoss and Schedule, their registries' spec grammar, shared helpers
    losses/          soft_ce (LADD's, default), kl (SRe2L/FKD), gift (GIFT), mse_gt (EDC)
    schedules/       constant (default), hald and soft_hard (HALD), temperature (LPQLD)
    balance.py       fixed (Eq. 5) or learned weights between the hard and dense terms
    objective.py     the loss of a batch under a strategy, for every engine

A TrainConfig names them by spec (`loss_fn`, `label_schedule`, `balance`); ladd.plan settles
them (full spellings, checked together) and every engine runs them (ladd.trainers).
"""

from ladd.strategies.balance import BALANCES
from ladd.strategies.base import DenseLoss, Schedule, StrategyError, smooth_one_hot, teacher_logits
from ladd.strategies.losses import LOSSES
from ladd.strategies.objective import LabelStrategy, Objective, make_objective, strategy_of
from ladd.strategies.schedules import SCHEDULES

__all__ = [
    "BALANCES",
    "LOSSES",
    "SCHEDULES",
    "DenseLoss",
    "LabelStrategy",
    "Objective",
    "Schedule",
    "StrategyError",
    "make_objective",
    "smooth_one_hot",
    "strategy_of",
    "teacher_logits",
]
