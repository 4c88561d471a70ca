"""UI pieces the pages share: pickers, charts with export, errors, and live job progress."""

from __future__ import annotations

import io
import logging
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from app import cache, charts, state
from app.jobs import WARNING_PREFIX, registry
from app.paths import workspace_root
from app.state import K
from app.text import literal

log = logging.getLogger("ladd.app")

FRIENDLY = {
    "FileNotFoundError": "File not found",
    "PathNotAllowed": "Path not allowed",
    "DistilledFileError": "Cannot read this distilled set",
    "LabelAugmentedFileError": "Cannot read this label-augmented set",
    "InterruptedError": "Stopped",
}


# ---------------------------------------------------------------------------------------------
# Page chrome


def inject_css(path: Path) -> None:
    if path.is_file():
        st.html(f"<style>{path.read_text(encoding='utf-8')}</style>")


def sidebar() -> None:
    """Workspace, device, running jobs and the figure export format, on every page."""
    from ladd.device import resolve_device

    with st.sidebar:
        dev = resolve_device("auto")
        st.caption(f"Device: **{literal(device_label(dev))}**")
        st.caption(f"Workspace: {literal(workspace_root())}")
        active = registry().active()
        for job in active:
            snap = job.snapshot()
            st.caption(literal(f"{snap['status']}: {snap['title']} ({snap['fraction']:.0%})"))
        st.segmented_control(
            "Figure export",
            ["png", "svg"],
            format_func=str.upper,
            help="Format of the camera button in each chart's toolbar (for slides).",
            default=state.default(K.FIG_FORMAT),
            required=True,
            **state.bound(K.FIG_FORMAT, url=False),
        )


def device_label(dev: Any) -> str:
    import torch

    if dev.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(dev)})"
    return f"CPU ({torch.get_num_threads()} threads)"


def error(err: BaseException | str, prefix: str = "") -> None:
    """Show an error as a message (never a traceback), as text: messages quote paths, class
    names and archive members (app.text.literal)."""
    if isinstance(err, BaseException):
        kind = FRIENDLY.get(type(err).__name__, type(err).__name__)
        text = str(err).strip() or kind
        msg = f"{kind}: {text}" if kind not in text else text
    else:
        msg = err
    st.error(literal(f"{prefix}{msg}"), icon=":material/error:")


@contextmanager
def guard(prefix: str = "") -> Iterator[None]:
    """Show any error raised inside as a message and carry on with the rest of the page."""
    try:
        yield
    except Exception as err:  # the page must never show a traceback
        log.warning("dashboard error: %s", traceback.format_exc())
        error(err, prefix)


# ---------------------------------------------------------------------------------------------
# Pickers


def number(label: str, low: int, high: int, key: str, **kwargs: Any) -> int:
    """An integer input bound to `key` (URL + session), starting on the key's default."""
    return st.number_input(label, low, high, state.default(key), **kwargs, **state.bound(key))


def image_index(count: int, key: str, label: str = "Image") -> int:
    """A slider over `count` images bound to `key`; disabled with one image, clamped to range
    (a value kept from a bigger set or a URL never indexes past the end)."""
    index = st.slider(
        label,
        0,
        max(count - 1, 1),
        state.default(key),
        disabled=count < 2,
        **state.bound(key),
    )
    return min(index, count - 1)


def select(
    label: str,
    options: Sequence[Any],
    key: str,
    *,
    format_func: Callable[[Any], str] = str,
    help: str | None = None,
    url: bool = True,
    empty: str = "Nothing to choose from yet.",
) -> Any:
    """A selectbox bound to `key` (URL + session), tolerant of options that went away.

    Starts on the key's default in state.DEFAULTS when that is an option, else the first.
    """
    options = list(options)
    if not options:
        st.info(empty, icon=":material/info:")
        return None
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]
    start = state.DEFAULTS.get(key)
    index = options.index(start) if start in options else 0
    return st.selectbox(
        label, options, index=index, format_func=format_func, help=help, **state.bound(key, url=url)
    )


def class_picker(
    label: str,
    names: Sequence[str],
    key: str,
    *,
    index: int | None = None,
    disabled: bool = False,
    help: str | None = None,
) -> int | None:
    """A class of `names` by index, shown as `537: dogsled`: type in the box to search by name
    or index (a selectbox filters its options as you type), so it serves 10 classes or 1000.

    Bound to `key` (URL + session); starts on `index`, else the key's default, else class 0.
    A kept value that is no class of these names (another set's) is dropped.
    """
    from ladd.classes import class_label

    options = list(range(len(names)))
    if not options:
        st.info("This set names no classes.", icon=":material/info:")
        return None
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]
    start = index if index is not None else state.DEFAULTS.get(key, 0)
    return st.selectbox(
        label,
        options,
        index=min(max(int(start or 0), 0), len(options) - 1),
        format_func=lambda k: class_label(k, names),
        help=help or f"{len(options)} classes: type a name or an index to find one.",
        placeholder="Type a class name or index",
        disabled=disabled,
        **state.bound(key),
    )


def set_picker(key: str, *, label: str = "Set", label_augmented: bool | None = None) -> str | None:
    """Pick a set of the workspace (newest first). `label_augmented`: only LA sets / only not."""
    from ladd.sets import is_label_augmented_file

    sets = cache.list_sets()
    if label_augmented is not None:
        root = workspace_root()
        sets = [s for s in sets if is_label_augmented_file(root / s) == label_augmented]
    return select(
        label,
        sets,
        key,
        empty="No sets in the workspace yet: build the demo on the Home page, or make one on "
        "the Distilled images page.",
    )


def read_options(
    fmt: str, source: str, mean: str, std: str, zca: bool, experiment: int
) -> cache.ReadOptions:
    """ladd.sets.load_set options from the 'How to read this set' fields ("auto", blank and
    -1 mean "from the files"); the rules are ladd.sets.options.read_options', and a field that
    does not make sense raises its ValueError (SetOptionError)."""
    from ladd.sets.options import read_options as core_read_options

    opts = core_read_options(
        format=None if fmt == "auto" else fmt,
        source=None if source == "auto" else source,
        mean=mean,
        std=std,
        zca=zca,
        experiment=None if experiment < 0 else experiment,
    )
    return tuple(opts.items())


def list_runs(kind: str | None = "train", *, show_problems: bool = True) -> list[Any]:
    """The workspace's runs (cache.list_runs), a damaged runs database or record shown as what
    it is instead of breaking the page: a database that cannot be read is one error naming its
    file (and no runs), each damaged record a warning naming the run and the file (it stays in
    the list with status "damaged")."""
    from ladd.store import RunsDatabaseError

    try:
        runs = cache.list_runs(kind)
    except RunsDatabaseError as err:
        if show_problems:
            error(err, "Runs database: ")
        return []
    if show_problems:
        for run in runs:
            if run.status == "damaged":
                st.warning(literal(run.error), icon=":material/warning:")
    return runs


def run_label(run: Any) -> str:
    """`#12 my label (53.2%)` for a ladd.summaries.RunSummary."""
    acc = f"{run.accuracy_mean:.1%}" if run.accuracy_mean is not None else run.status
    name = run.label or (f"{run.mode} / {run.train.arch}" if run.train else run.kind)
    return f"#{run.id} {name} ({acc})"


def compare_params(b_run: Any, a_run: Any | None = None) -> dict[str, str]:
    """Query parameters that open Compare runs on these runs (RunSummary): its pickers are
    bound to the URL by their shown label (run_label), not by the run id."""
    params = {K.CMP_B: run_label(b_run)}
    if a_run is not None:
        params[K.CMP_A] = run_label(a_run)
    return params


# ---------------------------------------------------------------------------------------------
# Output


def plot(fig: Any, name: str, *, key: str | None = None) -> None:
    """A Plotly chart whose toolbar camera saves `name` as PNG or SVG (sidebar choice)."""
    fmt = state.get(K.FIG_FORMAT) or "png"
    st.plotly_chart(fig, config=charts.export_config(name, fmt), key=key)


def csv_download(df: pd.DataFrame, name: str, *, key: str, label: str = "Download CSV") -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    st.download_button(
        label,
        buf.getvalue().encode("utf-8"),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=key,
        on_click="ignore",
        icon=":material/download:",
    )


def table(df: pd.DataFrame, name: str, *, key: str) -> None:
    """A dataframe with a CSV download under it."""
    st.dataframe(df, hide_index=True)
    csv_download(df, name, key=key)


def top_k(key: str, num_classes: int, label: str = "Top classes shown") -> int:
    """How many classes a top-k view shows (1 .. all of them), bound to `key`."""
    high = max(1, min(int(num_classes), 50))
    if int(st.session_state.get(key, 0) or 0) > high:  # kept from a set with more classes
        st.session_state[key] = high
    value = st.number_input(
        label,
        1,
        high,
        min(state.default(key), high),
        help="The rest of the probability is one 'other' bar.",
        **state.bound(key),
    )
    return int(min(value, high))


def crop_soft_labels(
    dense: Any, names: Sequence[str], label: int, name: str, *, key: str, k_key: str
) -> None:
    """One image's soft label per crop, dense (n*n, K), as small multiples (the image's class
    in red): a bar per class; with many classes the image's top-k classes (k picked here,
    bound to `k_key`) and one bar for every other class, with the table of those k and "other"."""
    from app.tables import soft_label_table
    from ladd.classes import many_classes, top_classes

    if not many_classes(len(names)):
        plot(charts.crop_label_bars(dense, names, highlight=label), name, key=key)
        return
    k = top_k(k_key, len(names))
    top = top_classes(dense, k)
    plot(charts.crop_top_bars(top, names, highlight=label), name, key=key)
    table(soft_label_table(top, names), f"{name}_top{k}", key=f"{key}_csv")


# ---------------------------------------------------------------------------------------------
# Jobs


def job_status(job_id: str | None, *, curve: bool = True) -> None:
    """Live progress of a background job; the app reruns once when it ends.

    Draws nothing for an unknown id. While the job is active the panel refreshes itself each
    second (a fragment), so the rest of the page stays usable.
    """
    job = registry().get(job_id)
    if job is None:
        return
    if job.active:
        _live_job(job_id, curve)
    else:
        _job_panel(job.snapshot(), curve)


@st.fragment(run_every=1.0)
def _live_job(job_id: str, curve: bool) -> None:
    job = registry().get(job_id)
    if job is None:
        return
    snap = job.snapshot()
    _job_panel(snap, curve)
    if not job.active and state.once(f"rerun:{job_id}"):
        st.rerun()


# ---------------------------------------------------------------------------------------------
# Training curves


def training_curves(runs: Sequence[Any], *, recent_jobs: int = 4) -> None:
    """Training loss and test accuracy per epoch (mean and band over seeds) of the newest
    training jobs (live while they run) and of finished `runs` (RunSummary), overlaid.

    While a training job is active the chart refreshes itself each second (a fragment).
    """
    ids = tuple(int(r.id) for r in runs)
    if registry().active("train"):
        _live_curves(ids, recent_jobs)
    else:
        _draw_curves(ids, recent_jobs)


@st.fragment(run_every=1.0)
def _live_curves(ids: tuple[int, ...], recent_jobs: int) -> None:
    _draw_curves(ids, recent_jobs)


def _draw_curves(ids: tuple[int, ...], recent_jobs: int) -> None:
    loss, acc = [], []
    shown: set[int] = set()
    for job in registry().jobs("train")[:recent_jobs]:
        snap = job.snapshot()
        if snap["status"] == "done" and isinstance(snap["result"], int):
            if snap["result"] not in ids:
                ids = (*ids, snap["result"])  # a job that just finished: its recorded run
            continue
        if snap["status"] not in ("queued", "running"):
            continue
        name = f"{snap['title'].removeprefix('Training: ')} ({snap['status']})"
        for metric, out in (("loss", loss), ("accuracy", acc)):
            points = snap["curves"].get(metric)
            if points:
                out.append(charts.Series.from_points(name, points))
    by_id = {r.id: r for r in list_runs("train", show_problems=False)}
    for run_id in ids:
        run = by_id.get(run_id)
        if run is None or run_id in shown or run.status != "done":
            continue
        shown.add(run_id)
        a, b = charts.series_from_result(run_label(run), cache.run_result(run_id))
        loss += [a] if a else []
        acc += [b] if b else []
    if not loss and not acc:
        st.caption(
            "No curves yet: start a training run above, or pick finished runs to overlay. "
            "Test accuracy during training appears when the trainer reports it."
        )
        return
    plot(
        charts.training_curves(
            loss, acc, accuracy_title="test accuracy (held-out subset; last point: test split)"
        ),
        "training_curves",
        key="tr_curves",
    )


def _job_panel(snap: dict[str, Any], curve: bool) -> None:
    """A job's progress, outcome and warnings; its title (a source or set name) and messages
    shown as text."""
    status = snap["status"]
    title = literal(snap["title"])
    text = f"{snap['title']}: {status}"
    if snap["stage"] and status == "running":
        text += f" ({snap['stage']} {snap['step']}/{snap['total']})"
    if status in ("queued", "running"):
        st.progress(snap["fraction"], text=literal(text))
        if snap["message"]:
            st.caption(literal(snap["message"]))
        if st.button("Stop", key=f"stop_{snap['id']}", icon=":material/stop:"):
            registry().stop(snap["id"])
    elif status == "done":
        st.success(f"{title}: done in {snap['elapsed']:.0f} s", icon=":material/check_circle:")
    elif status == "stopped":
        st.warning(f"{title}: stopped", icon=":material/stop_circle:")
    else:
        error(snap["error"] or "failed", prefix=f"{snap['title']} failed: ")
    for line in snap["log"]:  # the set's warnings, as `ladd train` prints them
        if line.startswith(WARNING_PREFIX):
            st.warning(literal(line[len(WARNING_PREFIX) :]), icon=":material/warning:")
    if curve and snap["losses"] and not snap["curves"]:
        # A trainer without per-epoch reports: its loss per progress step, as reported.
        plot(
            charts.loss_curves([snap["losses"]], ["loss"], x_title="progress step"),
            f"loss_{snap['id']}",
        )
