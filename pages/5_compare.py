"""Compare two runs (e.g. baseline vs LADD): per-class accuracy, confusion matrices, a grid of
class activation maps on the same real test images (paper Fig. 4), and a one-file HTML report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import cache, charts, state, widgets
from app.state import K
from app.tables import confusions_table, per_class_table
from ladd.cam import CAM_LABELS
from ladd.classes import many_classes, sample_pool
from ladd.compare import GRID_FORMATS, PICKS, pick_images, render_cam_grid
from ladd.report import build_report

st.title("Compare runs")

runs = [r for r in cache.list_runs("train") if r.status == "done"]
if len(runs) < 1:
    st.info(
        "No finished training runs yet: build the demo on Home, or train on Deployment training."
    )
    st.stop()
by_id = {r.id: r for r in runs}
ids = list(by_id)


def default_index(mode: str, fallback: int) -> int:
    for i, r in enumerate(runs):
        if r.mode == mode:
            return i
    return min(fallback, len(ids) - 1)


a_col, b_col = st.columns(2)
with a_col:
    a = st.selectbox(
        "Run A",
        ids,
        index=default_index("baseline", 1),
        format_func=lambda i: widgets.run_label(by_id[i]),
        **state.bound(K.CMP_A),
    )
with b_col:
    b = st.selectbox(
        "Run B",
        ids,
        index=default_index("ladd", 0),
        format_func=lambda i: widgets.run_label(by_id[i]),
        **state.bound(K.CMP_B),
    )
ra, rb = by_id[a], by_id[b]
res_a, res_b = cache.run_result(a), cache.run_result(b)
for col, run in ((a_col, ra), (b_col, rb)):
    codec = cache.set_codec(run.set_path) if run.set_path else None
    if codec:  # a label-augmented set: the labels its student saw came through this codec
        col.caption(f"Dense labels of its set stored as **{codec}**")
    with col.expander("What ran (as recorded)"):
        facts = run.facts()
        if facts:  # values come from files: shown as a table of text, never as Markdown
            st.dataframe(
                pd.DataFrame({"field": list(facts), "value": list(facts.values())}),
                hide_index=True,
                width="stretch",
            )
        else:
            st.text("This run was recorded before runs kept their plan.")
names = res_a.get("class_names") or res_b.get("class_names") or []
name_a, name_b = f"A #{a} {ra.label or ''}".strip(), f"B #{b} {rb.label or ''}".strip()


def per_class_charts(
    names: list[str],
    acc: tuple[np.ndarray, np.ndarray],
    res: tuple[dict, dict],
    runs: tuple[str, str],
) -> None:
    """A few classes: grouped bars, their difference, the table and both confusion matrices
    (`acc`, `res`, `runs`: per-class accuracy, result.json and name of runs A and B)."""
    (acc_a, acc_b), (res_a, res_b), (name_a, name_b) = acc, res, runs
    widgets.plot(
        charts.per_class_bars(names, acc_a, acc_b, name_a, name_b),
        "per_class_accuracy",
        key="cmp_bars",
    )
    widgets.plot(
        charts.difference_bars(names, acc_b - acc_a, "B - A"),
        "per_class_difference",
        key="cmp_diff",
    )
    df = pd.DataFrame(
        {
            "class": names,
            "A": acc_a.round(4),
            "B": acc_b.round(4),
            "B - A": (acc_b - acc_a).round(4),
        }
    )
    widgets.table(df, "per_class_accuracy", key="cmp_csv")
    st.subheader("Confusion matrices")
    c1, c2 = st.columns(2)
    with c1:
        widgets.plot(
            charts.confusion_matrix(res_a["confusion"], names, name_a),
            "confusion_a",
            key="cmp_conf_a",
        )
    with c2:
        widgets.plot(
            charts.confusion_matrix(res_b["confusion"], names, name_b),
            "confusion_b",
            key="cmp_conf_b",
        )


def per_class_tables(
    names: list[str],
    acc: tuple[np.ndarray, np.ndarray],
    res: tuple[dict, dict],
    runs: tuple[str, str],
) -> None:
    """Many classes: the sorted accuracies, a searchable table worst first, and each run's
    largest confusions, in place of a bar per class and a C x C matrix."""
    (acc_a, acc_b), (name_a, name_b) = acc, runs
    widgets.plot(
        charts.sorted_accuracy({name_a: acc_a, name_b: acc_b}), "per_class_sorted", key="cmp_sorted"
    )
    sort_by = st.segmented_control(
        "Worst first by",
        ["B", "A", "B - A"],
        default=state.default(K.CMP_SORT),
        required=True,
        **state.bound(K.CMP_SORT),
    )
    columns = {"A": acc_a, "B": acc_b, "B - A": acc_b - acc_a}
    widgets.table(per_class_table(names, columns, sort_by), "per_class_accuracy", key="cmp_csv")
    st.subheader("Top confusions")
    limit = widgets.number("Confusions listed", 1, 500, K.CMP_CONFUSIONS)
    st.caption(
        "The largest off-diagonal cells of each run's confusion matrix, most images first; "
        "rate: their share of the true class's test images."
    )
    for col, result, name, tag in zip(st.columns(2), res, runs, "ab", strict=True):
        with col:
            st.markdown(f"**{name}**")
            widgets.table(
                confusions_table(result["confusion"], names, int(limit)),
                f"confusions_{tag}",
                key=f"cmp_conf_{tag}_csv",
            )


if names and res_a.get("per_class") and res_b.get("per_class"):
    acc_a = np.mean(np.asarray(res_a["per_class"]), axis=0)
    acc_b = np.mean(np.asarray(res_b["per_class"]), axis=0)
    m = st.columns(3)
    m[0].metric(name_a, f"{res_a['accuracy_mean']:.1%}")
    m[1].metric(
        name_b,
        f"{res_b['accuracy_mean']:.1%}",
        delta=f"{res_b['accuracy_mean'] - res_a['accuracy_mean']:+.1%}",
    )
    m[2].metric("Classes where B is better", int((acc_b > acc_a).sum()))
    st.subheader("Per-class accuracy")
    show = per_class_tables if many_classes(len(names)) else per_class_charts
    show(names, (acc_a, acc_b), (res_a, res_b), (name_a, name_b))
else:
    st.warning("One of these runs has no per-class results (result.json).")

st.subheader("Class activation maps")
st.caption(
    "Rows: the runs' models (the first seed's), columns: real test images; under each map the "
    "predicted class and its probability, green when right, red when wrong. Each model reads "
    "the images in its own input space (its set's normalisation and ZCA)."
)
grid, cam_note = None, ""
with widgets.guard("Cannot compute CAMs: "):
    source = ra.source or rb.source
    if not source:
        raise ValueError("the runs do not name their source dataset")
    others = [i for i in ids if i not in (a, b)]
    more = st.multiselect(
        "More runs (rows)",
        others,
        format_func=lambda i: widgets.run_label(by_id[i]),
        **state.bound(K.CMP_MORE, url=False),
    )
    test = cache.cam_inputs(source, cache.model_size(ra))
    test_names = list(test.info.class_names)
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
    with c1:
        rule = st.selectbox("Images", list(PICKS), format_func=PICKS.get, **state.bound(K.CMP_PICK))
    with c2:
        klass = widgets.class_picker("Class", test_names, K.CMP_CLASS, disabled=rule != "class")
    with c3:
        k = st.slider("How many", 1, 12, state.default(K.CMP_K), **state.bound(K.CMP_K))
    with c4:
        draw = widgets.number("Draw", 0, 999, K.CMP_DRAW, help="Seed of the random draw")
    c5, c6 = st.columns(2)
    with c5:
        method = st.selectbox(
            "Method", list(CAM_LABELS), format_func=CAM_LABELS.get, **state.bound(K.CMP_METHOD)
        )
    with c6:
        target = st.segmented_control(
            "Explain",
            ["predicted", "true"],
            default=state.default(K.CMP_TARGET),
            required=True,
            **state.bound(K.CMP_TARGET),
        )
    # The images scored for the pick: all of them; with many classes a seeded draw of at most
    # CAM_POOL, or the chosen class's images.
    many = many_classes(len(test_names))
    one_class = rule == "class" and many
    pool = sample_pool(
        test.labels.numpy(),
        cache.CAM_POOL if many else len(test.labels),  # a few classes: every image, as before
        klass=int(klass) if one_class else None,
        seed=int(draw),
    )
    pool_key = tuple(pool.tolist()) if pool.size < len(test.labels) else None
    pred_a = cache.run_predictions(ra, test, pool_key).predicted
    pred_b = cache.run_predictions(rb, test, pool_key).predicted
    labels = test.labels.numpy()[pool]
    ok_a, ok_b = pred_a == labels, pred_b == labels
    of = f"{len(labels)} real test images"
    if pool_key:  # which of them were scored
        what = f"class {test_names[int(klass)]}" if one_class else "a seeded draw"
        of += f" ({what}, of {len(test.labels)})"
    st.caption(
        f"Of {of}: both right {int((ok_a & ok_b).sum())}, "
        f"only B right {int((ok_b & ~ok_a).sum())}, only A right {int((ok_a & ~ok_b).sum())}, "
        f"both wrong {int((~ok_a & ~ok_b).sum())}."
    )
    idx = pick_images(
        labels,
        pred_a,
        pred_b,
        rule,
        int(k),
        klass=int(klass) if rule == "class" else None,
        seed=int(draw),
    )
    if idx.size == 0:
        st.info(f"No test image is {PICKS[rule]}: choose other images.", icon=":material/info:")
    else:
        rows = [ra, rb, *[by_id[i] for i in more]]
        row_names = [name_a, name_b, *[widgets.run_label(by_id[i]) for i in more]]
        grid = cache.cam_grid(rows, row_names, test, tuple(pool[idx]), method, target == "true")
        cam_note = (
            f"{CAM_LABELS[method]} of the {target} class on {len(idx)} real test image(s), "
            f"{PICKS[rule]}"
        )
        with st.container(key="cam_section"):
            widgets.plot(charts.cam_grid(grid), f"cam_grid_{method}", key="cam_grid")

if grid is not None:
    e1, e2 = st.columns([1, 3])
    with e1:
        scale = st.segmented_control(
            "PNG scale",
            [2, 3],
            format_func=lambda s: f"{s}x",
            default=state.default(K.CMP_SCALE),
            required=True,
            **state.bound(K.CMP_SCALE, url=False),
        )
    with e2:
        st.caption("Figure files for slides (16:9), drawn when you click:")
        cols = st.columns(len(GRID_FORMATS))
        stem = f"cam_grid_{a}_vs_{b}_{method}"
        for col, (fmt, mime) in zip(cols, GRID_FORMATS.items(), strict=True):
            with col:
                st.download_button(
                    fmt.upper(),
                    # Deferred: drawn in a worker thread on click, from plain values only.
                    data=lambda g=grid, f=fmt, s=scale: render_cam_grid(g, f, scale=s),
                    file_name=f"{stem}.{fmt}",
                    mime=mime,
                    key=f"cam_dl_{fmt}",
                    on_click="ignore",
                    icon=":material/download:",
                )

st.subheader("Report")
st.caption(
    "One HTML file with everything above (run configs, per-class table, confusion matrices, "
    "training curves, the CAM grid as shown): it opens offline in any browser. The same as "
    f"`ladd report {a} {b} --out report.html`."
)
root = str(cache.workspace().root)


def report_html(g=grid, note=cam_note) -> bytes:
    """The report as bytes (run on click, in a worker thread: plain values only)."""
    png = render_cam_grid(g, "png", scale=2) if g is not None else None
    text = build_report(root, a, b, cam=None, cam_png=png, cam_note=note)
    return text.encode("utf-8")


st.download_button(
    "Download the report (HTML)",
    data=report_html,
    file_name=f"ladd_report_{a}_vs_{b}.html",
    mime="text/html",
    key="cmp_report",
    on_click="ignore",
    icon=":material/description:",
    type="primary",
)
