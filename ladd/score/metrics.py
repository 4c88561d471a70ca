"""DD-Ranking's scores of a set from its per-seed accuracies, and the tables of a recorded score."""

from __future__ import annotations

import math
import statistics
from typing import Any

VARIANTS: dict[str, str] = {
    "shipped": "its own labels as shipped",
    "hard": "hard labels only",
    "no_aug": "hard labels, no augmentation",
    "ladd": "LADD's dense labels",
}
SUBJECTS = ("set", "random", "full")


def squash(x: float) -> float:
    """DD-Ranking's (e^x - e^-1) / (e - e^-1) (hard_label.py:383, aug_robust.py:580)."""
    return (math.exp(x) - math.exp(-1.0)) / (math.e - math.exp(-1.0))


def _mean_std(values: list[float]) -> dict[str, Any]:
    return {
        "per_seed": values,
        "mean": statistics.fmean(values) if values else None,
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def dd_ranking_scores(
    acc: dict[str, list[float]], full: float | list[float] | None, lam: float = 0.5
) -> dict[str, dict[str, Any]]:
    """HLR, IOR, LRS and ARS (module doc) from per-seed accuracies (fractions in [0, 1]).

    `acc` keys are "set/hard", "random/hard", "set/no_aug", "random/no_aug", "set/ladd",
    "random/ladd" (those present are used; seeds pair by position). `full`: the full-data
    accuracy, one number or one per seed (None: no HLR, LRS). HLR and IOR come back in
    percentage points; `lrs`/`ars` as DD-Ranking's code computes them (points in the exponent),
    `*_fraction` with accuracies as fractions."""

    def pairs(a: str, b: str) -> list[tuple[float, float]]:
        if a not in acc or b not in acc:
            return []
        if len(acc[a]) != len(acc[b]):
            raise ValueError(f"{a} and {b} have {len(acc[a])} and {len(acc[b])} seeds")
        return list(zip(acc[a], acc[b], strict=True))

    hard = pairs("set/hard", "random/hard")
    fulls: list[float] = []
    if full is not None and hard:
        fulls = list(full) if isinstance(full, (list, tuple)) else [float(full)] * len(hard)
        if len(fulls) != len(hard):
            raise ValueError(f"{len(fulls)} full-data accuracies for {len(hard)} seeds")
    out: dict[str, dict[str, Any]] = {}
    if hard:
        out["ior"] = _mean_std([100 * (s - r) for s, r in hard])
    if fulls:
        out["hlr"] = _mean_std([100 * (f - s) for f, (s, _) in zip(fulls, hard, strict=True)])
        for unit, k in (("", 100.0), ("_fraction", 1.0)):
            out["lrs" + unit] = _mean_std(
                [
                    squash(lam * k * (s - r) - (1 - lam) * k * (f - s))
                    for f, (s, r) in zip(fulls, hard, strict=True)
                ]
            )
    noaug = pairs("set/no_aug", "random/no_aug")
    if hard and noaug:
        out["ior_no_aug"] = _mean_std([100 * (s - r) for s, r in noaug])
        for unit, k in (("", 100.0), ("_fraction", 1.0)):
            out["ars" + unit] = _mean_std(
                [
                    squash(lam * k * (s - r) + (1 - lam) * k * (s2 - r2))
                    for (s, r), (s2, r2) in zip(hard, noaug, strict=True)
                ]
            )
    ladd = pairs("set/ladd", "random/ladd")
    if ladd:
        out["ior_ladd"] = _mean_std([100 * (s - r) for s, r in ladd])
        if fulls:
            for unit, k in (("", 100.0), ("_fraction", 1.0)):
                out["lrs_ladd" + unit] = _mean_std(
                    [
                        squash(lam * k * (s - r) - (1 - lam) * k * (f - h))
                        for f, (s, r), (h, _) in zip(fulls, ladd, hard, strict=True)
                    ]
                )
    return out


# ---------------------------------------------------------------------------------------------
# Tables of a recorded score (ScoreResult.to_dict()): the dashboard's and docs/results.md's

SCORE_NAMES: dict[str, str] = {
    "hlr": "HLR (points)",
    "ior": "IOR, hard labels (points)",
    "ior_no_aug": "IOR, no augmentation (points)",
    "lrs": "LRS (DD-Ranking's code: points in the exponent)",
    "lrs_fraction": "LRS (accuracies as fractions)",
    "ars": "ARS (DD-Ranking's code: points in the exponent)",
    "ars_fraction": "ARS (accuracies as fractions)",
    "ior_ladd": "IOR, LADD's dense labels (points)",
    "lrs_ladd": "soft LRS, LADD's labels (points in the exponent)",
    "lrs_ladd_fraction": "soft LRS, LADD's labels (fractions)",
}


def score_rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant of a recorded score: the set's and its random twin's accuracy
    (percent, mean and std over seeds), the label bytes and points per KiB."""
    rows = d.get("rows", {})
    out = []
    for variant, what in VARIANTS.items():
        s, r = rows.get(f"set/{variant}"), rows.get(f"random/{variant}")
        if s is None:
            continue
        out.append(
            {
                "variant": variant,
                "labels": f"shipped: {d.get('shipped', '')}" if variant == "shipped" else what,
                "set_mean": 100 * s["mean"],
                "set_std": 100 * s["std"],
                "random_mean": 100 * r["mean"] if r else None,
                "random_std": 100 * r["std"] if r else None,
                "label_bytes": s.get("label_bytes"),
                "points_per_kib": s.get("points_per_kib"),
                "seeds": len(s["per_seed"]),
            }
        )
    return out


def score_metrics(d: dict[str, Any]) -> list[dict[str, Any]]:
    """DD-Ranking's scores of a recorded score, named with their units."""
    out = []
    for key, name in SCORE_NAMES.items():
        v = d.get("scores", {}).get(key)
        if v and v.get("mean") is not None:
            out.append({"score": name, "key": key, "mean": v["mean"], "std": v["std"]})
    return out
