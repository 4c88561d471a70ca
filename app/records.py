"""The study's result records (one JSON file per run group) as a table for the Results page.

scripts/study.py writes one record per run group under docs/results/ (part, profile, distiller,
ipc, arch, mode, n, r, labeler epoch, epochs, seeds, mean, std, ...); records a user keeps in
the workspace's records/ folder are read the same way. A file that is not such a record is
skipped and named, never fatal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from app.paths import workspace_root

REPO_RECORDS = Path(__file__).resolve().parents[1] / "docs" / "results"
# Columns in the order shown; a column no record has is left out.
COLUMNS = (
    "part",
    "profile",
    "dataset",
    "distiller",
    "ipc",
    "arch",
    "mode",
    "protocol",
    "optimizer",
    "augmentation",
    "engine",
    "n",
    "r",
    "labeler_epoch",
    "epochs",
    "width",
    "codec",
    "sampler",
    "store_epochs",
    "loss_fn",
    "label_schedule",
    "balance",
    "label",
    "label_bytes_per_image",
    "coord_bytes_per_image",
    "overhead",
    "mean",
    "std",
    "per_seed",  # seed i's accuracy: part 7 pairs codecs by seed (ladd.codecs.choice)
    "seeds",
    "seconds",
    "device",
    "date",
    "borrowed",
    "where",
    "file",
)
FILTERS = ("part", "profile", "distiller", "ipc", "arch", "mode", "protocol")
_NEEDED = ("mean", "mode")


def record_folders() -> dict[str, Path]:
    """Where records are read from, by the name shown in the table's `where` column."""
    return {
        "study (docs/results)": REPO_RECORDS,
        "workspace (records/)": workspace_root() / "records",
    }


def read_records(folders: dict[str, Path]) -> tuple[pd.DataFrame, list[str]]:
    """Every record in `folders` as one row, and the files that were skipped (with why)."""
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for where, folder in folders.items():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                skipped.append(f"{path.name}: {type(err).__name__}")
                continue
            if not isinstance(rec, dict) or any(k not in rec for k in _NEEDED):
                skipped.append(f"{path.name}: not a result record")
                continue
            row = {k: rec.get(k) for k in COLUMNS if k in rec}
            seeds = rec.get("seeds")
            per_seed = rec.get("per_seed")
            if not isinstance(seeds, int):  # a list of seeds, or only per-seed accuracies
                seeds = len(seeds) if isinstance(seeds, list) else None
            if seeds is None and isinstance(per_seed, list):
                seeds = len(per_seed)
            row["seeds"] = seeds
            row["where"], row["file"] = where, path.name
            rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df, skipped
    for col in ("mean", "std"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df[[c for c in COLUMNS if c in df.columns]], skipped


def ladd_gain(df: pd.DataFrame) -> pd.DataFrame:
    """Baseline and LADD side by side wherever a record of each has the same settings
    (part, profile, dataset, distiller, ipc, arch, protocol), with the difference."""
    if df.empty or "mode" not in df:
        return pd.DataFrame()
    keys = [
        c for c in ("part", "profile", "dataset", "distiller", "ipc", "arch", "protocol") if c in df
    ]
    base = df[df["mode"] == "baseline"]
    # LADD rows at the default crop grid only (part 3 varies N and R on purpose).
    ladd = df[df["mode"] == "ladd"]
    if "n" in df and "r" in df:
        ladd = ladd[(ladd["n"] == 5) & (ladd["r"].astype(float).round(4) == 0.625)]
    cols = [*keys, *(c for c in ("mean", "std") if c in df)]  # a hand-made record may lack std
    merged = base[cols].merge(
        ladd[[*cols, "labeler_epoch"] if "labeler_epoch" in ladd else cols],
        on=keys,
        suffixes=(" baseline", " LADD"),
    )
    if merged.empty:
        return merged
    merged["LADD - baseline"] = merged["mean LADD"] - merged["mean baseline"]
    return merged.reset_index(drop=True)


def codec_points(df: pd.DataFrame) -> list[Any]:
    """Part 7's rows (accuracy against label bytes) as ladd.codecs.choice FrontierPoints."""
    from ladd.codecs.choice import frontier_points

    if df.empty or "part" not in df:
        return []
    rows = df[df["part"].astype(str) == "7"]
    recs = [{k: v for k, v in r.items() if not _missing(v)} for r in rows.to_dict("records")]
    return frontier_points(recs)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def strategy_points(df: pd.DataFrame) -> list[Any]:
    """Part 8's rows (label strategies at their bytes per image) as
    ladd.strategies.compare.StrategyPoints."""
    from ladd.strategies.compare import strategy_points as points

    if df.empty or "part" not in df:
        return []
    rows = df[df["part"].astype(str) == "8"]
    recs = [{k: v for k, v in r.items() if not _missing(v)} for r in rows.to_dict("records")]
    return points(recs)


def strategy_pairs(points: list[Any]) -> pd.DataFrame:
    """Each part 8 point against its distiller's LADD default, paired by seed, as a table."""
    from ladd.strategies.compare import compare

    rows = [
        {
            "distiller": c.point.distiller,
            "strategy": c.point.what,
            "bytes / image": c.point.total_bytes,
            "accuracy (%)": 100 * c.point.mean,
            "vs default (%)": 100 * c.mean,
            "sd over seeds (%)": 100 * c.sd,
            "verdict": c.verdict,
        }
        for c in compare(points)
    ]
    return pd.DataFrame(rows)
