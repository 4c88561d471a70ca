"""Sub-sampling: the static sampler S on one image -- the N x N crop boxes, the crops, and what
a setting costs (crop size, stride, labels per image, storage overhead for the whole set)."""

from __future__ import annotations

import streamlit as st

from app import cache, charts, drift_view, state, widgets
from app.state import K
from app.text import literal
from ladd.classes import many_classes
from ladd.codecs import STANDARD_SPECS, parse_codec
from ladd.subsample import crop_grid

st.title("Sub-sampling")
st.caption(
    "Each image gives N x N crops that each cover R of the side, evenly strided from the "
    "top-left corner (raster order). N and R define every crop: nothing is stored per crop."
)

path = widgets.set_picker(K.SUB_SET)


def setting(col, n_key: str, r_key: str, suffix: str) -> tuple[int, float]:
    with col:
        n = st.slider(
            f"N (crops per side){suffix}", 1, 9, state.default(n_key), **state.bound(n_key)
        )
        r = st.slider(
            f"R (crop side / image side){suffix}",
            0.1,
            1.0,
            state.default(r_key),
            step=0.025,
            format="%.3f",
            **state.bound(r_key),
        )
    return n, r


def show(
    path: str, index: int, n: int, r: float, size: int, base: dict, tag: str, codec: str
) -> None:
    """One setting's figures: metrics (the overhead when `base` has the set's zip bytes), the
    crop boxes on the image, and the crops."""
    grid = crop_grid(size, n, r)
    crops, boxes = cache.crops_of(path, index, n, r)
    m = st.columns(5)
    m[0].metric("Crop size", f"{grid.side} px")
    m[1].metric("Stride", f"{grid.stride:.1f} px")
    m[2].metric("Labels per image", grid.num_crops)
    # The codec's raw bytes (N*N crops x its bytes per crop at K classes) per image and for the
    # whole set, against the zipped images + hard labels.
    per_image = grid.num_crops * parse_codec(codec).bytes_per_crop(int(base["classes"]))
    m[3].metric("Label bytes / image", f"{per_image:,}", help=f"dense labels stored as {codec}")
    m[4].metric(
        "Storage overhead",
        f"{base['images'] * per_image / base['base_bytes']:.1%}" if "base_bytes" in base else "-",
        help=f"Whole set: {codec} dense labels (uncompressed) over the zip of its uint8 images "
        "and hard labels. The paper's zip accounting compresses the labels too (`ladd overhead "
        "--codec all` measures it per codec).",
    )
    a, b = st.columns(2)
    with a:
        image = cache.image_pixels(path, index)
        widgets.plot(
            charts.image_with_boxes(image, boxes, f"{n} x {n} crops, R = {r:.3f}"),
            f"crop_boxes_n{n}_r{r:.3f}",
            key=f"boxes_{tag}",
        )
    with b:
        widgets.plot(
            charts.crops_sheet(crops, n, f"{grid.num_crops} crops of {grid.side} px"),
            f"crops_n{n}_r{r:.3f}",
            key=f"crops_{tag}",
        )


def drift(path: str, index: int, n: int, r: float, many: bool) -> None:
    """The crops' drift from the image's label at this N and R, under a labeler checkpoint
    (ladd.drift): a heat grid of this image's crops; over the set on request with many
    classes."""
    st.subheader("Drift of these crops")
    labelers = cache.list_labelers()
    if not labelers:
        st.caption("No labelers yet: the drift view labels the crops with one (Home's demo).")
        return
    c1, c2 = st.columns(2)
    with c1:
        lab_dir = widgets.select("Labeler", labelers, K.SUB_DRIFT_LABELER)
    epochs = cache.labeler_epochs(lab_dir) if lab_dir else {}
    if not epochs:
        return
    with c2:
        epoch = widgets.select(
            "Labeler epoch", sorted(epochs), K.SUB_DRIFT_EPOCH, format_func=lambda e: f"epoch {e}"
        )
    problems = cache.input_space_problems(path, epochs[epoch])
    if problems:
        st.caption("This labeler cannot label this set: " + "; ".join(problems))
        return
    drift_view.rule_caption()
    picked = {epoch: epochs[epoch]}
    a, b = st.columns(2)
    with a:
        drift_view.image_grids(path, picked, n, r, index, "sub")
    with b:
        if not many or st.toggle(
            "Label every crop of the set for its drift",
            help="Many classes: labelling every crop of the whole set runs when you ask.",
            **state.bound(K.SUB_DRIFT_SET, url=False),
        ):
            drift_view.set_views(path, picked, n, r, "sub")


if path:
    with widgets.guard("Cannot sub-sample this set: "):
        ds = cache.set_view(path)
        names = list(ds.class_names or [])
        count, size = len(ds), ds.image_size
        index = widgets.image_index(count, K.SUB_IMAGE)
        label = int(ds.labels[index])
        klass = literal(names[label] if names else label)
        st.caption(f"Image {index} of {count}, class **{klass}**")
        compare = st.toggle("Compare two settings side by side", **state.bound(K.SUB_COMPARE))
        if many_classes(ds.num_classes) and not st.toggle(
            "Measure the storage overhead (zips the whole set)",
            help="Many classes: zipping every image (and its dense labels) takes a while, so "
            "it runs when you ask.",
            **state.bound(K.SUB_MEASURE, url=False),
        ):
            base = {"images": count, "classes": ds.num_classes}
        else:
            base = cache.storage_base(path)
        codec = st.selectbox(
            "Label codec",
            [parse_codec(c).spec for c in STANDARD_SPECS],
            help="How the dense labels are stored (ladd augment --codec): float32 is the "
            "paper's; the others trade a stated error per probability for bytes.",
            **state.bound(K.SUB_CODEC),
        )
        if compare:
            left, right = st.columns(2)
            n1, r1 = setting(left, K.SUB_N, K.SUB_R, " (A)")
            n2, r2 = setting(right, K.SUB_N2, K.SUB_R2, " (B)")
            with left:
                show(path, index, n1, r1, size, base, "a", codec)
            with right:
                show(path, index, n2, r2, size, base, "b", codec)
        else:
            (col,) = st.columns(1)
            n1, r1 = setting(col, K.SUB_N, K.SUB_R, "")
            show(path, index, n1, r1, size, base, "a", codec)
        drift(path, index, n1, r1, many_classes(ds.num_classes))
        if "measured_overhead" in base:
            st.caption(
                f"This set carries dense labels at N = {base['measured_n']}, R = {base['measured_r']:g}: "
                f"stored as {literal(base['measured_codec'])}: measured zip overhead "
                f"{base['measured_overhead']:.1%} with every label the file stores (dense and "
                f"full-image), {base['measured_dense_overhead']:.1%} for the dense labels "
                "alone (the paper's accounting)."
            )
