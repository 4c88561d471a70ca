"""Soft labels across labeler epochs: each crop's dense label for one image under several
checkpoints, and over the whole set the over-confidence of later epochs (paper Fig. 5)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import cache, charts, drift_view, state, tasks, widgets
from app.paths import workspace_root
from app.state import K
from app.text import literal
from ladd.classes import many_classes
from ladd.crop_stats import CROP_METRICS
from ladd.data import list_sources

st.title("Soft labels across labeler epochs")

left, right = st.columns(2)
with left:
    path = widgets.set_picker(K.SL_SET)
with right:
    lab_dir = widgets.select(
        "Labeler",
        cache.list_labelers(),
        K.SL_LABELER,
        empty="No labelers yet: build the demo on Home, or train one below.",
    )

if path and lab_dir:
    with widgets.guard("Cannot label this set: "):
        ds = cache.set_view(path)
        names = list(ds.class_names)
        many = many_classes(len(names))
        epochs = cache.labeler_epochs(lab_dir)
        chosen = st.multiselect(
            "Checkpoints (labeler epochs)",
            list(epochs),
            default=list(epochs),
            format_func=lambda e: f"epoch {e}",
            **state.bound(K.SL_EPOCHS),
        )
        c1, c2, c3 = st.columns(3)
        with c1:
            index = widgets.image_index(len(ds), K.SL_IMAGE)
        with c2:
            n = st.slider("N", 1, 9, state.default(K.SL_N), **state.bound(K.SL_N))
        with c3:
            r = st.slider(
                "R",
                0.1,
                1.0,
                state.default(K.SL_R),
                step=0.025,
                format="%.3f",
                **state.bound(K.SL_R),
            )
        c4, c5 = st.columns(2)
        with c4:
            metric = st.segmented_control(
                "Show per crop",
                list(CROP_METRICS),
                default=state.default(K.SL_METRIC),
                required=True,
                **state.bound(K.SL_METRIC),
            )
        label = int(ds.labels[index])
        with c5:
            klass = widgets.class_picker(
                "Class",
                names,
                K.SL_CLASS,
                index=label,
                disabled=metric != "class probability",
            )
        st.caption(f"Image {index}: class **{literal(names[label])}**")
        if hasattr(ds, "dense_labels"):  # a label-augmented set: its own labels are encoded
            st.caption(
                f"This set stores its dense labels as **{literal(ds.codec.spec)}** "
                f"({ds.label_bytes() / max(1, len(ds)):,.0f} bytes per image); the labels "
                "below are each checkpoint's own, computed here in float32."
            )

        if not chosen:
            st.info("Pick at least one checkpoint.")
        else:
            chosen = sorted(chosen)
            problems = cache.input_space_problems(path, epochs[chosen[0]])
            if problems:
                raise ValueError("this labeler cannot label this set: " + "; ".join(problems))
            picked = {e: epochs[e] for e in chosen}
            dense = cache.dense_by_epoch(path, picked, n, r, index)  # epoch -> (n*n, K)
            img_col, *heat_cols = st.columns(1 + min(len(chosen), 4))
            with img_col:
                _, boxes = cache.crops_of(path, index, n, r)
                widgets.plot(
                    charts.image_with_boxes(cache.image_pixels(path, index), boxes),
                    "soft_label_image",
                    key="sl_img_fig",
                )
            for i, e in enumerate(chosen):
                values, zmax = cache.crop_values(dense[e], metric, klass)
                what = {"class probability": f"P({names[klass]})", "entropy": "entropy (nats)"}
                title = f"epoch {e}: {what.get(metric, metric)}"
                with heat_cols[i % len(heat_cols)]:
                    widgets.plot(
                        charts.crop_heatmap(values, title, zmax=zmax),
                        f"heatmap_epoch{e}",
                        key=f"heat_{e}",
                    )

            st.caption(
                "Each small chart is one crop, in raster order; the red bar is the image's class"
                + (
                    " (when it is among the top classes), the grey bar every other class."
                    if many
                    else "."
                )
            )
            st.subheader("Drift from the image's label")
            drift_view.rule_caption()
            drift_view.image_grids(path, picked, n, r, index, "sl")

            if st.session_state.get("sl_bar_epoch") not in chosen:
                st.session_state.pop("sl_bar_epoch", None)  # its epoch was deselected
            bar_epoch = st.select_slider(
                "Per-crop soft labels of epoch", chosen, value=chosen[0], key="sl_bar_epoch"
            )
            widgets.crop_soft_labels(
                dense[bar_epoch],
                names,
                label,
                f"soft_labels_epoch{bar_epoch}",
                key="sl_bars",
                k_key=K.SL_TOPK,
            )

            st.subheader("Over the whole set, per labeler epoch")
            st.caption(
                "Later checkpoints are more accurate but over-confident: mean max-probability "
                "rises and entropy falls (the paper's Fig. 5)."
            )
            whole = not many or st.toggle(
                "Label every crop of the whole set",
                help=f"{len(ds):,} images x {n * n} crops x {len(chosen)} checkpoint(s): with "
                "many classes this runs when you ask.",
                **state.bound(K.SL_WHOLE, url=False),
            )
            if whole:
                df = cache.summary_by_epoch(path, picked, n, r)
                widgets.plot(
                    charts.epoch_curves(
                        df["epoch"],
                        df["mean_max_prob"],
                        df["mean_entropy"],
                        df.get("test_accuracy"),
                    ),
                    "fig5_epochs",
                    key="sl_fig5",
                )
                widgets.table(df.round(4), "soft_labels_per_epoch", key="sl_csv")
                st.caption(
                    "The same checkpoints' drift over every crop of the set: the histogram of "
                    "each crop's JS to its image's label, and the drifted share per epoch."
                )
                drift_view.set_views(path, picked, n, r, "sl")

st.subheader("A soft-label store beside the set")
st.caption(
    "The labels SRe2L and its successors ship (an FKD folder, LPLD, EDC, HALD, LPQLD, or a "
    "file `ladd convert` wrote): every epoch's crops of each image with their flips, CutMix or "
    "Mixup and the teacher's label. Give the store's path; the set above is its image folder."
)
store_path = st.text_input("Soft-label store (path)", **state.bound(K.SL_STORE))
if path and store_path:
    with widgets.guard("Cannot read this store: "):
        sset = cache.soft_label_set(path, store_path)
        info = sset.store.info()
        st.text("\n".join(info.lines()))  # what the files say, shown as text
        c1, c2, c3 = st.columns(3)
        with c1:
            epoch = widgets.number("Epoch", 0, info.epochs - 1, K.SL_STORE_EPOCH)
        with c2:
            batch = widgets.number("Batch", 0, sset.store.batches(epoch) - 1, K.SL_STORE_BATCH)
        with c3:
            row = widgets.number("Row", 0, info.batch_size - 1, K.SL_STORE_ROW)
        view = cache.store_crop(path, store_path, int(epoch), int(batch), int(row))
        names = list(sset.class_names)
        a, b, c = st.columns(3)
        with a:
            widgets.plot(
                charts.image_with_boxes(
                    view.image.numpy(), [view.box], f"image {view.image_index}"
                ),
                "store_crop_box",
                key="sl_store_box",
            )
        with b:
            mixed = [view.mix_box] if view.mix_box else []
            what = "flipped" if view.flip else "not flipped"
            if view.mix:
                what += f", {view.mix} with image {view.partner_index} (lambda {view.mix_lam:.2f})"
            widgets.plot(
                charts.image_with_boxes(view.crop.numpy(), mixed, what),
                "store_crop_trained",
                key="sl_store_crop",
            )
        with c:
            st.dataframe(
                pd.DataFrame(
                    {
                        "class": [names[k] for k, _ in view.top_classes],
                        "target": [p for _, p in view.top_classes],
                    }
                ),
                hide_index=True,
            )
            st.text(  # class names come from the files: text, not Markdown
                f"the image's class: {names[view.label]}\ntargets at T = {sset.label_temperature:g}"
            )

with st.expander("Train a labeler", expanded=not cache.list_labelers()):
    sources = [s for s in list_sources() if not s.startswith("imagefolder")]
    c1, c2, c3, c4, c5 = st.columns(5)
    with c1:
        lt_source = widgets.select("Source", sources, K.LT_SOURCE)
    with c2:
        lt_epochs = widgets.number("Epochs", 1, 200, K.LT_EPOCHS)
    with c3:
        lt_every = widgets.number("Checkpoint every", 1, 50, K.LT_EVERY)
    with c4:
        lt_width = widgets.number("ConvNet width", 8, 128, K.LT_WIDTH, step=8)
    with c5:
        lt_limit = widgets.number("Images per class (0 = all)", 0, 6000, K.LT_LIMIT, step=50)
    if st.button("Train labeler", key="lt_go", type="primary", disabled=lt_source is None):
        job = tasks.submit_labeler(
            str(workspace_root()),
            lt_source,
            int(lt_epochs),
            int(lt_every),
            int(lt_width),
            int(lt_limit) or None,
        )
        state.put(K.LT_JOB, job.id)
    widgets.job_status(state.get(K.LT_JOB))
