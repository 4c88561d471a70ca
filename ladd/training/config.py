"""TrainConfig: what a front end asks of a deployment training, before it is settled.

A config may leave choices to the set and the device ("auto" protocol and precision, no lr,
the fast trainer's engine); `ladd.training.plan.plan_training` settles every one of them, once,
into a `TrainPlan`, and everything below the plan reads only a settled config (`settled` is
True). Options are checked here when the config is made: a bad value is an error at the click
or on the command line, never in a worker thread.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ladd.dsa import DSAConfig
from ladd.limits import current_limits
from ladd.numbers import require_finite
from ladd.training.modes import LabelMode, label_mode
from ladd.training.protocols import PROTOCOLS, Protocol

__all__ = ["FULL_LABELS", "LOSSES", "PRECISIONS", "STRATEGY_DEFAULTS", "TRAINERS", "TrainConfig"]

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
LOSSES: tuple[str, ...] = ("mean", "image_sum")
FULL_LABELS: tuple[str, ...] = ("hard", "set_soft")
TRAINERS: tuple[str, ...] = ("fast", "reference", "ddp")
# The label strategy's and the sampler's fields at their defaults (LADD's own: Eq. 5's soft
# cross-entropy every pass, fixed weights, the N x R grid); `to_dict` leaves these out.
STRATEGY_DEFAULTS: dict[str, Any] = {
    "loss_fn": "soft_ce",
    "label_schedule": "constant",
    "balance": "fixed",
    "sampler": None,
}
MAX_EPOCHS = 1_000_000


def _check_strategy(cfg: TrainConfig) -> None:
    """The label strategy and the sampler parse (a bad spec fails at the click); they are
    settled (full spellings, checked together) by ladd.plan."""
    from ladd.samplers import SamplerError, parse_sampler
    from ladd.strategies import LabelStrategy, StrategyError

    try:
        LabelStrategy.parse(cfg.loss_fn, cfg.label_schedule, cfg.balance)
        if cfg.sampler is not None:
            parse_sampler(cfg.sampler)
    except (StrategyError, SamplerError) as err:
        raise ValueError(str(err)) from None


@dataclass(frozen=True)
class TrainConfig:
    """How models are trained on a distilled set (the settled form is saved with every run).

    protocol: "mtt" | "glad" | "rded" | "auto" (by the set's image size). lr: None = the
    protocol's rule (a set's learned lr under mtt for its own architecture, else the
    architecture's rate). trainer: "fast" (the plan picks its engine), "reference" or "ddp".
    precision: "auto" = bf16 for the fast trainer on CUDA, fp32 elsewhere. n, r: the crop grid
    of crop modes on a plain distilled set (a label-augmented set brings its own); None when
    no crops are used. loss: "mean" over a batch | "image_sum" (x samples per image, Eq. 5).
    full_labels: "hard" (one-hot, Eq. 5) | "set_soft" (the set's own soft labels, e.g. DATM's).
    model_options: e.g. {"width": 32} (the ConvNets' width).
    loss_fn, label_schedule, balance: the label strategy (ladd.strategies): the loss of the
    samples trained on the labeler's labels ("soft_ce", Eq. 5's; "kl:20", "gift", "mse_gt"),
    what changes from pass to pass ("constant"; "hald", "soft_hard", "temperature",
    "temperature:calibrated") and the weights of the hard and dense terms ("fixed", "learned").
    sampler: the crops of crop modes on a plain set (ladd.samplers spec, e.g.
    "multiscale:3@0.75,4@0.5"); None = the N x R grid of n and r. A label-augmented set brings
    its own.
    """

    arch: str = "convnet_d3"
    mode: str = "ladd"
    epochs: int = 1000
    lr: float | None = None
    batch_size: int = 256
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    protocol: str = "auto"
    loss: str = "mean"
    full_labels: str = "hard"
    trainer: str = "fast"
    precision: str = "auto"
    dsa: bool = True
    dsa_strategy: str = DSAConfig().strategy
    n: int | None = 5
    r: float | None = 0.625
    eval_batch_size: int = 1024
    model_options: dict[str, Any] = field(default_factory=dict)
    loss_fn: str = "soft_ce"
    label_schedule: str = "constant"
    balance: str = "fixed"
    sampler: str | None = None

    def __post_init__(self) -> None:
        label_mode(self.mode)
        _check_strategy(self)
        if self.trainer not in TRAINERS:
            raise ValueError(f"unknown trainer {self.trainer!r}; use one of {', '.join(TRAINERS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use auto, fp32 or bf16")
        if self.protocol != "auto" and self.protocol not in PROTOCOLS:
            raise ValueError(
                f"unknown protocol {self.protocol!r}; use auto or one of {', '.join(PROTOCOLS)}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
        if self.full_labels == "set":
            warnings.warn(
                "full_labels 'set' is deprecated: say 'set_soft' (the set's own soft labels)",
                DeprecationWarning,
                stacklevel=3,
            )
            object.__setattr__(self, "full_labels", "set_soft")
        if self.full_labels not in FULL_LABELS:
            raise ValueError(
                f"unknown full_labels {self.full_labels!r}; use one of {', '.join(FULL_LABELS)}"
            )
        if not 1 <= int(self.epochs) <= MAX_EPOCHS:
            raise ValueError(f"epochs must be between 1 and {MAX_EPOCHS:,}, got {self.epochs}")
        if not 1 <= int(self.batch_size) <= 1 << 20:
            raise ValueError(f"batch size must be between 1 and {1 << 20:,}, got {self.batch_size}")
        if not 1 <= int(self.eval_batch_size) <= 1 << 20:
            raise ValueError(f"eval batch size must be >= 1, got {self.eval_batch_size}")
        require_finite("lr", self.lr, positive=True)
        require_finite("momentum", self.momentum)
        require_finite("weight decay", self.weight_decay)
        if self.r is not None:
            require_finite("r", self.r, positive=True)
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        current_limits().check_seeds(len(self.seeds))  # LADD_MAX_SEEDS: a typo's 10^8 refused
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))

    @property
    def label_mode(self) -> LabelMode:
        return label_mode(self.mode)

    @property
    def settled(self) -> bool:
        """Whether nothing is left to settle (protocol, lr and precision chosen): what a plan
        holds and the engines read."""
        return self.protocol != "auto" and self.lr is not None and self.precision != "auto"

    @property
    def protocol_spec(self) -> Protocol:
        if self.protocol == "auto":
            raise ValueError("the protocol is 'auto': plan the run first (plan_training)")
        return PROTOCOLS[self.protocol]

    @property
    def passes(self) -> int:
        """Passes over the training set: epochs, plus one under MTT's range(Epoch + 1)."""
        return self.epochs + (1 if self.protocol_spec.extra_pass else 0)

    @property
    def dsa_config(self) -> DSAConfig:
        return DSAConfig(strategy=self.dsa_strategy)

    @property
    def augmentation(self) -> str:
        """The training augmentation the engines apply: "dsa" (with dsa_strategy), "rded"
        (ladd.rded, the rded protocol's), or "" (dsa = False, or no DSA op: none)."""
        if not self.dsa:
            return ""
        kind = self.protocol_spec.augment
        return "" if kind == "dsa" and not self.dsa_config.ops else kind

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON. The label-strategy fields and the sampler are left out at their
        defaults, so that the keys of runs made before they existed (ladd.plan, sweep cells)
        stay what they were; `from_dict` gives the defaults back."""
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        for name, default in STRATEGY_DEFAULTS.items():
            if d.get(name) == default:
                d.pop(name)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """A config from its `to_dict` form (a run record's); keys it does not know are dropped,
        missing ones take today's defaults."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "seeds" in kw:
            kw["seeds"] = tuple(kw["seeds"])
        return cls(**kw)
