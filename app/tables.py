"""pandas tables for the views that replace per-class charts at many classes (ladd.classes):
per-class accuracy worst first, the largest confusions, a soft label's top classes.

Builders take numpy arrays and class names and return DataFrames; they know nothing of
Streamlit, so a test checks their numbers directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ladd.classes import TopClasses, class_label, top_confusions, worst_first


def per_class_table(
    names: Sequence[str], columns: Mapping[str, np.ndarray], sort_by: str
) -> pd.DataFrame:
    """One row per class (index, class, then `columns`, rounded), worst first by `sort_by`."""
    if sort_by not in columns:
        raise ValueError(f"cannot sort by {sort_by!r}: the columns are {', '.join(columns)}")
    data = {"index": np.arange(len(names)), "class": list(names)}
    data.update({k: np.round(np.asarray(v, dtype=np.float64), 4) for k, v in columns.items()})
    order = worst_first(columns[sort_by])
    return pd.DataFrame(data).iloc[order].reset_index(drop=True)


def confusions_table(
    matrix: np.ndarray | Sequence[Sequence[float]], names: Sequence[str], limit: int
) -> pd.DataFrame:
    """The `limit` largest off-diagonal cells of a confusion matrix [true][predicted]: true
    class, predicted class, images, and their share of the true class's images."""
    rows = [
        {
            "true": class_label(c.true, names),
            "predicted": class_label(c.predicted, names),
            "count": c.count,
            "rate": round(c.rate, 4),
        }
        for c in top_confusions(matrix, limit)
    ]
    return pd.DataFrame(rows, columns=["true", "predicted", "count", "rate"])


def soft_label_table(top: TopClasses, names: Sequence[str]) -> pd.DataFrame:
    """A soft label's top classes over an image's crops (mean, min and max probability), then
    one row for the probability left to every other class."""
    rest = len(names) - top.k
    labels = [class_label(c, names) for c in top.classes] + [f"other ({rest} classes)"]
    probs = np.concatenate([top.probs, top.other[:, None]], axis=1)  # (crops, k + 1)
    return pd.DataFrame(
        {
            "class": labels,
            "mean": probs.mean(axis=0).round(4),
            "min": probs.min(axis=0).round(4),
            "max": probs.max(axis=0).round(4),
        }
    )
