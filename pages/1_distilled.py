"""Distilled images: load a set (workspace, server path, upload, or a new random-real one) and
look at it: a grid by class, image statistics and the format detected."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import cache, charts, state, tasks, widgets
from app.jobs import registry
from app.paths import workspace_root
from app.state import K
from app.text import literal
from app.uploads import save_upload
from ladd.classes import class_members, class_window, many_classes
from ladd.data import list_sources
from ladd.pipeline import slug
from ladd.sets import FORMATS, DistilledFileError

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

options: cache.ReadOptions = ()
if path and origin in ("path", "upload"):
    with st.expander("How to read this set", expanded=False):
        st.caption(
            "The format is found from the files; a set that does not record its normalisation "
            "takes its source's (the convention of the code that made it), or the mean and std "
            "given here. MTT/DATM sets saved in ZCA space are whitened with the source's train "
            "split, as their code does."
        )
        o1, o2, o3 = st.columns(3)
        with o1:
            fmt = st.selectbox(
                "Format",
                ["auto", *FORMATS],
                index=0,
                help="Force a reader's conventions (e.g. glad, datm) when the files look alike.",
                **state.bound(K.DS_FORMAT),
            )
        with o2:
            read_sources = ["auto", *(s for s in list_sources() if not s.startswith("imagefolder"))]
            src = st.selectbox(
                "Source dataset",
                read_sources,
                index=0,
                help="Normalisation, class names and the real test split.",
                **state.bound(K.DS_SOURCE),
            )
        with o3:
            exp = widgets.number(
                "Experiment (DC/DSA/DM result files)",
                -1,
                99,
                K.DS_EXPERIMENT,
                help="Which experiment of a res_*.pt file; -1 = the last.",
            )
        o4, o5, o6 = st.columns(3)
        with o4:
            mean_text = st.text_input(
                "Mean", placeholder="0.4914,0.4822,0.4465", **state.bound(K.DS_MEAN)
            )
        with o5:
            std_text = st.text_input(
                "Std", placeholder="0.2023,0.1994,0.2010", **state.bound(K.DS_STD)
            )
        with o6:
            zca = st.checkbox(
                "Images are in ZCA space",
                help="Needs the source dataset: ZCA is fitted on its train split.",
                **state.bound(K.DS_ZCA),
            )
        with widgets.guard("Reading options: "):
            options = widgets.read_options(fmt, src, mean_text, std_text, zca, int(exp))

if path:
    with widgets.guard("Cannot show this set: "):
        try:
            ds = cache.set_view(path, options)
        except DistilledFileError as err:
            if "normalisation" not in str(err):
                raise
            options = (*options, ("describe_only", True))  # show it; training needs mean/std
            ds = cache.set_view(path, options)
            st.warning(
                f"{literal(err)}. Shown with its pixel range stretched; give the source or the "
                "mean and std under 'How to read this set' to train on it or label it.",
                icon=":material/warning:",
            )
        info = ds.describe()
        labels = ds.labels.numpy()
        names = list(ds.class_names or [str(k) for k in range(int(labels.max()) + 1)])
        many = many_classes(len(names))

        st.success(
            f"Format detected: **{literal(info.get('format', getattr(ds, 'format', '?')))}**",
            icon=":material/check:",
        )
        for w in getattr(ds, "warnings", None) or []:
            st.warning(literal(w), icon=":material/warning:")
        m = st.columns(5)
        m[0].metric("Images", len(labels))
        m[1].metric("Classes", len(names))
        m[2].metric("Images per class", info.get("ipc", max(info.get("ipc_per_class", [0]) or [0])))
        m[3].metric("Image size", f"{ds.image_size} px")
        m[4].metric("Labels", info.get("label_kind", "hard"))

        g1, g2, g3 = st.columns(3) if many else (st.container(), None, None)
        with g1:
            per_class = st.slider(
                "Images shown per class",
                1,
                50,
                state.default(K.DS_PER_CLASS),
                **state.bound(K.DS_PER_CLASS),
            )
        shown = range(len(names))
        if many:  # a window of classes: only its images are read and drawn
            with g2:
                first = widgets.class_picker("Classes from", names, K.DS_FIRST)
            with g3:
                count = widgets.number("Classes shown", 1, 50, K.DS_CLASSES)
            shown = class_window(len(names), first or 0, count)
        picked = class_members(labels, shown, per_class)
        widgets.plot(
            charts.class_grid(
                cache.set_pixels_at(path, tuple(picked.tolist()), options),
                labels[picked] - shown.start,
                names[shown.start : shown.stop],
                per_class,
            ),
            "distilled_grid",
        )

        st.subheader("Image statistics")
        if many:
            st.caption(
                f"Of the classes shown ({literal(names[shown.start])} to "
                f"{literal(names[shown.stop - 1])}); "
                "'all' is over them."
            )
        widgets.table(
            cache.class_stats(path, options, tuple(shown) if many else None),
            "distilled_stats",
            key="ds_stats_csv",
        )
        if origin in ("path", "upload") and getattr(ds, "trainable", True) and options:
            # Read with options: a copy that records them lets every other page use the set.
            s1, s2 = st.columns([3, 1])
            with s1:
                name = st.text_input(
                    "Save as (a folder under the workspace's sets/)",
                    value=f"{Path(path).stem}-read",
                    key=K.DS_SAVE_NAME,
                )
            with s2:
                st.write("")
                save = st.button("Save to the workspace", key="ds_save", icon=":material/save:")
            if save:
                with widgets.guard("Cannot save: "):
                    target = workspace_root() / "sets" / slug(name)
                    if target.exists():
                        raise FileExistsError(f"sets/{target.name} already exists; pick a name")
                    cache.load_set(path, options).save_mtt(target)
                    st.success(
                        f"Saved as sets/{literal(target.name)}, with its normalisation and "
                        "classes: pick "
                        "it on the other pages.",
                        icon=":material/check:",
                    )
        with st.expander("Everything the reader found"):
            st.json(info, expanded=False)
