"""Part 8 of the study: label strategies against LADD's default at equal bytes, paired by seed.

Every run group of part 8 trains the same seeds (0 .. S-1) under one protocol, so two groups'
per-seed accuracies pair up: seed s of a strategy against seed s of LADD's default (the N 5
grid, R 0.625, its labels in the default codec, Eq. 5's loss every pass, fixed weights). The
comparison is the paired difference d_s = acc_s(strategy) - acc_s(default): its mean, its
standard deviation over seeds, and the 2-standard-error bound mean - 2 sd / sqrt(S).

The verdict (`compare`):
- **beats** the default: no more bytes per image (labels + the geometry a store must keep)
  and the paired mean difference above 0 by more than 2 standard errors;
- **worse**: the paired mean below 0 by more than 2 standard errors;
- **within noise** otherwise (with 3 seeds a bound of 2 standard errors is wide: say so).

`strategy_points` reads part 8's records (scripts/study.py); `pareto` keeps the points no other
beats on total bytes and accuracy, per distiller.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Paired", "StrategyPoint", "compare", "pareto", "strategy_points"]

DEFAULT = ("grid:5,0.625", "soft_ce", "constant", "fixed")


@dataclass(frozen=True)
class StrategyPoint:
    """One run group of part 8."""

    distiller: str
    family: str  # baseline | grid | sampler | stored crops | loss | schedule | balance
    what: str  # how it is named in tables and figures
    label_bytes: float  # per image, in the codec the run used
    coord_bytes: float  # per image: what a store keeps of each crop's box and flip
    mean: float
    std: float
    per_seed: tuple[float, ...]
    codec: str | None = None
    default: bool = False  # LADD's default (module doc)
    record: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def total_bytes(self) -> float:
        return self.label_bytes + self.coord_bytes

    @property
    def seeds(self) -> int:
        return len(self.per_seed)


def _family(r: dict[str, Any]) -> tuple[str, str]:
    if r.get("mode") == "baseline":
        return "baseline", "baseline (hard labels)"
    sampler = str(r.get("sampler") or "")
    if r.get("store_epochs"):
        k = str(r.get("codec") or "").split(",")[0].replace("topk:", "top-")
        return "stored crops", f"stored crops, E {r['store_epochs']}, {k}"
    loss, schedule, balance = (
        str(r.get("loss_fn") or "soft_ce"),
        str(r.get("label_schedule") or "constant"),
        str(r.get("balance") or "fixed"),
    )
    if balance != "fixed":
        return "balance", f"{balance} balance"
    if schedule != "constant":
        return "schedule", f"{schedule} ({loss})" if loss != "soft_ce" else schedule
    if loss != "soft_ce":
        return "loss", loss
    if sampler.startswith("grid:"):
        n = sampler.split(":")[1].split(",")[0]
        return "grid", f"LADD N {n}"
    return "sampler", sampler


def strategy_points(records: Iterable[dict[str, Any]]) -> list[StrategyPoint]:
    """Part 8's records as points (other parts' records are skipped)."""
    out = []
    for r in records:
        if str(r.get("part")) != "8" or "mean" not in r:
            continue
        family, what = _family(r)
        key = (
            str(r.get("sampler") or ""),
            str(r.get("loss_fn") or "soft_ce"),
            str(r.get("label_schedule") or "constant"),
            str(r.get("balance") or "fixed"),
        )
        out.append(
            StrategyPoint(
                distiller=str(r["distiller"]),
                family=family,
                what=what,
                label_bytes=float(r.get("label_bytes_per_image") or 0.0),
                coord_bytes=float(r.get("coord_bytes_per_image") or 0.0),
                mean=float(r["mean"]),
                std=float(r.get("std") or 0.0),
                per_seed=tuple(float(v) for v in r.get("per_seed") or (r["mean"],)),
                codec=r.get("codec"),
                default=family == "grid" and key == DEFAULT,
                record=dict(r),
            )
        )
    return sorted(out, key=lambda p: (p.distiller, p.total_bytes, p.what))


@dataclass(frozen=True)
class Paired:
    """A point against LADD's default on the same distiller, seed by seed."""

    point: StrategyPoint
    reference: StrategyPoint
    differences: tuple[float, ...]  # per seed, strategy - default
    verdict: str  # beats | worse | within noise | more bytes

    @property
    def mean(self) -> float:
        return statistics.fmean(self.differences)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.differences) if len(self.differences) > 1 else 0.0

    @property
    def bound(self) -> float:
        """Two standard errors of the paired mean."""
        n = len(self.differences)
        return 2 * self.sd / math.sqrt(n) if n > 1 else math.inf


def _verdict(p: StrategyPoint, ref: StrategyPoint, d: tuple[float, ...]) -> str:
    n = len(d)
    mean = statistics.fmean(d)
    bound = 2 * statistics.stdev(d) / math.sqrt(n) if n > 1 else math.inf
    if mean - bound > 0:
        return "beats" if p.total_bytes <= ref.total_bytes else "more bytes"
    if mean + bound < 0:
        return "worse"
    return "within noise"


def compare(points: Iterable[StrategyPoint]) -> list[Paired]:
    """Every point but the default against its distiller's default, paired by seed (points
    with another number of seeds than the default are left out)."""
    pts = list(points)
    refs = {p.distiller: p for p in pts if p.default}
    out = []
    for p in pts:
        ref = refs.get(p.distiller)
        if ref is None or p is ref or p.seeds != ref.seeds:
            continue
        d = tuple(a - b for a, b in zip(p.per_seed, ref.per_seed, strict=True))
        out.append(Paired(p, ref, d, _verdict(p, ref, d)))
    return sorted(out, key=lambda c: (c.point.distiller, -c.mean))


def pareto(points: Iterable[StrategyPoint]) -> list[StrategyPoint]:
    """Per distiller, the points no other beats on both total bytes and accuracy."""
    pts = list(points)
    return [
        p
        for p in pts
        if not any(
            q.distiller == p.distiller
            and q.total_bytes <= p.total_bytes
            and q.mean >= p.mean
            and (q.total_bytes < p.total_bytes or q.mean > p.mean)
            for q in pts
        )
    ]
