"""Accuracy against label bytes (the study's part 7) and the default codec it picks (issue 26).

`frontier_points` reads part 7's records (scripts/study.py: LADD at IPC 10 with its dense
labels in each codec, beside baseline and baseline++) into one point per run group;
`pareto` keeps those no other point beats on both bytes and accuracy; `choose_default`
applies the stated rule:

    the codec with the fewest label bytes per image whose mean accuracy, on every distiller
    measured, is not below float32's by more than `z` standard errors of the difference of
    the two means (seeds of each run group independent: sqrt(s_a^2 / n_a + s_b^2 / n_b),
    sample standard deviations; z = 2).

A codec better than float32 qualifies; one with fewer than two seeds cannot be judged (no
noise estimate) and does not qualify.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["CodecChoice", "FrontierPoint", "choose_default", "frontier_points", "pareto"]

REFERENCE = "float32"


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


@dataclass(frozen=True)
class CodecChoice:
    """The default the rule picks, with the figures it judged by (per distiller: the codec's
    mean, float32's, their difference and the noise bound)."""

    codec: str
    label_bytes_per_image: float
    reference_bytes_per_image: float
    z: float
    figures: dict[str, dict[str, float]]
    rejected: dict[str, str]  # smaller codecs passed over, and why

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
        points.append(
            FrontierPoint(
                distiller=str(r["distiller"]),
                what=what,
                ladd=ladd,
                label_bytes_per_image=float(r.get("label_bytes_per_image", 0.0)),
                overhead=float(r.get("overhead", 0.0)),
                mean=float(r["mean"]),
                std=float(r.get("std") or 0.0),
                seeds=int(r.get("seeds") or len(r.get("per_seed") or ()) or 1),
                max_abs_error=None if error is None else float(error),
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


def _noise(a: FrontierPoint, b: FrontierPoint) -> float | None:
    if a.seeds < 2 or b.seeds < 2:
        return None
    return math.sqrt(a.std**2 / a.seeds + b.std**2 / b.seeds)


def choose_default(points: Iterable[FrontierPoint], z: float = 2.0) -> CodecChoice | None:
    """The rule of the module doc; None when float32 was not measured on some distiller that
    has codec points, or no codec other than float32 was measured."""
    ladd = [p for p in points if p.ladd]
    distillers = sorted({p.distiller for p in ladd})
    ref = {p.distiller: p for p in ladd if p.what == REFERENCE}
    if not distillers or any(d not in ref for d in distillers):
        return None
    by_codec: dict[str, dict[str, FrontierPoint]] = {}
    for p in ladd:
        by_codec.setdefault(p.what, {})[p.distiller] = p
    candidates = sorted(
        by_codec.items(),
        key=lambda kv: (max(p.label_bytes_per_image for p in kv[1].values()), kv[0]),
    )
    rejected: dict[str, str] = {}
    for codec, per in candidates:
        missing = [d for d in distillers if d not in per]
        if missing:
            rejected[codec] = f"not measured on {', '.join(missing)}"
            continue
        figures: dict[str, dict[str, float]] = {}
        why = None
        for d in distillers:
            c, f = per[d], ref[d]
            bound = _noise(c, f) if codec != REFERENCE else 0.0
            if bound is None:
                why = f"{d}: fewer than two seeds, no noise estimate"
                break
            diff = c.mean - f.mean
            figures[d] = {"mean": c.mean, "float32": f.mean, "difference": diff, "bound": z * bound}
            if diff < -z * bound:
                why = f"{d}: {100 * diff:+.1f} points against float32 (bound {100 * z * bound:.1f})"
                break
        if why is not None:
            rejected[codec] = why
            continue
        bytes_ = max(p.label_bytes_per_image for p in per.values())
        ref_bytes = max(p.label_bytes_per_image for p in ref.values())
        return CodecChoice(codec, bytes_, ref_bytes, z, figures, rejected)
    return None
