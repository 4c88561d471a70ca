"""Plotly figure builders for the dashboard, and the export settings of every chart.

Builders take plain numpy arrays / lists and return go.Figure; they know nothing of Streamlit,
so the same figure can go to a page, a PNG/SVG for slides, or a test. The figures a report
shows too (per-class bars, differences, confusion matrices, training curves) are built in
ladd.report and re-exported here, so a chart looks the same on a page and in a report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ladd.report import (  # noqa: F401 - re-exported for the pages
    Series,
    confusion_matrix,
    difference_bars,
    per_class_bars,
    series_from_result,
    sorted_accuracy,
    training_curves,
)

# Distinct colours readable on light and dark backgrounds (crop boxes, run A / run B).
PALETTE = px.colors.qualitative.Plotly
RUN_COLORS = ("#636efa", "#ef553b")  # = ladd.report.RUN_COLORS[:2]


def export_config(name: str, fmt: str = "png") -> dict:
    """plotly.js config: the toolbar's camera button saves `name`.<fmt> (png or svg) at 2x."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": fmt, "filename": name, "scale": 2},
        "modeBarButtonsToRemove": ["lasso2d", "select2d"],
    }


def _bare_axes(fig: go.Figure) -> go.Figure:
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, ticks="")
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, ticks="")
    return fig


def mosaic(images: np.ndarray, rows: int, cols: int, gap: int = 2, fill: int = 255) -> np.ndarray:
    """Tile (B, H, W, 3) uint8 images into a rows x cols sheet (row-major), `gap` px apart."""
    b, h, w, c = images.shape
    sheet = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, c), fill, dtype=np.uint8)
    for i in range(min(b, rows * cols)):
        r, k = divmod(i, cols)
        sheet[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = images[i]
    return sheet


def class_grid(
    images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], per_class: int
) -> go.Figure:
    """Distilled images as one row per class, up to `per_class` each, class names on the left.

    images (M, H, W, 3) uint8; labels (M,) int.
    """
    k = len(class_names)
    h, w = images.shape[1:3]
    gap = max(1, h // 16)
    rows = []
    for c in range(k):
        members = images[labels == c][:per_class]
        row = np.full((h, per_class * (w + gap) - gap, 3), 255, dtype=np.uint8)
        if len(members):
            row[:, : len(members) * (w + gap) - gap] = mosaic(members, 1, len(members), gap)
        rows.append(row)
    sheet = mosaic(np.stack(rows), k, 1, gap) if rows else np.zeros((h, w, 3), np.uint8)
    fig = px.imshow(sheet, binary_string=True)
    fig.update_yaxes(
        tickvals=[c * (h + gap) + h / 2 for c in range(k)],
        ticktext=list(class_names),
        showgrid=False,
    )
    fig.update_xaxes(showticklabels=False, showgrid=False)
    fig.update_layout(
        margin=dict(l=10, r=10, t=10, b=10),
        height=max(240, min(1400, k * 64 + 40)),
        hovermode=False,
    )
    return fig


def image_with_boxes(
    image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]], title: str = ""
) -> go.Figure:
    """One image (H, W, 3) uint8 with crop boxes (top, left, h, w) drawn in distinct colours."""
    fig = px.imshow(image, binary_string=True)
    for i, (top, left, bh, bw) in enumerate(boxes):
        color = PALETTE[i % len(PALETTE)]
        # Pixel edges are at half-integer coordinates in imshow.
        fig.add_shape(
            type="rect",
            x0=left - 0.5,
            y0=top - 0.5,
            x1=left + bw - 0.5,
            y1=top + bh - 0.5,
            line=dict(color=color, width=2),
        )
    return _image_layout(fig, title)


def _image_layout(fig: go.Figure, title: str) -> go.Figure:
    """Bare axes and the tight layout every image figure (preview, crop sheet) shares."""
    _bare_axes(fig)
    fig.update_layout(
        title=dict(text=title) if title else None,
        margin=dict(l=5, r=5, t=40 if title else 5, b=5),
        height=380,
        hovermode=False,
    )
    return fig


def crops_sheet(crops: np.ndarray, n: int, title: str = "") -> go.Figure:
    """The n*n crops (n*n, h, w, 3) uint8 as an n x n sheet in raster order."""
    gap = max(1, crops.shape[1] // 12)
    fig = px.imshow(mosaic(crops, n, n, gap), binary_string=True)
    return _image_layout(fig, title)


def crop_heatmap(
    values: np.ndarray, title: str, *, zmin: float | None = 0.0, zmax: float | None = 1.0
) -> go.Figure:
    """An n x n heatmap of one number per crop (raster order), values printed in the cells."""
    n = int(round(math.sqrt(values.size)))
    grid = np.asarray(values, dtype=np.float64).reshape(n, n)
    fig = px.imshow(
        grid,
        text_auto=".2f",
        zmin=zmin,
        zmax=zmax,
        color_continuous_scale="Viridis",
        labels=dict(x="crop column", y="crop row", color=""),
        x=list(range(1, n + 1)),
        y=list(range(1, n + 1)),
    )
    fig.update_layout(
        title=dict(text=title),
        margin=dict(l=10, r=10, t=50, b=10),
        height=340,
        coloraxis_showscale=False,
    )
    fig.update_traces(textfont_size=max(8, 16 - 2 * n))
    return fig


def crop_label_bars(
    dense: np.ndarray, class_names: Sequence[str], highlight: int | None = None
) -> go.Figure:
    """Small multiples: one bar chart of the soft label per crop, laid out as the n x n grid.

    dense (n*n, K) probabilities. `highlight` colours one class (e.g. the image's label).
    """
    nn_, k = dense.shape
    n = int(round(math.sqrt(nn_)))
    fig = make_subplots(
        rows=n,
        cols=n,
        shared_xaxes=True,
        shared_yaxes=True,
        horizontal_spacing=0.015,
        vertical_spacing=0.02,
    )
    colors = [RUN_COLORS[1] if c == highlight else RUN_COLORS[0] for c in range(k)]
    for j in range(nn_):
        r, c = divmod(j, n)
        fig.add_trace(
            go.Bar(
                x=list(class_names),
                y=dense[j],
                marker_color=colors,
                showlegend=False,
                hovertemplate="%{x}: %{y:.3f}<extra></extra>",
            ),
            row=r + 1,
            col=c + 1,
        )
    fig.update_yaxes(range=[0, 1], showticklabels=False, showgrid=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(
        height=max(240, 80 * n),
        margin=dict(l=10, r=10, t=10, b=10),
        bargap=0.1,
        title=None,
    )
    return fig


def crop_top_bars(top: Any, class_names: Sequence[str], highlight: int | None = None) -> go.Figure:
    """crop_label_bars for many classes: per crop, the image's top-k classes (a
    ladd.classes.TopClasses over its crops) and one grey bar for every other class's mass."""
    names = [class_names[int(c)] for c in top.classes] + ["other"]
    probs = np.concatenate([top.probs, top.other[:, None]], axis=1)  # (n*n, k + 1)
    where = np.flatnonzero(top.classes == highlight) if highlight is not None else []
    fig = crop_label_bars(probs, names, highlight=int(where[0]) if len(where) else None)
    for trace in fig.data:
        trace.marker.color = [*trace.marker.color[:-1], "#9e9e9e"]
    return fig


def epoch_curves(
    epochs: Sequence[int],
    max_prob: Sequence[float],
    entropy: Sequence[float],
    accuracy: Sequence[float] | None = None,
) -> go.Figure:
    """Mean max-probability and entropy of dense labels per labeler epoch (paper Fig. 5)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=list(epochs), y=list(max_prob), name="mean max probability", mode="lines+markers"
        ),
        secondary_y=False,
    )
    if accuracy is not None:
        fig.add_trace(
            go.Scatter(
                x=list(epochs),
                y=list(accuracy),
                name="labeler test accuracy",
                mode="lines+markers",
                line=dict(dash="dot"),
            ),
            secondary_y=False,
        )
    fig.add_trace(
        go.Scatter(
            x=list(epochs), y=list(entropy), name="mean entropy (nats)", mode="lines+markers"
        ),
        secondary_y=True,
    )
    fig.update_xaxes(title_text="labeler epoch", tickmode="array", tickvals=list(epochs))
    fig.update_yaxes(title_text="probability / accuracy", range=[0, 1.02], secondary_y=False)
    fig.update_yaxes(title_text="entropy (nats)", secondary_y=True, rangemode="tozero")
    fig.update_layout(
        height=380,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return fig


def loss_curves(
    curves: Sequence[Sequence[float]], names: Sequence[str] | None = None, x_title: str = "step"
) -> go.Figure:
    """Training loss, one line per curve (seed, run)."""
    fig = go.Figure()
    for i, curve in enumerate(curves):
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(curve) + 1)),
                y=list(curve),
                mode="lines",
                name=names[i] if names else f"seed {i}",
            )
        )
    fig.update_layout(
        xaxis_title=x_title,
        yaxis_title="loss",
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return fig


def png_uri(image: np.ndarray) -> str:
    """(H, W, 3) uint8 as a PNG data URI: a compact way to put pixels in a figure."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def cam_grid(grid: Any, show_inputs: bool = True, alpha: float = 0.45) -> go.Figure:
    """A ladd.compare.CamGrid as one figure (paper Fig. 4): columns = images (true class on top),
    rows = the inputs, then one row per run; each map titled with the predicted class and its
    probability (green when right, red when wrong)."""
    rows, cols = grid.shape
    shown = grid.overlays(alpha)  # (R, k, H, W, 3) uint8
    names = list(grid.row_names)
    if show_inputs:
        shown = np.concatenate([grid.images[None], shown], axis=0)
        names = ["input", *names]
    n_rows = shown.shape[0]
    titles = []
    for i in range(n_rows):
        run = i - 1 if show_inputs else i
        for j in range(cols):
            if run < 0:
                titles.append(f"<b>{grid.class_names[int(grid.labels[j])]}</b>")
            else:
                color = "#1a7f37" if grid.correct(run, j) else "#c62828"
                titles.append(f"<span style='color:{color}'>{grid.title(run, j)}</span>")
    fig = make_subplots(
        rows=n_rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.01,
        vertical_spacing=0.06 if n_rows < 5 else 0.03,
    )
    for i in range(n_rows):
        for j in range(cols):
            fig.add_trace(
                go.Image(source=png_uri(shown[i, j]), hoverinfo="skip"), row=i + 1, col=j + 1
            )
    for ann in fig.layout.annotations:
        ann.font = dict(size=12)
    for i, name in enumerate(names):  # row names, left of the first column
        fig.add_annotation(
            text=name,
            xref="paper",
            yref=f"y{i * cols + 1 if i * cols else ''} domain",
            x=-0.005,
            y=0.5,
            xanchor="right",
            showarrow=False,
            font=dict(size=12),
        )
    _bare_axes(fig)
    fig.update_layout(
        height=int(40 + n_rows * max(120, 900 / max(cols, 1))),
        margin=dict(l=130, r=5, t=30, b=5),
        hovermode=False,
    )
    return fig


def codec_frontier(points: Sequence[Any], title: str = "") -> go.Figure:
    """Accuracy against storage overhead (zip, over the uint8 images) for part 7's points
    (ladd.codecs.choice.FrontierPoint), one panel per distiller: LADD per codec as circles,
    baseline and baseline++ as squares, the frontier (ladd.codecs.choice.pareto) as a line."""
    from ladd.codecs.choice import pareto

    distillers = sorted({p.distiller for p in points})
    fig = make_subplots(rows=1, cols=max(1, len(distillers)), subplot_titles=distillers)
    for col, d in enumerate(distillers, start=1):
        mine = [p for p in points if p.distiller == d]
        front = sorted(pareto(mine), key=lambda p: p.overhead)
        fig.add_trace(
            go.Scatter(
                x=[100 * p.overhead for p in front],
                y=[100 * p.mean for p in front],
                mode="lines",
                line={"color": "rgba(128,128,128,0.6)"},
                name="frontier",
                showlegend=col == 1,
                hoverinfo="skip",
            ),
            row=1,
            col=col,
        )
        for ladd, symbol, color, name in ((True, "circle", RUN_COLORS[0], "LADD, per codec"),
                                          (False, "square", RUN_COLORS[1], "baseline / ++")):  # fmt: skip
            group = [p for p in mine if p.ladd == ladd]
            if not group:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[100 * p.overhead for p in group],
                    y=[100 * p.mean for p in group],
                    error_y={"type": "data", "array": [100 * p.std for p in group]},
                    mode="markers+text",
                    marker={"symbol": symbol, "color": color, "size": 9},
                    text=[p.what for p in group],
                    textposition="top right",
                    customdata=[[p.label_bytes_per_image, p.seeds] for p in group],
                    hovertemplate="%{text}<br>overhead %{x:.1f} %<br>accuracy %{y:.1f} %"
                    "<br>label bytes / image %{customdata[0]:,.0f}<br>seeds %{customdata[1]}"
                    "<extra></extra>",
                    name=name,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="storage overhead (zip, %)", row=1, col=col)
    fig.update_yaxes(title_text="accuracy (%)", row=1, col=1)
    fig.update_layout(title=title or None, height=420, margin={"t": 60})
    return fig


def score_bars(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """A score's accuracies per label variant (ladd.score.score_rows): the set beside its
    random-real twin, each with its std over seeds; the random twin's hard-label accuracy as
    a dashed line (the baseline every IOR is measured from)."""
    names = [r["labels"] for r in rows]
    fig = go.Figure()
    fig.add_bar(
        name="the set",
        x=names,
        y=[r["set_mean"] for r in rows],
        error_y=dict(type="data", array=[r["set_std"] for r in rows]),
        marker_color=PALETTE[0],
    )
    fig.add_bar(
        name="random real (same IPC, same pipeline)",
        x=names,
        y=[r["random_mean"] for r in rows],
        error_y=dict(type="data", array=[r["random_std"] or 0 for r in rows]),
        marker=dict(color="#9e9e9e", pattern_shape="/"),
    )
    hard = next((r for r in rows if r["variant"] == "hard"), None)
    if hard is not None and hard["random_mean"] is not None:
        fig.add_hline(
            y=hard["random_mean"],
            line_dash="dash",
            line_color="#616161",
            annotation_text="random real, hard labels",
            annotation_position="top left",
        )
    fig.update_layout(
        barmode="group",
        yaxis_title="top-1 accuracy (%), last epoch",
        legend=dict(orientation="h", y=-0.25),
        margin=dict(l=10, r=10, t=30, b=10),
        height=420,
    )
    return fig


def score_bytes(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """Each variant's accuracy against the bytes its labels take (log scale)."""
    shown = [r for r in rows if r.get("label_bytes")]
    fig = go.Figure(
        go.Scatter(
            x=[r["label_bytes"] for r in shown],
            y=[r["set_mean"] for r in shown],
            error_y=dict(type="data", array=[r["set_std"] for r in shown]),
            mode="markers+text",
            text=[r["variant"] for r in shown],
            textposition="top center",
            marker=dict(size=10, color=PALETTE[0]),
        )
    )
    fig.update_layout(
        xaxis=dict(type="log", title="label bytes (as stored)"),
        yaxis_title="top-1 accuracy (%)",
        margin=dict(l=10, r=10, t=30, b=10),
        height=360,
    )
    return fig


def drift_heatmap(js: np.ndarray, drifted: np.ndarray, title: str) -> go.Figure:
    """An n x n heat grid of each crop's JS divergence from the image's label (nats, 0 .. ln 2),
    the drifted crops marked with a cross (ladd.drift's rule)."""
    n = int(round(math.sqrt(js.size)))
    grid = np.asarray(js, dtype=np.float64).reshape(n, n)
    flags = np.asarray(drifted, dtype=bool).reshape(n, n)
    text = [
        [f"{v:.2f}{' ×' if f else ''}" for v, f in zip(row, frow, strict=True)]
        for row, frow in zip(grid, flags, strict=True)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            x=list(range(1, n + 1)),
            y=list(range(1, n + 1)),
            zmin=0.0,
            zmax=math.log(2.0),
            colorscale="Magma",
            text=text,
            texttemplate="%{text}",
            showscale=False,
            hovertemplate="row %{y}, column %{x}: JS %{z:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title_text="crop row")
    fig.update_xaxes(title_text="crop column")
    fig.update_layout(title=dict(text=title), height=340, margin=dict(l=10, r=10, t=50, b=10))
    fig.update_traces(textfont_size=max(8, 16 - 2 * n))
    return fig


def drift_histogram(
    counts: dict[str, Sequence[int]], edges: Sequence[float], threshold: float
) -> go.Figure:
    """Histograms of every crop's JS divergence over a set, one per series (labeler epoch),
    with the drift rule's threshold."""
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    fig = go.Figure()
    for name, c in counts.items():
        fig.add_trace(go.Bar(x=centres, y=list(c), name=name, opacity=0.7))
    fig.add_vline(x=threshold, line_dash="dash", annotation_text=f"{threshold:g} nats")
    fig.update_layout(
        barmode="overlay",
        height=340,
        xaxis_title="JS divergence from the image's label (nats)",
        yaxis_title="crops",
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return fig


def drift_curve(
    epochs: Sequence[int], drifted: Sequence[float], mean_js: Sequence[float]
) -> go.Figure:
    """The Fig. 5 view's drift axis: the share of drifted crops and the mean JS per epoch."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(x=list(epochs), y=list(drifted), name="drifted crops", mode="lines+markers"),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(x=list(epochs), y=list(mean_js), name="mean JS (nats)", mode="lines+markers"),
        secondary_y=True,
    )
    fig.update_xaxes(title_text="labeler epoch", tickmode="array", tickvals=list(epochs))
    fig.update_yaxes(title_text="share of crops", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="mean JS (nats)", rangemode="tozero", secondary_y=True)
    fig.update_layout(
        height=340,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return fig


STRATEGY_COLORS = {
    "baseline": "#d62728",
    "grid": "#1f77b4",
    "sampler": "#2ca02c",
    "stored crops": "#ff7f0e",
    "loss": "#9467bd",
    "schedule": "#8c564b",
    "balance": "#e377c2",
}


def strategy_frontier(points: Sequence[Any], title: str = "") -> go.Figure:
    """Accuracy against the bytes per image a label strategy stores (labels + the boxes a store
    keeps) for part 8's points (ladd.strategies.compare.StrategyPoint), one panel per
    distiller, one colour per family, the frontier as a line."""
    from ladd.strategies.compare import pareto

    distillers = sorted({p.distiller for p in points})
    fig = make_subplots(rows=1, cols=max(1, len(distillers)), subplot_titles=distillers)
    shown: set[str] = set()
    for col, d in enumerate(distillers, start=1):
        mine = [p for p in points if p.distiller == d]
        front = sorted(pareto(mine), key=lambda p: p.total_bytes)
        fig.add_trace(
            go.Scatter(
                x=[p.total_bytes for p in front],
                y=[100 * p.mean for p in front],
                mode="lines",
                line={"color": "rgba(128,128,128,0.6)"},
                name="frontier",
                showlegend=col == 1,
                hoverinfo="skip",
            ),
            row=1,
            col=col,
        )
        for family, color in STRATEGY_COLORS.items():
            group = [p for p in mine if p.family == family]
            if not group:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[p.total_bytes for p in group],
                    y=[100 * p.mean for p in group],
                    error_y={"type": "data", "array": [100 * p.std for p in group]},
                    mode="markers+text",
                    marker={
                        "color": color,
                        "size": 9,
                        "symbol": "star" if any(p.default for p in group) else "circle",
                    },
                    text=[p.what for p in group],
                    textposition="top right",
                    customdata=[[p.label_bytes, p.coord_bytes, p.seeds] for p in group],
                    hovertemplate="%{text}<br>bytes / image %{x:,.0f} (labels %{customdata[0]:,.0f}"
                    ", boxes %{customdata[1]:,.0f})<br>accuracy %{y:.1f} %<br>seeds "
                    "%{customdata[2]}<extra></extra>",
                    name=family,
                    showlegend=family not in shown,
                ),
                row=1,
                col=col,
            )
            shown.add(family)
        fig.update_xaxes(title_text="bytes per image (labels + boxes)", row=1, col=col)
    fig.update_yaxes(title_text="accuracy (%)", row=1, col=1)
    fig.update_layout(title=title or None, height=460, margin={"t": 60})
    return fig
