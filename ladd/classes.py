"""Per-class views that stay readable at 1000 classes (ImageNet-1K): which classes to show.

A chart with one bar per class, or a C x C confusion matrix, reads well at 10 classes and not at
1000. Above MANY_CLASSES the front ends show instead the few classes that matter: the top-k of a
soft label with the rest as "other", per-class accuracy worst first, the largest confusions.
These helpers pick them; they take numpy arrays and know nothing of any front end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MANY_CLASSES = 20  # above this many classes, per-class charts give way to top-k views and tables


def many_classes(num_classes: int) -> bool:
    """Whether a class count is too many for one bar (or one matrix row) per class."""
    return int(num_classes) > MANY_CLASSES


def class_label(index: int, names: Sequence[str]) -> str:
    """`537: dogsled`: a class as a picker shows it, searchable by index and by name."""
    return f"{int(index)}: {names[int(index)]}"


def class_members(
    labels: np.ndarray | Sequence[int], classes: Sequence[int], per_class: int | None = None
) -> np.ndarray:
    """Positions of the images whose label is in `classes`: the first `per_class` of each
    class (all when None), in their order in the set."""
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    picked = [np.flatnonzero(y == int(c))[:per_class] for c in classes]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def class_window(num_classes: int, first: int, count: int) -> range:
    """Up to `count` consecutive classes from `first` (clamped to the classes there are)."""
    first = max(0, min(int(first), int(num_classes) - 1))
    return range(first, min(int(num_classes), first + max(1, int(count))))


def sample_pool(
    labels: np.ndarray | Sequence[int], limit: int, *, klass: int | None = None, seed: int = 0
) -> np.ndarray:
    """Sorted positions of at most `limit` images to score: those of class `klass` (or all),
    a seeded random draw of them when there are more (no global RNG)."""
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    found = np.flatnonzero(y == int(klass)) if klass is not None else np.arange(y.size)
    if found.size > limit:
        found = np.sort(np.random.default_rng(seed).choice(found, size=limit, replace=False))
    return found


@dataclass(frozen=True)
class TopClasses:
    """The k most probable classes of a set of soft labels, and the mass left to the others."""

    classes: np.ndarray  # (k,) int64, by mean probability over the rows, highest first
    probs: np.ndarray  # (R, k) float, each row's probability of those classes
    other: np.ndarray  # (R,) float, each row's probability of every other class

    @property
    def k(self) -> int:
        return int(self.classes.size)


def top_classes(dense: np.ndarray, k: int) -> TopClasses:
    """The top-k classes of soft labels (R, K) (e.g. one image's crops) by their mean
    probability over the rows; ties go to the lower class index."""
    p = np.asarray(dense, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    k = max(1, min(int(k), p.shape[1]))
    mean = p.mean(axis=0)
    order = np.lexsort((np.arange(mean.size), -mean))[:k]  # (k,) highest mean first
    probs = p[:, order]
    other = np.clip(p.sum(axis=1) - probs.sum(axis=1), 0.0, None)
    return TopClasses(order.astype(np.int64), probs, other)


def worst_first(values: np.ndarray | Sequence[float]) -> np.ndarray:
    """Class indices ordered by `values` ascending (worst accuracy first), ties by index."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    return np.lexsort((np.arange(v.size), v))


@dataclass(frozen=True)
class Confusion:
    """One off-diagonal cell of a confusion matrix [true][predicted]."""

    true: int
    predicted: int
    count: int
    rate: float  # count over the images of the true class


def top_confusions(matrix: np.ndarray | Sequence[Sequence[float]], limit: int) -> list[Confusion]:
    """The `limit` largest off-diagonal counts of a confusion matrix [true][predicted], largest
    first (ties by true class, then predicted class); cells with no image are left out."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {m.shape}")
    totals = m.sum(axis=1)
    off = m.copy()
    np.fill_diagonal(off, 0.0)
    true, pred = np.nonzero(off > 0)  # a matrix of counts is sparse: at most one cell per image
    counts = off[true, pred]
    order = np.lexsort((pred, true, -counts))[: max(0, int(limit))]
    return [
        Confusion(
            true=int(true[i]),
            predicted=int(pred[i]),
            count=int(round(counts[i])),
            rate=float(counts[i] / totals[true[i]]) if totals[true[i]] else 0.0,
        )
        for i in order
    ]
