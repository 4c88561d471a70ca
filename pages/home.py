"""Home: what this machine is, where the workspace is, and the one-click demo."""

from __future__ import annotations

import streamlit as st

from app import cache, state, tasks, widgets
from app.jobs import registry
from app.paths import check_path, workspace_root
from app.state import K
from app.text import literal
from ladd.demo import (
    DEMO_SIZES,
    cifar10_available,
    default_size,
    default_source,
    describe,
    list_demos,
)
from ladd.device import resolve_device

LIVE_SECONDS = 2.0  # how often the workspace's counts refresh while a demo builds


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _as_text(summary: dict) -> dict:
    """A demo summary whose strings from files (source, device, reused steps) are escaped, so
    that its Markdown description shows them as written (app.text)."""
    out = {k: literal(v) if isinstance(v, str) else v for k, v in summary.items()}
    out["skipped"] = [literal(s.removeprefix("run:")) for s in summary.get("skipped") or []]
    return out


def _counts(device: str) -> None:
    """Device, sets and runs of the workspace (listings are cheap and never cached); a damaged
    runs database or record is named above the counts, which still show."""
    runs = widgets.list_runs(None)
    c1, c2, c3 = st.columns(3)
    c1.metric("Device", device)
    c2.metric("Sets in workspace", len(cache.list_sets()))
    c3.metric("Runs recorded", len(runs))


st.title("LADD Studio")
st.caption(
    "Label-Augmented Dataset Distillation: dense soft labels for every crop of a distilled "
    "image, explored page by page."
)

ws = cache.workspace()
counts = st.container()  # filled below, once it is known whether a demo is building
st.caption(f"Workspace: {literal(workspace_root())}")

st.subheader("One-click demo")
st.write(
    "Builds everything the other pages use with the pipeline itself: real **CIFAR-10** when it "
    "is at hand (or the offline **shapes** source), labeler checkpoints at several epochs, a "
    "random-real distilled set, its dense labels, a baseline and a LADD training run, and real "
    "test images for GradCAM."
)
st.caption(
    " ".join(f"*{name}*: {spec.description}." for name, spec in DEMO_SIZES.items())
    + " On a GPU the demo runs the paper's protocol by default."
)
col_a, col_b = st.columns(2)
with col_a:
    source = st.segmented_control(
        "Source",
        ["cifar10", "shapes"],
        default=default_source(),
        required=True,
        **state.bound(K.DEMO_SOURCE),
    )
with col_b:
    size = st.segmented_control(
        "Size",
        list(DEMO_SIZES),
        default=default_size("auto"),
        required=True,
        **state.bound(K.DEMO_SIZE),
    )
data_root = None
if source == "cifar10":
    folder = st.text_input(
        "CIFAR-10 folder (optional)",
        placeholder="a folder with torchvision's cifar-10-batches-py; empty: the default",
        help="Without it: the shared archive of LADD_SHARED_DATA when set, else torchvision's "
        "files under LADD_DATA_ROOT (./data), downloaded when missing. The folder must be inside "
        "the workspace or LADD_ALLOWED_DIRS.",
        **state.bound(K.DEMO_DATA, url=False),
    )
    with widgets.guard("CIFAR-10 folder: "):
        data_root = str(check_path(folder)) if folder and folder.strip() else None
    if not cifar10_available(data_root):
        st.caption("CIFAR-10 is not on this machine yet: the build downloads it first.")
busy = registry().active("demo")
if st.button(
    "Build the demo",
    type="primary",
    key="demo_go",
    icon=":material/play_arrow:",
    disabled=bool(busy),
):
    job = tasks.submit_demo(str(workspace_root()), source, size, data_root)
    state.put(K.DEMO_JOB, job.id)

# This tab's job, else the newest demo job of any tab (a second tab sees the same build).
job_id = state.get(K.DEMO_JOB)
latest = registry().latest("demo")
if job_id is None and latest is not None:
    job_id = latest.id
widgets.job_status(job_id, curve=False)  # its message ends with the time left

with counts:  # a building demo adds sets and runs: count them again every few seconds
    device = widgets.device_label(resolve_device("auto"))
    if registry().active("demo"):
        st.fragment(_counts, run_every=LIVE_SECONDS)(device)
    else:
        _counts(device)

demos = list_demos(ws)
if demos:
    import pandas as pd

    st.subheader("Built demos")
    with st.container(key="demo_summary"):
        for d in demos:
            st.markdown(describe(_as_text(d)))
    df = pd.DataFrame(
        [
            {
                "source": d["source"],
                "size": d["size"],
                "baseline": _pct(d.get("baseline_accuracy")),
                "LADD": _pct(d.get("ladd_accuracy")),
                "seconds": round(d["seconds"], 1),
                "device": d.get("device", ""),
                "checkpoints": len(d["checkpoints"]),
                "baseline run": d["baseline_run"],
                "LADD run": d["ladd_run"],
                "set": cache.rel(d["set_path"]),
            }
            for d in demos
        ]
    )
    st.dataframe(
        df,
        hide_index=True,
        column_config={
            "baseline": st.column_config.NumberColumn("baseline (%)", format="%.1f"),
            "LADD": st.column_config.NumberColumn("LADD (%)", format="%.1f"),
        },
    )

st.subheader("Pages")
links = [
    ("../pages/1_distilled.py", "Distilled images", ":material/grid_view:"),
    ("../pages/2_subsampling.py", "Sub-sampling", ":material/crop:"),
    ("../pages/3_soft_labels.py", "Soft labels", ":material/bar_chart:"),
    ("../pages/4_training.py", "Deployment training", ":material/model_training:"),
    ("../pages/5_compare.py", "Compare runs", ":material/compare:"),
    ("../pages/7_results.py", "Results", ":material/table_view:"),
]
cols = st.columns(len(links))
for col, (page, label, icon) in zip(cols, links, strict=True):
    col.page_link(page, label=label, icon=icon)
