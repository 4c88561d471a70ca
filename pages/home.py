"""Home: what this machine is, where the workspace is, and the one-click demo."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import cache, state, tasks, widgets
from app.jobs import registry
from app.paths import workspace_root
from app.state import K
from ladd.demo import DEMO_SIZES, list_demos
from ladd.device import resolve_device

st.title("LADD Studio")
st.caption(
    "Label-Augmented Dataset Distillation: dense soft labels for every crop of a distilled "
    "image, explored page by page."
)

ws = cache.workspace()
runs = cache.list_runs(None)
c1, c2, c3 = st.columns(3)
c1.metric("Device", widgets.device_label(resolve_device("auto")))
c2.metric("Sets in workspace", len(cache.list_sets()))
c3.metric("Runs recorded", len(runs))
st.caption(f"Workspace: `{workspace_root()}`")

st.subheader("One-click demo")
st.write(
    "Builds everything the other pages use with the pipeline itself: the offline **shapes** "
    "source (or CIFAR-10 when available), labeler checkpoints at several epochs, a random-real "
    "distilled set, its dense labels, a baseline and a LADD training run, and real test images "
    "for GradCAM. *Full* fits in about 3 minutes on 2 CPU cores; *small* is a quick smoke build."
)
col_a, col_b = st.columns(2)
with col_a:
    source = st.segmented_control(
        "Source",
        ["shapes", "cifar10"],
        default=state.default(K.DEMO_SOURCE),
        required=True,
        **state.bound(K.DEMO_SOURCE),
    )
with col_b:
    size = st.segmented_control(
        "Size",
        list(DEMO_SIZES),
        default=state.default(K.DEMO_SIZE),
        required=True,
        **state.bound(K.DEMO_SIZE),
    )
busy = registry().active("demo")
if st.button(
    "Build the demo",
    type="primary",
    key="demo_go",
    icon=":material/play_arrow:",
    disabled=bool(busy),
):
    job = tasks.submit_demo(str(workspace_root()), source, size)
    state.put(K.DEMO_JOB, job.id)

# This tab's job, else the newest demo job of any tab (a second tab sees the same build).
job_id = state.get(K.DEMO_JOB)
latest = registry().latest("demo")
if job_id is None and latest is not None:
    job_id = latest.id
widgets.job_status(job_id, curve=False)

demos = list_demos(ws)
if demos:
    st.subheader("Built demos")
    df = pd.DataFrame(
        [
            {
                "source": d["source"],
                "size": d["size"],
                "seconds": round(d["seconds"], 1),
                "checkpoints": len(d["checkpoints"]),
                "baseline run": d["baseline_run"],
                "LADD run": d["ladd_run"],
                "set": cache.rel(d["set_path"]),
            }
            for d in demos
        ]
    )
    st.dataframe(df, hide_index=True)

st.subheader("Pages")
cols = st.columns(5)
links = [
    ("../pages/1_distilled.py", "Distilled images", ":material/grid_view:"),
    ("../pages/2_subsampling.py", "Sub-sampling", ":material/crop:"),
    ("../pages/3_soft_labels.py", "Soft labels", ":material/bar_chart:"),
    ("../pages/4_training.py", "Deployment training", ":material/model_training:"),
    ("../pages/5_compare.py", "Compare runs", ":material/compare:"),
]
for col, (page, label, icon) in zip(cols, links, strict=True):
    col.page_link(page, label=label, icon=icon)
