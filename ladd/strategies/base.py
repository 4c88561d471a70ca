"""Label strategies: one base class per kind, a registry, spec strings (like ladd.codecs).

A label strategy says how a student learns from a label-augmented set's labels, under the same
protocol (optimiser, lr schedule, augmentation, epochs) whatever the strategy:

- a **dense loss** (`DenseLoss`): the loss of a sample whose target is the labeler's label (a
  crop's dense label, or the labeler's label of a full image); the samples with hard labels
  keep the soft-target cross-entropy of Eq. 5. Spec "soft_ce" (LADD's, the default), "kl:20",
  "gift", "mse_gt".
- a **schedule** (`Schedule`): what changes from pass to pass: HALD's soft and hard phases, or
  a teacher temperature (LPQLD's step schedule, with a calibrated student temperature). Spec
  "constant" (the default), "hald", "soft_hard", "temperature", "temperature:calibrated".
- a **balance** between the hard and the dense terms: "fixed" (Eq. 5: both weigh 1) or
  "learned" (ladd.strategies.balance).

A spec string is NAME[:OPT,OPT,...]; options are positional values or key=value pairs. `spec`
gives the full spelling back (parse(spec) rebuilds the same piece), which is what a plan
records.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Generic, TypeVar

import torch

__all__ = [
    "DenseLoss",
    "Registry",
    "Schedule",
    "StrategyError",
    "smooth_one_hot",
    "teacher_logits",
]


class StrategyError(ValueError):
    """A strategy spec that cannot be parsed, or options that cannot be trained (one line)."""


class _Piece:
    """What every registered piece has: a name, its options, and its spec string."""

    name: str = ""

    @property
    def params(self) -> dict[str, Any]:
        """The options that, with `name`, rebuild this piece."""
        return {}

    @property
    def spec(self) -> str:
        opts = ",".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        return f"{self.name}:{opts}" if opts else self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Piece) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


P = TypeVar("P", bound=_Piece)


class Registry(Generic[P]):
    """Pieces of one kind by name; `parse("kl:20")` builds one from a spec string.

    A class registers with `@registry.register`; it is built from its spec's options by
    `cls.from_options(positional, keyword)` (default: keyword arguments only, positional ones
    taken in the order of `cls.positional`)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[P]] = {}

    def register(self, cls: type[P]) -> type[P]:
        if not cls.name or cls.name in self._classes:
            raise ValueError(f"{self.kind} name {cls.name!r} is empty or taken")
        self._classes[cls.name] = cls
        return cls

    def names(self) -> tuple[str, ...]:
        return tuple(self._classes)

    def parse(self, spec: str | P) -> P:
        if isinstance(spec, _Piece):
            return spec  # type: ignore[return-value]
        text = str(spec).strip().lower()
        name, _, opts = text.partition(":")
        cls = self._classes.get(name.strip())
        if cls is None:
            raise StrategyError(
                f"unknown {self.kind} {spec!r}; use one of {', '.join(self._classes)}"
            )
        positional: list[str] = []
        keyword: dict[str, str] = {}
        for part in (o.strip() for o in opts.split(",")) if opts else ():
            if not part:
                continue
            key, eq, value = part.partition("=")
            if eq:
                keyword[key.strip()] = value.strip()
            else:
                positional.append(part)
        names = list(getattr(cls, "positional", ()))
        if len(positional) > len(names):
            raise StrategyError(f"{self.kind} {name}: too many options in {spec!r}")
        for k, v in zip(names, positional, strict=False):
            if k in keyword:
                raise StrategyError(f"{self.kind} {name}: option {k} given twice in {spec!r}")
            keyword[k] = v
        try:
            return cls(**{k: _value(v) for k, v in keyword.items()})
        except StrategyError:
            raise
        except (TypeError, ValueError) as err:
            raise StrategyError(f"{self.kind} {name}: bad options in {spec!r} ({err})") from None


def _value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _positive(name: str, value: Any) -> float:
    v = float(value)
    if not v > 0 or v != v or v == float("inf"):
        raise StrategyError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def _fraction(name: str, value: Any) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise StrategyError(f"{name} must be in [0, 1], got {value!r}")
    return v


# ---------------------------------------------------------------------------------------------
# Helpers the losses share


PROB_FLOOR = 1e-6  # probabilities below it (top-k codecs' zeros) are read as this, for logs


def teacher_logits(probs: torch.Tensor) -> torch.Tensor:
    """The labeler's logits as far as its probabilities tell them: log p, centred per row.

    A label-augmented set stores softmax(g(x)): the logits are known up to a constant per row.
    GIFT and EDC compare the student's logits with the teacher's; here the teacher's are the
    log-probabilities minus their row mean (the one choice of that constant that no row can
    tell apart). Probabilities under PROB_FLOOR (a top-k codec's dropped classes) are read as
    PROB_FLOOR.
    """
    logp = probs.float().clamp_min(PROB_FLOOR).log()
    return logp - logp.mean(-1, keepdim=True)


def smooth_one_hot(classes: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """timm's label smoothing of a hard label (its `mixup_target`): every class gets
    smoothing / K, the true class 1 - smoothing + smoothing / K. (..., ) -> (..., K)."""
    off = smoothing / num_classes
    out = torch.full((*classes.shape, num_classes), off, device=classes.device)
    return out.scatter_(-1, classes.unsqueeze(-1).long(), 1.0 - smoothing + off)


# ---------------------------------------------------------------------------------------------
# The two kinds of piece


class DenseLoss(_Piece):
    """The loss of a sample trained on the labeler's label.

    `per_sample(logits, probs, classes, temperature, student_temperature)`: logits (..., B, K)
    in float32, the targets as probabilities (..., B, K), each sample's class (..., B), and the
    teacher and student temperatures for losses that use one (`uses_temperature`): tensors
    that broadcast against (..., B) (one per seed, or one for all). Returns (..., B).
    """

    uses_temperature: bool = False
    temperature: float | None = None  # its own teacher temperature, for those that use one
    positional: tuple[str, ...] = ()

    @abstractmethod
    def per_sample(
        self,
        logits: torch.Tensor,
        probs: torch.Tensor,
        classes: torch.Tensor,
        temperature: torch.Tensor | None = None,
        student_temperature: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(..., B) losses (module doc)."""


class Schedule(_Piece):
    """What changes from pass to pass of a run of `passes` passes (p = 0 .. passes - 1).

    `phase(p, passes)`: "soft" (the set's labels, the dense loss) or "hard" (every sample with
    its image's hard label, smoothed by `hard_smoothing`). `temperature(p, passes)`: the teacher
    temperature of pass p (None: the dense loss's own). `calibrated`: the student temperature is
    fitted to the last batch of each pass (LPQLD's calibrated alignment), else it is the
    teacher's.
    """

    hard_smoothing: float = 0.0
    calibrated: bool = False
    positional: tuple[str, ...] = ()

    def phase(self, p: int, passes: int) -> str:
        return "soft"

    def temperature(self, p: int, passes: int) -> float | None:
        return None

    @property
    def sets_temperature(self) -> bool:
        """Whether this schedule gives the teacher temperature (the loss must use one)."""
        return False
