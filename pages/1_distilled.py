"""Distilled images: load a set (workspace, server path, upload, or a new random-real one) and
look at it: a grid by class, image statistics and the format detected."""

from __future__ import annotations

import streamlit as st

from app import cache, charts, state, tasks, widgets
from app.jobs import registry
from app.paths import workspace_root
from app.state import K
from app.uploads import save_upload
from ladd.data import list_sources

st.title("Distilled images")

# A random-real set that just finished becomes the one shown (once).
rr_job = registry().get(state.get(K.RR_JOB))
if rr_job is not None and rr_job.status == "done" and state.once(f"apply:{rr_job.id}"):
    state.put(K.DS_FROM, "workspace")
    state.put(K.DS_SET, cache.rel(rr_job.result))

origin = st.segmented_control(
    "Load from",
    ["workspace", "path", "upload", "random real"],
    format_func=lambda o: {
        "workspace": "Workspace",
        "path": "Server path",
        "upload": "Upload",
        "random real": "Make random-real",
    }[o],
    default=state.default(K.DS_FROM),
    required=True,
    **state.bound(K.DS_FROM),
)

path: str | None = None
if origin == "workspace":
    path = widgets.set_picker(K.DS_SET)
elif origin == "path":
    text = st.text_input(
        "Path on the server (a run folder, .pt, .safetensors, or a class-folder tree)",
        help="Inside the workspace, or a folder listed in LADD_ALLOWED_DIRS.",
        **state.bound(K.DS_PATH),
    )
    path = text.strip() or None
elif origin == "upload":
    files = st.file_uploader(
        "MTT/DATM tensors (images_best.pt, labels_best.pt, lr_best.pt), a LADD .safetensors "
        "set, or a .zip of a run folder or JPEG class folders",
        type=["pt", "pth", "safetensors", "zip", "json"],
        accept_multiple_files=True,
        key="ds_upload",
    )
    if files:
        with widgets.guard("Upload refused: "):
            saved = save_upload(files, workspace_root() / "uploads")
            state.put(K.DS_UPLOADED, cache.rel(saved))
    path = state.get(K.DS_UPLOADED)
else:
    c1, c2, c3 = st.columns(3)
    sources = [s for s in list_sources() if not s.startswith("imagefolder")]
    with c1:
        rr_source = widgets.select("Source", sources, K.RR_SOURCE)
    with c2:
        ipc = widgets.number("Images per class", 1, 100, K.RR_IPC)
    with c3:
        seed = widgets.number("Seed", 0, 10_000, K.RR_SEED)
    if st.button("Make random-real set", type="primary", key="rr_go", disabled=rr_source is None):
        job = tasks.submit_random_real(str(workspace_root()), rr_source, int(ipc), int(seed))
        state.put(K.RR_JOB, job.id)
    widgets.job_status(state.get(K.RR_JOB), curve=False)

if path:
    with widgets.guard("Cannot show this set: "):
        ds = cache.load_set(path)
        info = ds.describe()
        pixels = cache.set_pixels(path)
        labels = ds.labels.numpy()
        names = list(ds.class_names or [str(k) for k in range(int(labels.max()) + 1)])

        st.success(
            f"Format detected: **{info.get('format', getattr(ds, 'format', '?'))}**",
            icon=":material/check:",
        )
        for w in getattr(ds, "warnings", None) or []:
            st.warning(w, icon=":material/warning:")
        m = st.columns(5)
        m[0].metric("Images", len(labels))
        m[1].metric("Classes", len(names))
        m[2].metric("Images per class", info.get("ipc", max(info.get("ipc_per_class", [0]) or [0])))
        m[3].metric("Image size", f"{pixels.shape[1]} px")
        m[4].metric("Labels", info.get("label_kind", "hard"))

        per_class = st.slider(
            "Images shown per class",
            1,
            50,
            state.default(K.DS_PER_CLASS),
            **state.bound(K.DS_PER_CLASS),
        )
        widgets.plot(charts.class_grid(pixels, labels, names, per_class), "distilled_grid")

        st.subheader("Image statistics")
        widgets.table(cache.class_stats(path), "distilled_stats", key="ds_stats_csv")
        with st.expander("Everything the reader found"):
            st.json(info, expanded=False)
