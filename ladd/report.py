"""A comparison of two runs as one self-contained HTML file, and the figures it shares with the
dashboard's compare and training pages.

`build_report(workspace, run_a, run_b)` returns one HTML page that opens anywhere without a
network: the run configs side by side, per-class accuracy (table and chart), both confusion
matrices, the training curves and the CAM grid of paper Fig. 4 (an embedded PNG). Plotly's
JavaScript is embedded once, inline. `report_command` is the body of `ladd report A B --out F`.

Plotly and matplotlib are imported inside the functions that draw, so `import ladd.report`
loads neither (tests/test_import_boundary.py walks every module). The figure builders here
take plain lists and arrays and return plotly figures; app/charts.py re-exports them, so a
chart looks the same on a page and in a report.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "RUN_COLORS",
    "CamOptions",
    "Series",
    "build_report",
    "confusion_matrix",
    "difference_bars",
    "per_class_bars",
    "report_command",
    "series_from_result",
    "sorted_accuracy",
    "training_curves",
]

# Run A, run B, then further runs: distinct on light and dark backgrounds.
RUN_COLORS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3")


# ---------------------------------------------------------------------------------------------
# Training curves: one metric of one run, per seed, over epochs


@dataclass(frozen=True)
class Series:
    """One run's values of one metric over epochs, per seed; NaN where a seed has none (yet).

    values[s][i] is seed s at epochs[i]. Drawn as the mean over seeds with a min-max band.
    """

    name: str
    epochs: tuple[int, ...]
    values: tuple[tuple[float, ...], ...]  # (S, len(epochs))

    def __post_init__(self) -> None:
        if any(len(row) != len(self.epochs) for row in self.values):
            raise ValueError(f"{self.name}: every seed needs one value per epoch")

    @property
    def seeds(self) -> int:
        return len(self.values)

    def band(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(epochs, mean, low, high) over the seeds that have a value at each epoch."""
        x = np.asarray(self.epochs, dtype=np.float64)
        if not self.values or not self.epochs:
            empty = np.zeros(0)
            return empty, empty, empty, empty
        v = np.asarray(self.values, dtype=np.float64)  # (S, E)
        have = ~np.isnan(v).all(axis=0)
        v, x = v[:, have], x[have]
        return x, np.nanmean(v, axis=0), np.nanmin(v, axis=0), np.nanmax(v, axis=0)

    @classmethod
    def from_points(cls, name: str, points: dict[int, dict[int, float]]) -> Series:
        """From {seed index: {epoch: value}} (what a live job collects)."""
        epochs = sorted({e for per in points.values() for e in per})
        seeds = sorted(points)
        values = tuple(tuple(float(points[s].get(e, math.nan)) for e in epochs) for s in seeds)
        return cls(name, tuple(epochs), values)


def series_from_result(name: str, result: dict[str, Any]) -> tuple[Series | None, Series | None]:
    """(training loss, test accuracy) of a finished run from its result.json.

    Loss: `loss_curves` (per seed, the mean loss of each epoch). Accuracy: the monitor history
    when the run has one (`monitor`: a list of {"epoch", "accuracy": [per seed]}), then the
    final test accuracy per seed at the last pass.
    """
    loss = None
    curves = result.get("loss_curves") or []
    if curves and all(len(c) == len(curves[0]) for c in curves):
        loss = Series(name, tuple(range(1, len(curves[0]) + 1)), tuple(map(tuple, curves)))
    points: dict[int, dict[int, float]] = {}
    for row in result.get("monitor") or []:
        epoch = row.get("epoch", row.get("step"))
        for s, v in enumerate(row.get("accuracy") or []):
            if epoch is not None and v is not None:
                points.setdefault(s, {})[int(epoch)] = float(v)
    # The final test follows the last pass: MTT's protocol trains epochs + 1 of them (the loss
    # curve and the monitor count passes).
    epochs = (result.get("config") or {}).get("epochs") or 0
    if curves:
        epochs = max(epochs, len(curves[0]))
    if points:
        epochs = max(epochs, *(max(p) for p in points.values()))
    for s, v in enumerate(result.get("per_seed") or []):
        if epochs:
            points.setdefault(s, {})[int(epochs)] = float(v)
    acc = Series.from_points(name, points) if points else None
    return loss, acc


def training_curves(
    loss: Sequence[Series],
    accuracy: Sequence[Series],
    *,
    colors: Sequence[str] = RUN_COLORS,
    accuracy_title: str = "test accuracy",
) -> Any:
    """Training loss and test accuracy side by side, epochs on x, one colour per run.

    Each run is drawn as the mean over its seeds with a shaded min-max band; runs are matched
    across the two panels by name (same colour). A run with one accuracy point (a finished run
    without a monitor history) shows as a marker at its last epoch.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("training loss", accuracy_title), horizontal_spacing=0.08
    )
    names: list[str] = []
    for s in [*loss, *accuracy]:
        if s.name not in names:
            names.append(s.name)
    for col, group in ((1, loss), (2, accuracy)):
        for s in group:
            color = colors[names.index(s.name) % len(colors)]
            x, mean, low, high = s.band()
            if x.size == 0:
                continue
            if s.seeds > 1:
                fig.add_trace(
                    go.Scatter(
                        x=np.concatenate([x, x[::-1]]).tolist(),
                        y=np.concatenate([high, low[::-1]]).tolist(),
                        fill="toself",
                        fillcolor=_rgba(color, 0.18),
                        line=dict(width=0),
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=s.name,
                    ),
                    row=1,
                    col=col,
                )
            label = f"{s.name} (mean of {s.seeds} seeds)" if s.seeds > 1 else s.name
            fig.add_trace(
                go.Scatter(
                    x=x.tolist(),
                    y=mean.tolist(),
                    mode="lines+markers" if x.size < 30 else "lines",
                    name=label,
                    line=dict(color=color),
                    marker=dict(size=8 if x.size == 1 else 5),
                    legendgroup=s.name,
                    showlegend=col == 1 or s.name not in [t.name for t in loss],
                    hovertemplate="epoch %{x}: %{y:.4g}<extra>" + html.escape(s.name) + "</extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1], row=1, col=2)
    fig.update_layout(
        height=360,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
    )
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# ---------------------------------------------------------------------------------------------
# Per-class accuracy and confusion

# The per-class accuracy charts' shared layout: a 0-100% axis, tight margins, legend on top.
ACCURACY_LAYOUT: dict[str, Any] = {
    "yaxis": {"title": "accuracy", "range": [0, 1], "tickformat": ".0%"},
    "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
}


def per_class_bars(
    class_names: Sequence[str], a: Sequence[float], b: Sequence[float], name_a: str, name_b: str
) -> Any:
    """Per-class accuracy of two runs as grouped bars."""
    import plotly.graph_objects as go

    fig = go.Figure(
        [
            go.Bar(x=list(class_names), y=list(a), name=name_a, marker_color=RUN_COLORS[0]),
            go.Bar(x=list(class_names), y=list(b), name=name_b, marker_color=RUN_COLORS[1]),
        ]
    )
    fig.update_layout(barmode="group", height=360, **ACCURACY_LAYOUT)
    return fig


def sorted_accuracy(curves: dict[str, Any]) -> Any:
    """Per-class accuracy of each run sorted worst first, one line per run: the shape of many
    classes' accuracies at a glance (which classes they are: the table beside it)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (name, acc) in enumerate(curves.items()):
        values = np.sort(np.asarray(acc, dtype=np.float64))
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, values.size + 1),
                y=values,
                mode="lines",
                name=name,
                line=dict(color=RUN_COLORS[i % len(RUN_COLORS)]),
            )
        )
    fig.update_layout(xaxis_title="classes, worst first", height=320, **ACCURACY_LAYOUT)
    return fig


def difference_bars(class_names: Sequence[str], diff: Sequence[float], title: str) -> Any:
    """Per-class accuracy difference (B - A), green above zero, red below."""
    import plotly.graph_objects as go

    colors = ["#2ca02c" if d >= 0 else "#d62728" for d in diff]
    fig = go.Figure(go.Bar(x=list(class_names), y=list(diff), marker_color=colors))
    fig.update_layout(
        title=dict(text=title),
        yaxis=dict(title="difference", tickformat="+.0%", zeroline=True),
        height=300,
        margin=dict(l=10, r=10, t=50, b=10),
    )
    return fig


def confusion_matrix(matrix: Any, class_names: Sequence[str], title: str) -> Any:
    """Row-normalised confusion matrix [true][predicted], counts on hover."""
    import plotly.express as px

    m = np.asarray(matrix, dtype=np.float64)
    rates = m / np.clip(m.sum(axis=1, keepdims=True), 1, None)
    fig = px.imshow(
        rates,
        x=list(class_names),
        y=list(class_names),
        zmin=0,
        zmax=1,
        text_auto=".2f",
        color_continuous_scale="Blues",
        labels=dict(x="predicted", y="true", color="rate"),
    )
    fig.update_traces(
        customdata=m, hovertemplate="true %{y}, predicted %{x}: %{customdata:.0f}<extra></extra>"
    )
    fig.update_layout(title=dict(text=title), height=420, margin=dict(l=10, r=10, t=50, b=10))
    return fig


# ---------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class CamOptions:
    """Which images the report's CAM grid shows and how (see ladd.compare.pick_images)."""

    k: int = 8
    pick: str = "b_right_a_wrong"
    klass: int | None = None
    method: str = "gradcam"
    explain_true: bool = False
    seed: int = 0
    per_class: int = 20  # real test images per class to pick from


@dataclass(frozen=True)
class _Run:
    summary: Any  # ladd.summaries.RunSummary
    result: dict[str, Any]  # its result.json
    name: str  # "A #12 my label"


def _load_run(ws: Any, run_id: int, tag: str) -> _Run:
    from ladd.summaries import summarise

    rec = ws.db.get_run(int(run_id))  # KeyError naming the id when there is none
    summary = summarise(rec)
    if summary.kind != "train":
        raise ValueError(f"run #{run_id} is a {summary.kind!r} run; a report compares train runs")
    if summary.status != "done":
        raise ValueError(f"run #{run_id} is {summary.status}, not done")
    path = ws.db.runs_dir / str(int(run_id)) / "result.json"
    if not path.is_file():
        raise FileNotFoundError(f"run #{run_id} has no result.json")
    result = json.loads(path.read_text(encoding="utf-8"))
    name = f"{tag} #{summary.id} {summary.label or summary.mode or ''}".strip()
    return _Run(summary, result, name)


def cam_grid_png(
    ws: Any, runs: Sequence[Any], names: Sequence[str], options: CamOptions, scale: float = 2.0
) -> tuple[bytes, str]:
    """The CAM grid of `runs` (RunSummary, first two decide the pick) as PNG, and a caption.

    Images come from the source's real test split (ladd.demo.cam_inputs); each run reads them
    in its own input space (ladd.compare.run_inputs); the first seed's model of each run.
    """
    from ladd.compare import PICKS, cam_grid_on, pick_images, predict, render_cam_grid, run_inputs
    from ladd.demo import cam_inputs
    from ladd.store import load_model

    source = next((r.source for r in runs if r.source), None)
    if not source:
        raise ValueError("the runs do not name their source dataset")
    if any(not r.model_files for r in runs):
        raise ValueError("a run kept no model weights")
    models = [load_model(r.model_files[0]) for r in runs]
    spec = getattr(models[0], "spec", None)
    size = int(spec.image_size) if spec is not None else None
    test = cam_inputs(ws, source, size, per_class=options.per_class)
    inputs = [run_inputs(r, test, cache_dir=ws.cache_dir) for r in runs]
    labels = test.labels.numpy()
    preds = [predict(m, x).predicted for m, x in zip(models[:2], inputs[:2], strict=True)]
    pick = options.pick
    idx = pick_images(
        labels, preds[0], preds[-1], pick, options.k, klass=options.klass, seed=options.seed
    )
    note = f"{len(idx)} image(s), {PICKS[pick]}"
    if idx.size == 0:
        pick = "random"
        idx = pick_images(labels, preds[0], preds[-1], pick, options.k, seed=options.seed)
        note = f"no image is {PICKS[options.pick]}; {len(idx)} drawn at random instead"
    what = "true" if options.explain_true else "predicted"
    note = f"{_method_label(options.method)} of the {what} class; {note}"
    grid = cam_grid_on(
        models, inputs, test, idx, names, method=options.method, explain_true=options.explain_true
    )
    return render_cam_grid(grid, "png", scale=scale), note


def _method_label(method: str) -> str:
    from ladd.cam import CAM_LABELS

    return CAM_LABELS.get(method, method)


def build_report(
    workspace: Any,
    run_a: int,
    run_b: int,
    *,
    cam: CamOptions | None = CamOptions(),
    cam_png: bytes | None = None,
    cam_note: str = "",
    title: str | None = None,
) -> str:
    """One self-contained HTML page comparing two train runs of `workspace` (A, B by id).

    The CAM grid is `cam_png` when given (the dashboard passes the grid it shows), else it is
    computed with `cam` (None: no grid). A grid that cannot be made (no grad-cam, a run without
    its set) becomes a note in the report rather than an error.
    """
    import plotly.offline

    from ladd.store import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    a, b = _load_run(ws, run_a, "A"), _load_run(ws, run_b, "B")
    names = list(a.result.get("class_names") or b.result.get("class_names") or [])
    title = title or f"{a.name} vs {b.name}"

    per_class_html, figures, conf, conf_html = per_class_section(
        names, (a.name, b.name), (a.result, b.result)
    )
    losses, accs = [], []
    for r in (a, b):
        loss, acc = series_from_result(r.name, r.result)
        losses += [loss] if loss else []
        accs += [acc] if acc else []
    curves = training_curves(losses, accs) if losses or accs else None

    if cam_png is None and cam is not None:
        try:
            cam_png, cam_note = cam_grid_png(ws, [a.summary, b.summary], [a.name, b.name], cam)
        except Exception as err:  # a report without its grid beats no report
            cam_note = f"The CAM grid could not be made: {type(err).__name__}: {err}"

    config = {"displaylogo": False, "responsive": True}

    def fig_html(fig: Any) -> str:
        return fig.to_html(full_html=False, include_plotlyjs=False, config=config)

    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='meta'>LADD Studio report, {dt.datetime.now():%Y-%m-%d %H:%M}; "
        f"workspace <code>{html.escape(str(ws.root))}</code></p>",
        _headline(a, b),
        "<h2>Runs</h2>",
        _config_table(a, b),
        "<h2>Per-class accuracy</h2>",
        per_class_html,
        *[f"<h3>{html.escape(t)}</h3>{fig_html(f)}" for t, f in figures],
        "<h2>Confusion matrices</h2>" if conf_html is None else "<h2>Top confusions</h2>",
        "<div class='row'>" + "".join(f"<div>{fig_html(f)}</div>" for _, f in conf) + "</div>"
        if conf_html is None
        else conf_html,
    ]
    if curves is not None:
        parts += ["<h2>Training</h2>", fig_html(curves)]
    parts.append("<h2>Class activation maps</h2>")
    if cam_png is not None:
        data = base64.b64encode(cam_png).decode("ascii")
        parts.append(
            f"<figure><img class='cam' alt='CAM grid' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(cam_note)}</figcaption></figure>"
        )
    else:
        parts.append(f"<p>{html.escape(cam_note or 'No CAM grid in this report.')}</p>")
    body = "\n".join(parts)
    plotly_js = plotly.offline.get_plotlyjs()
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
        f"<script type='text/javascript'>{plotly_js}</script></head>"
        f"<body>{body}</body></html>\n"
    )


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; }
td { overflow-wrap: anywhere; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.meta { color: #666; } .headline { font-size: 1.1rem; }
.row { display: flex; flex-wrap: wrap; gap: 1rem; } .row > div { flex: 1 1 480px; }
img.cam { max-width: 100%; } figcaption { color: #666; font-size: .9rem; }
"""


def _headline(a: _Run, b: _Run) -> str:
    ma, mb = a.summary.accuracy_mean, b.summary.accuracy_mean
    if ma is None or mb is None:
        return ""
    return (
        f"<p class='headline'>{html.escape(a.name)}: <b>{ma:.2%}</b> &nbsp; "
        f"{html.escape(b.name)}: <b>{mb:.2%}</b> &nbsp; B - A: <b>{100 * (mb - ma):+.2f} points"
        "</b></p>"
    )


def _config_table(a: _Run, b: _Run) -> str:
    def facts(r: _Run) -> dict[str, str]:
        s = r.summary
        out = {
            "run": f"#{s.id}",
            "label": s.label or "",
            "set": s.set_path or "",
            "source": s.source or "",
            "accuracy (mean +- std)": (
                f"{s.accuracy_mean:.2%} +- {s.accuracy_std or 0:.2%}"
                if s.accuracy_mean is not None
                else ""
            ),
            "per seed": ", ".join(f"{v:.2%}" for v in s.per_seed),
            "learning rate": f"{s.lr:g}" if s.lr is not None else "",
            "training samples / epoch": str(r.result.get("num_samples", "")),
            "seconds": f"{s.seconds:.1f}" if s.seconds is not None else "",
        }
        out.update(s.facts())  # what ran, as recorded: config, engine, grid, input spaces
        return out

    fa, fb = facts(a), facts(b)
    keys = list(dict.fromkeys([*fa, *fb]))
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(fa.get(k, ''))}</td>"
        f"<td>{html.escape(fb.get(k, ''))}</td></tr>"
        for k in keys
    )
    return (
        f"<table><tr><th></th><th>A: {html.escape(a.name)}</th>"
        f"<th>B: {html.escape(b.name)}</th></tr>{rows}</table>"
    )


def per_class_section(
    names: Sequence[str], runs: tuple[str, str], results: tuple[dict, dict], confusions: int = 25
) -> tuple[str, list[tuple[str, Any]], list[tuple[str, Any]], str | None]:
    """The report's per-class part: (table HTML, figures, confusion figures, confusion HTML).

    A few classes: the table in class order, grouped bars, their difference and both confusion
    matrices (confusion HTML None). Many (ladd.classes.many_classes: ImageNet-1K's 1000): the
    table worst first by B, each run's accuracies sorted, and each run's `confusions` largest
    confusions as tables instead of 1000 x 1000 heatmaps."""
    from ladd.classes import many_classes, top_confusions, worst_first

    ra, rb = results
    if not (names and ra.get("per_class") and rb.get("per_class")):
        return "<p>One of the runs has no per-class results.</p>", [], [], None
    acc_a = np.mean(np.asarray(ra["per_class"], dtype=np.float64), axis=0)
    acc_b = np.mean(np.asarray(rb["per_class"], dtype=np.float64), axis=0)
    if not many_classes(len(names)):
        figures = [
            ("Per-class accuracy", per_class_bars(names, acc_a, acc_b, *runs)),
            ("Per-class difference", difference_bars(names, acc_b - acc_a, "B - A")),
        ]
        conf = [
            (f"Confusion matrix, {n}", confusion_matrix(r["confusion"], names, n))
            for n, r in zip(runs, results, strict=True)
            if r.get("confusion")
        ]
        return _per_class_table(names, acc_a, acc_b), figures, conf, None
    order = worst_first(acc_b)
    table = _per_class_table(names, acc_a, acc_b, order=order)
    figures = [
        ("Per-class accuracy, worst first", sorted_accuracy({runs[0]: acc_a, runs[1]: acc_b}))
    ]
    parts = []
    for n, r in zip(runs, results, strict=True):
        if not r.get("confusion"):
            continue
        rows = "".join(
            f"<tr><td>{html.escape(str(names[c.true]))}</td>"
            f"<td>{html.escape(str(names[c.predicted]))}</td><td class='num'>{c.count}</td>"
            f"<td class='num'>{c.rate:.1%}</td></tr>"
            for c in top_confusions(r["confusion"], confusions)
        )
        parts.append(
            f"<div><h3>{html.escape(n)}</h3><table><tr><th>true</th><th>predicted</th>"
            f"<th>images</th><th>rate</th></tr>{rows}</table></div>"
        )
    return table, figures, [], "<div class='row'>" + "".join(parts) + "</div>"


def _per_class_table(
    names: Sequence[str], acc_a: np.ndarray, acc_b: np.ndarray, order: Any = None
) -> str:
    index = range(len(names)) if order is None else [int(i) for i in order]
    rows = "".join(
        f"<tr><td>{html.escape(str(names[i]))}</td><td class='num'>{acc_a[i]:.2%}</td>"
        f"<td class='num'>{acc_b[i]:.2%}</td><td class='num'>{acc_b[i] - acc_a[i]:+.2%}</td></tr>"
        for i in index
    )
    return f"<table><tr><th>class</th><th>A</th><th>B</th><th>B - A</th></tr>{rows}</table>"


def report_command(
    run_a: int,
    run_b: int,
    out: str | Path = "report.html",
    *,
    workspace: str | Path | None = None,
    k: int = 8,
    pick: str = "b_right_a_wrong",
    klass: int | None = None,
    method: str = "gradcam",
    seed: int = 0,
    cams: bool = True,
    force: bool = False,
) -> Path:
    """`ladd report RUN_A RUN_B --out report.html`: write the report, return its path.

    An existing file at `out` is replaced only with `force` (and never the runs database)."""
    from ladd.compare import PICKS
    from ladd.files import write_text
    from ladd.store import Workspace

    if pick not in PICKS:
        raise ValueError(f"unknown pick {pick!r}; use one of {', '.join(PICKS)}")
    target = Path(out)
    if target.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"{out}: the report is one HTML page; name it *.html")
    if target.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to replace it")
    options = CamOptions(k=k, pick=pick, klass=klass, method=method, seed=seed)
    text = build_report(Workspace(workspace), run_a, run_b, cam=options if cams else None)
    return write_text(out, text)
