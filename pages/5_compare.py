"""Compare two runs (e.g. baseline vs LADD): per-class accuracy, confusion matrices, and class
activation maps of both models on the same real test images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import cache, charts, state, widgets
from app.state import K
from ladd.cam import CAM_LABELS, explain, overlay

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
names = res_a.get("class_names") or res_b.get("class_names") or []
name_a, name_b = f"A #{a} {ra.label or ''}".strip(), f"B #{b} {rb.label or ''}".strip()

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
else:
    st.warning("One of these runs has no per-class results (result.json).")

st.subheader("Class activation maps")
with widgets.guard("Cannot compute CAMs: "):
    source = ra.source or rb.source
    if not source:
        raise ValueError("the runs do not name their source dataset")
    test = cache.cam_inputs(source)
    test_names = list(test.info.class_names)
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        klass = st.selectbox(
            "Class",
            list(range(len(test_names))),
            format_func=lambda k: test_names[k],
            **state.bound(K.CMP_CLASS),
        )
    members = np.flatnonzero(test.labels.numpy() == klass)
    with c2:
        pick = widgets.image_index(len(members), K.CMP_IMAGE)
    with c3:
        method = st.selectbox(
            "Method", list(CAM_LABELS), format_func=CAM_LABELS.get, **state.bound(K.CMP_METHOD)
        )
    with c4:
        target = st.segmented_control(
            "Explain",
            ["predicted", "true"],
            default=state.default(K.CMP_TARGET),
            required=True,
            **state.bound(K.CMP_TARGET),
        )
    idx = int(members[pick])
    shown = test.images[idx].permute(1, 2, 0).numpy()  # (H, W, 3) uint8
    with st.container(key="cam_section"):
        cols = st.columns(2)
        for col, run, tag in ((cols[0], ra, "A"), (cols[1], rb, "B")):
            # The model's own input space (its set's mean/std and ZCA), as evaluation saw it.
            x = cache.run_inputs(run, test)[idx : idx + 1]  # (1, C, H, W)
            model_path = run.model_files[0]
            model = cache.load_model(model_path)
            with cache.model_lock(model_path):
                res = explain(model, x, None if target == "predicted" else klass, method)
            pred, prob = int(res.predicted[0]), float(res.probability[0])
            title = f"{tag} #{run.id}: {test_names[pred]} ({prob:.0%})"
            with col:
                widgets.plot(
                    charts.cam_panel([shown, overlay(shown, res.maps[0])], ["input", title]),
                    f"cam_{tag}_{CAM_LABELS[method]}",
                    key=f"cam_{tag}",
                )
                st.caption(
                    f"{CAM_LABELS[method]} of {name_a if tag == 'A' else name_b}: predicted "
                    f"**{test_names[pred]}** with probability {prob:.2f} (true: {test_names[klass]})"
                )
