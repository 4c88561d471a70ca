"""Accuracy against label bytes (the study's part 7) and the default codec it picks (issue 40).

`frontier_points` reads part 7's records (scripts/study.py: LADD at IPC 10 with its dense
labels in each codec, beside baseline and baseline++) into one point per run group;
`pareto` keeps those no other point beats on both bytes and accuracy; `paired_differences`
compares every codec with float32 paired by seed, and `choose_default` applies the stated rule.

Why paired: within a profile, seed s of every codec's run group starts from the same initial
weights and draws the same batch order and augmentation (scripts/study.py trains seeds
0..S-1 of each group); only the stored labels differ. So the seed-to-seed spread, which is much
larger than most codecs' effect, cancels in the per-seed difference codec - float32, and
comparing the two groups' means as independent samples would hide the codecs' real costs.

The paired test, per codec:

    d_i = accuracy(codec, seed i) - accuracy(float32, seed i), over the seeds both run groups
    hold (seed i is the i-th entry of each record's `per_seed`), on one distiller; pooled: the
    d_i of every distiller measured, taken as one sample. Its mean, and the two-sided 95 %
    Student-t interval  mean +- t(0.975, n - 1) * sd / sqrt(n)  (sd the sample standard
    deviation of the n differences).

The rule:

    the default is the codec with the fewest label bytes per image (ties: the smaller paired
    loss, then the name) that was measured on every distiller float32 was, with at least two
    paired seeds on each, and whose 95 % interval includes 0 or lies above it (upper end >= 0)
    both pooled and on every distiller. float32 is the reference and always qualifies.

A t-interval rather than mean +- 2 standard errors: with 3 seeds per distiller and 6 pooled the
normal quantile understates the interval (mean +- 2 SE covers about 90 % at 5 degrees of
freedom, 82 % at 2), and a rule stated as a 95 % interval should be one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LEVEL",
    "POOLED",
    "CodecChoice",
    "FrontierPoint",
    "PairedDifference",
    "choose_default",
    "frontier_points",
    "paired_difference",
    "paired_differences",
    "pareto",
    "t_quantile",
]

REFERENCE = "float32"
LEVEL = 0.95  # the paired interval's confidence level
POOLED = "all"  # the key of the pooled difference (every distiller's seeds together)


@dataclass(frozen=True)
class FrontierPoint:
    """One run group of part 7: what stored the labels, their bytes, its accuracy."""

    distiller: str
    what: str  # a codec spec for LADD, "baseline" or "baseline++"
    ladd: bool
    label_bytes_per_image: float
    overhead: float  # zip-measured, against the set's uint8 images
    mean: float
    std: float
    seeds: int
    max_abs_error: float | None = None
    per_seed: tuple[float, ...] = ()  # accuracy of seed 0, 1, ... (the pairing key)


@dataclass(frozen=True)
class PairedDifference:
    """codec - float32 accuracy paired by seed (fractions): the mean of the n per-seed
    differences, their sample standard deviation, and the two-sided `level` t-interval."""

    n: int
    mean: float
    sd: float
    low: float
    high: float
    level: float = LEVEL

    @property
    def within(self) -> bool:
        """The rule's test: the interval includes 0 or lies above it."""
        return self.high >= 0.0


@dataclass(frozen=True)
class CodecChoice:
    """The default the rule picks, with the paired differences it judged by (per distiller
    and POOLED), and the codecs with fewer bytes it passed over, with the reason."""

    codec: str
    label_bytes_per_image: float
    reference_bytes_per_image: float
    level: float
    differences: dict[str, PairedDifference]  # empty when the pick is float32 itself
    rejected: dict[str, str]

    @property
    def saving(self) -> float:
        """The fraction of float32's label bytes the default saves."""
        return 1.0 - self.label_bytes_per_image / self.reference_bytes_per_image


def frontier_points(records: Iterable[dict[str, Any]]) -> list[FrontierPoint]:
    """Part 7's run groups as points (other parts' records are skipped)."""
    points = []
    for r in records:
        if str(r.get("part")) != "7" or "mean" not in r:
            continue
        ladd = r.get("mode") != "baseline"
        what = str(r.get("codec") or REFERENCE) if ladd else str(r.get("label", "baseline"))
        error = r.get("max_abs_error")
        per_seed = tuple(float(a) for a in (r.get("per_seed") or ()))
        points.append(
            FrontierPoint(
                distiller=str(r["distiller"]),
                what=what,
                ladd=ladd,
                label_bytes_per_image=float(r.get("label_bytes_per_image", 0.0)),
                overhead=float(r.get("overhead", 0.0)),
                mean=float(r["mean"]),
                std=float(r.get("std") or 0.0),
                seeds=int(r.get("seeds") or len(per_seed) or 1),
                max_abs_error=None if error is None else float(error),
                per_seed=per_seed,
            )
        )
    return sorted(points, key=lambda p: (p.distiller, p.label_bytes_per_image, p.what))


def pareto(points: Iterable[FrontierPoint]) -> list[FrontierPoint]:
    """Per distiller, the points no other point beats on both (fewer or equal total bytes,
    higher or equal accuracy, one of them strictly); total bytes = the zip overhead, so the
    baselines' extra images count as the labels' bytes do."""
    pts = list(points)
    keep = []
    for p in pts:
        beaten = any(
            q.distiller == p.distiller
            and q.overhead <= p.overhead
            and q.mean >= p.mean
            and (q.overhead < p.overhead or q.mean > p.mean)
            for q in pts
        )
        if not beaten:
            keep.append(p)
    return keep


# ---------------------------------------------------------------------------------------------
# The paired test


def _t_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with an integer number of degrees of freedom `df`: the
    closed forms of Abramowitz & Stegun 26.7.3 (odd df) and 26.7.4 (even df)."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:
        if df == 1:
            return 2 * theta / math.pi
        term = total = math.cos(theta)
        for k in range(3, df - 1, 2):
            term *= c2 * (k - 1) / k
            total += term
        return 2 / math.pi * (theta + s * total)
    term = total = 1.0
    for k in range(2, df - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    return s * total


def t_quantile(df: int, level: float = LEVEL) -> float:
    """The t with P(|T_df| <= t) = level (two-sided): t(0.975, df) at level 0.95. Bisection
    on the closed-form distribution, to about 1e-12."""
    if df < 1 or not 0 < level < 1:
        raise ValueError(f"need df >= 1 and 0 < level < 1, got {df}, {level}")
    lo, hi = 0.0, 1.0
    while _t_mass(hi, df) < level:
        lo, hi = hi, 2 * hi
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _t_mass(mid, df) < level else (lo, mid)
    return 0.5 * (lo + hi)


def paired_difference(diffs: Sequence[float], level: float = LEVEL) -> PairedDifference | None:
    """The mean of paired differences and its two-sided t-interval; None below two pairs (no
    spread to estimate)."""
    n = len(diffs)
    if n < 2:
        return None
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = t_quantile(n - 1, level) * sd / math.sqrt(n)
    return PairedDifference(n, mean, sd, mean - half, mean + half, level)


def _pairs(codec: FrontierPoint, ref: FrontierPoint) -> list[float]:
    """Per-seed differences codec - float32 over the seeds both hold (seeds 0..S-1)."""
    return [a - b for a, b in zip(codec.per_seed, ref.per_seed, strict=False)]


def paired_differences(
    points: Iterable[FrontierPoint], level: float = LEVEL
) -> dict[str, dict[str, PairedDifference]]:
    """For every LADD codec but float32: its paired difference against float32 on each
    distiller where both were measured with two or more common seeds, and POOLED over those."""
    ladd = [p for p in points if p.ladd]
    ref = {p.distiller: p for p in ladd if p.what == REFERENCE}
    out: dict[str, dict[str, PairedDifference]] = {}
    for codec in sorted({p.what for p in ladd} - {REFERENCE}):
        per: dict[str, PairedDifference] = {}
        pooled: list[float] = []
        for p in sorted((p for p in ladd if p.what == codec), key=lambda p: p.distiller):
            if p.distiller not in ref:
                continue
            diffs = _pairs(p, ref[p.distiller])
            one = paired_difference(diffs, level)
            if one is not None:
                per[p.distiller] = one
                pooled += diffs
        if per:
            if len(per) > 1:
                per[POOLED] = paired_difference(pooled, level)  # type: ignore[assignment]
            else:
                per[POOLED] = next(iter(per.values()))
            out[codec] = per
    return out


def _points(value: float) -> str:
    return f"{100 * value:+.2f}"


def choose_default(points: Iterable[FrontierPoint], level: float = LEVEL) -> CodecChoice | None:
    """The rule of the module doc; None when float32 was not measured on some distiller that
    has codec points, or there are no LADD points."""
    ladd = [p for p in points if p.ladd]
    distillers = sorted({p.distiller for p in ladd})
    ref = {p.distiller: p for p in ladd if p.what == REFERENCE}
    if not distillers or any(d not in ref for d in distillers):
        return None
    diffs = paired_differences(ladd, level)
    by_codec: dict[str, dict[str, FrontierPoint]] = {}
    for p in ladd:
        by_codec.setdefault(p.what, {})[p.distiller] = p

    def order(item: tuple[str, dict[str, FrontierPoint]]) -> tuple:
        codec, per = item
        loss = diffs[codec][POOLED].mean if codec in diffs else 0.0
        return (max(p.label_bytes_per_image for p in per.values()), -loss, codec)

    ref_bytes = max(p.label_bytes_per_image for p in ref.values())
    rejected: dict[str, str] = {}
    for codec, per in sorted(by_codec.items(), key=order):
        bytes_ = max(p.label_bytes_per_image for p in per.values())
        if codec == REFERENCE:
            return CodecChoice(codec, bytes_, ref_bytes, level, {}, rejected)
        missing = [d for d in distillers if d not in per]
        if missing:
            rejected[codec] = f"not measured on {', '.join(missing)}"
            continue
        mine = diffs.get(codec, {})
        short = [d for d in distillers if d not in mine]
        if short:
            rejected[codec] = f"{', '.join(short)}: fewer than two paired seeds"
            continue
        below = [w for w in (POOLED, *distillers) if not mine[w].within]
        if below:
            rejected[codec] = "; ".join(
                f"{'pooled' if w == POOLED else w}: {_points(mine[w].mean)} points, "
                f"{100 * level:g} % interval [{_points(mine[w].low)}, {_points(mine[w].high)}]"
                for w in below
            )
            continue
        return CodecChoice(codec, bytes_, ref_bytes, level, mine, rejected)
    return None
