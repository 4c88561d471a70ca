"""Comparing runs on the same real images: predictions, which images to show, the CAM grid.

Paper Fig. 4 shows a few test images with, for the baseline and for LADD, each model's class
activation map titled with its predicted class and probability. Choosing the images that make
the point ("LADD right, baseline wrong", "both wrong", one class, or an honest random draw) is a
question about two models' predictions on the same inputs; it lives here so that the dashboard
and the report (ladd.report) pick the same way, and it is tested without any front end.

A run's models read the images in their own input space: the caller builds each run's inputs
with `run_inputs` (ladd.deploy.eval_inputs: the run's set's mean/std and ZCA), never with the
source's statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "GRID_FORMATS",
    "PICKS",
    "SLIDE_INCHES",
    "CamGrid",
    "Predictions",
    "cam_grid",
    "cam_grid_on",
    "display_images",
    "grid_figure_size",
    "pick_images",
    "predict",
    "render_cam_grid",
    "run_inputs",
]

# Rule -> what it shows (A is the first run, e.g. the baseline; B the second, e.g. LADD).
PICKS: dict[str, str] = {
    "b_right_a_wrong": "B right, A wrong",
    "a_right_b_wrong": "A right, B wrong",
    "both_wrong": "both wrong",
    "both_right": "both right",
    "class": "one class",
    "random": "at random",
}


@dataclass(frozen=True)
class Predictions:
    """What one model says about a batch of images."""

    predicted: np.ndarray  # (N,) int64, top class
    probability: np.ndarray  # (N,) float32, softmax probability of the top class


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 512) -> Predictions:
    """Top class and its probability for `inputs` (N, C, H, W), in the model's input space."""
    model.eval()
    device = next(model.parameters()).device
    preds, probs = [], []
    for i in range(0, inputs.shape[0], batch_size):
        p = torch.softmax(model(inputs[i : i + batch_size].to(device).float()).float(), dim=1)
        top, cls = p.max(dim=1)
        preds.append(cls.cpu())
        probs.append(top.cpu())
    if not preds:
        return Predictions(np.zeros(0, np.int64), np.zeros(0, np.float32))
    return Predictions(
        torch.cat(preds).numpy().astype(np.int64), torch.cat(probs).numpy().astype(np.float32)
    )


def pick_images(
    labels: np.ndarray | Sequence[int],
    pred_a: np.ndarray | Sequence[int],
    pred_b: np.ndarray | Sequence[int],
    rule: str,
    k: int,
    *,
    klass: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Indices of up to `k` images that satisfy `rule` (a key of PICKS), ordered by class.

    `klass` restricts any rule to the images of one class (required by "class"). When more than
    `k` images qualify, `k` are drawn at random with `seed` (reproducible; no global RNG).
    Fewer than `k` come back when fewer qualify, possibly none.
    """
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    a = np.asarray(pred_a, dtype=np.int64).reshape(-1)
    b = np.asarray(pred_b, dtype=np.int64).reshape(-1)
    if not (y.shape == a.shape == b.shape):
        raise ValueError(f"labels {y.shape} and predictions {a.shape}, {b.shape} differ in length")
    if rule not in PICKS:
        raise ValueError(f"unknown pick {rule!r}; use one of {', '.join(PICKS)}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    a_ok, b_ok = a == y, b == y
    keep = {
        "b_right_a_wrong": b_ok & ~a_ok,
        "a_right_b_wrong": a_ok & ~b_ok,
        "both_wrong": ~a_ok & ~b_ok,
        "both_right": a_ok & b_ok,
        "class": np.ones_like(y, dtype=bool),
        "random": np.ones_like(y, dtype=bool),
    }[rule]
    if rule == "class" and klass is None:
        raise ValueError('the "class" pick needs a class')
    if klass is not None:
        keep = keep & (y == int(klass))
    found = np.flatnonzero(keep)
    if found.size > k:
        rng = np.random.default_rng(seed)
        found = rng.choice(found, size=k, replace=False)
    return found[np.lexsort((found, y[found]))]  # by class, then by index


def run_inputs(
    run: Any,
    images: Any,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
) -> torch.Tensor:
    """Real images (an ImageSet) in the input space a run's models were trained in.

    `run`: a ladd.summaries.RunSummary; its set is read again as the run read it (its recorded
    SetReading: format, mean/std, ZCA), and the set's normalisation and ZCA are applied by
    ladd.deploy.eval_inputs, exactly as evaluation did.
    """
    from ladd.deploy import eval_inputs
    from ladd.sets import load_set

    if not run.set_path:
        raise ValueError(f"run #{run.id} does not record its set, so its input space is unknown")
    ds = load_set(run.set_path, cache_dir=cache_dir, **run.set_reading().load_options())
    return eval_inputs(ds, images, torch.device(device))


@dataclass(frozen=True)
class CamGrid:
    """Paper Fig. 4 as data: rows = runs, columns = images, one map per cell."""

    images: np.ndarray  # (k, H, W, 3) uint8, the images as shown
    labels: np.ndarray  # (k,) int64, true classes
    indices: np.ndarray  # (k,) int64, positions in the image set they came from
    maps: np.ndarray  # (R, k, H, W) float32 in [0, 1]
    predicted: np.ndarray  # (R, k) int64
    probability: np.ndarray  # (R, k) float32, of the predicted class
    row_names: tuple[str, ...]
    class_names: tuple[str, ...]
    method: str  # a key of ladd.cam.CAM_METHODS

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return int(self.maps.shape[0]), int(self.maps.shape[1])

    def overlays(self, alpha: float = 0.45) -> np.ndarray:
        """(R, k, H, W, 3) uint8: each map blended over its image."""
        from ladd.cam import overlay

        r, k = self.shape
        out = np.empty((r, k, *self.images.shape[1:]), np.uint8)
        for i in range(r):
            for j in range(k):
                out[i, j] = overlay(self.images[j], self.maps[i, j], alpha)
        return out

    def title(self, row: int, col: int) -> str:
        """`cat 0.87`: what the row's model predicted for the column's image."""
        name = self.class_names[int(self.predicted[row, col])]
        return f"{name} {float(self.probability[row, col]):.2f}"

    def correct(self, row: int, col: int) -> bool:
        return int(self.predicted[row, col]) == int(self.labels[col])

    @classmethod
    def from_results(
        cls,
        images: np.ndarray,
        labels: np.ndarray,
        indices: np.ndarray,
        results: Sequence[Any],
        row_names: Sequence[str],
        class_names: Sequence[str],
    ) -> CamGrid:
        """A grid from one ladd.cam.CamResult per row (all over the same k images)."""
        if len(results) != len(row_names):
            raise ValueError(f"{len(results)} CAM results for {len(row_names)} rows")
        if not results:
            raise ValueError("a CAM grid needs at least one row")
        methods = {r.method for r in results}
        if len(methods) != 1:
            raise ValueError(f"rows use different CAM methods: {sorted(methods)}")
        return cls(
            images=np.asarray(images, np.uint8),
            labels=np.asarray(labels, np.int64),
            indices=np.asarray(indices, np.int64),
            maps=np.stack([r.maps for r in results]).astype(np.float32),
            predicted=np.stack([r.predicted for r in results]).astype(np.int64),
            probability=np.stack([r.probability for r in results]).astype(np.float32),
            row_names=tuple(row_names),
            class_names=tuple(class_names),
            method=methods.pop(),
        )


def cam_grid(
    models: Sequence[nn.Module],
    inputs: Sequence[torch.Tensor],
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    row_names: Sequence[str],
    class_names: Sequence[str],
    *,
    method: str = "gradcam",
    explain_true: bool = False,
    guard: Callable[[int], AbstractContextManager[Any]] | None = None,
) -> CamGrid:
    """CAMs of the same k images under each model (one row per model).

    `inputs[r]`: the k images in model r's input space, (k, C, H, W) (see `run_inputs`);
    `images`: the same k images as (k, H, W, 3) uint8 for display. Each map explains the
    model's predicted class, or the true class with `explain_true`. `guard(r)`, when given, is
    held while model r runs (the dashboard's per-model lock: CAM hooks are not thread-safe).
    """
    from ladd.cam import explain

    if len(models) != len(inputs):
        raise ValueError(f"{len(models)} models but {len(inputs)} input batches")
    targets = [int(c) for c in np.asarray(labels).reshape(-1)] if explain_true else None
    results = []
    for r, (model, x) in enumerate(zip(models, inputs, strict=True)):
        with guard(r) if guard is not None else nullcontext():
            results.append(explain(model, x, targets, method))
    return CamGrid.from_results(images, labels, indices, results, row_names, class_names)


def display_images(images: torch.Tensor) -> np.ndarray:
    """(k, C, H, W) uint8 images as (k, H, W, 3) uint8 for display (grey repeated to RGB)."""
    shown = images.permute(0, 2, 3, 1).cpu().numpy()
    return shown.repeat(3, axis=-1) if shown.shape[-1] == 1 else shown


def cam_grid_on(
    models: Sequence[nn.Module],
    inputs: Sequence[torch.Tensor],
    test: Any,
    indices: Sequence[int] | np.ndarray,
    row_names: Sequence[str],
    *,
    method: str = "gradcam",
    explain_true: bool = False,
    guard: Callable[[int], AbstractContextManager[Any]] | None = None,
) -> CamGrid:
    """The CAM grid of `models` (rows) on images `indices` (columns) of the real set `test`
    (an ImageSet): what the dashboard, the report and the CLI show.

    `inputs[r]`: the whole of `test` in model r's input space (`run_inputs`); the columns are
    taken from it, shown from `test`'s own uint8 images, labelled with its class names.
    """
    idx = np.asarray(indices, np.int64).reshape(-1)
    pick = torch.as_tensor(idx)
    return cam_grid(
        models,
        [x[pick] for x in inputs],
        display_images(test.images[pick]),
        test.labels[pick].cpu().numpy(),
        idx,
        row_names,
        list(test.info.class_names),
        method=method,
        explain_true=explain_true,
        guard=guard,
    )


# ---------------------------------------------------------------------------------------------
# The CAM grid as a figure file (paper Fig. 4) for slides and reports

GRID_FORMATS: dict[str, str] = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
}
SLIDE_INCHES: tuple[float, float] = (13.333, 7.5)  # a 16:9 slide


def grid_figure_size(
    rows: int, cols: int, slide: tuple[float, float] = SLIDE_INCHES
) -> tuple[float, float]:
    """(width, height) in inches of a rows x cols grid of square maps that fits on a slide:
    as wide as the slide unless that would make it taller than the slide."""
    cell_w, cell_h = 1.0, 1.32  # a square map plus its title line
    label_w, head_h = 1.1, 0.35  # row names on the left, true classes on top
    width_in_cells = label_w + cols * cell_w
    height_in_cells = head_h + rows * cell_h
    scale = min(slide[0] / width_in_cells, slide[1] / height_in_cells)
    return (round(width_in_cells * scale, 3), round(height_in_cells * scale, 3))


def render_cam_grid(
    grid: CamGrid,
    fmt: str = "png",
    *,
    scale: float = 2.0,
    show_inputs: bool = True,
    alpha: float = 0.45,
    slide: tuple[float, float] = SLIDE_INCHES,
) -> bytes:
    """A ladd.compare.CamGrid as one PNG (at `scale` x 100 dpi), SVG or PDF sized for a slide.

    Columns are images (true class on top), rows the input images (with `show_inputs`) and then
    one row per run; each map is titled with the predicted class and its probability, green
    when right and red when wrong. Drawn with matplotlib's object API (no pyplot state),
    imported here only, so the core does not need it until a figure is asked for.
    """
    fmt = fmt.lower()
    if fmt not in GRID_FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; use one of {', '.join(GRID_FORMATS)}")
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # comes with grad-cam (the 'app' extra)
        raise ImportError("figure export needs matplotlib: pip install matplotlib") from err
    import io

    rows, cols = grid.shape
    shown = grid.overlays(alpha)  # (R, k, H, W, 3)
    names = list(grid.row_names)
    if show_inputs:
        shown = np.concatenate([grid.images[None], shown], axis=0)
        names = ["input", *names]
    n_rows = shown.shape[0]
    fig = Figure(figsize=grid_figure_size(n_rows, cols, slide), layout="constrained")
    axes = fig.subplots(n_rows, cols, squeeze=False)
    for i in range(n_rows):
        for j in range(cols):
            ax = axes[i][j]
            ax.imshow(shown[i, j], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if i == 0:
                ax.set_title(grid.class_names[int(grid.labels[j])], fontsize=9, fontweight="bold")
            run = i - 1 if show_inputs else i
            if run >= 0:
                ok = grid.correct(run, j)
                ax.set_xlabel(grid.title(run, j), fontsize=8, color="#1a7f37" if ok else "#c62828")
            if j == 0:
                ax.set_ylabel(names[i], fontsize=9, rotation=0, ha="right", va="center")
    fig.suptitle(f"{_method_label(grid.method)}: predicted class and probability", fontsize=10)
    buf = io.BytesIO()
    dpi = 100.0 * float(scale) if fmt == "png" else 100.0
    fig.savefig(buf, format=fmt, dpi=dpi, facecolor="white")
    return buf.getvalue()


def _method_label(method: str) -> str:
    from ladd.cam import CAM_LABELS

    return CAM_LABELS.get(method, method)
