"""Score: how good is a set, and how much of it is its labels (`ladd score`): each label variant
beside a random-real twin, the label bytes, and DD-Ranking's scores."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import cache, charts, widgets
from app.state import K
from ladd.score import score_metrics, score_rows

st.title("Score")
st.caption(
    "A set trained under its own labels, hard labels only, hard labels without augmentation "
    "and LADD's dense labels, each beside a random-real set of the same IPC drawn and trained "
    "by the same pipeline. Last-epoch accuracy, mean ± std over seeds; nothing is chosen on "
    "the test set. HLR, IOR, LRS and ARS as DD-Ranking defines them: its code puts percentage "
    "points in the exponent of LRS/ARS, so both that and the fraction form are listed."
)

scores = cache.score_results()
if not scores:
    st.info(
        "No scores yet: run `ladd score SET --source NAME` (docs/results holds the CIFAR-10 "
        "ones when present).",
        icon=":material/info:",
    )
    st.stop()

pick = widgets.select("Score", list(scores), K.SC_PICK)
if pick is not None:
    d = scores[pick]
    rows = score_rows(d)
    spec = d.get("spec", {})
    st.text(
        f"set: {spec.get('set_path')}\n"
        f"soft labels: {spec.get('soft_labels') or 'none'}\n"
        f"shipped labels: {d.get('shipped')}\n"
        f"protocol: {d.get('protocol')}, {spec.get('arch')} {spec.get('model_options') or ''}, "
        f"{spec.get('epochs')} epochs, seeds {spec.get('seeds')}"
    )
    left, right = st.columns([3, 2])
    with left:
        widgets.plot(charts.score_bars(rows), "score_variants", key="sc_bars")
    with right:
        widgets.plot(charts.score_bytes(rows), "score_bytes", key="sc_bytes")
    table = pd.DataFrame(rows).drop(columns=["variant"])
    widgets.table(table.round(3), "score_table", key="sc_table")
    metrics = pd.DataFrame(score_metrics(d))
    if not metrics.empty:
        st.subheader("DD-Ranking's scores")
        widgets.table(metrics.drop(columns=["key"]).round(4), "score_metrics", key="sc_metrics")
    full = d.get("full") or {}
    if full:
        st.text(f"full-data accuracy: {100 * full['mean']:.1f} % ({full.get('note', '')})")
    notes = d.get("notes") or []
    if notes:
        st.text("\n".join(str(n) for n in notes))
