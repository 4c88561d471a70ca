"""Results: the study's records (docs/results/*.json, and the workspace's records/ folder) as one
filterable table, baseline and LADD side by side, with CSV export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, records, state, widgets
from app.state import K
from app.text import literal

st.title("Results")
st.caption(
    "One row per run group of the CIFAR-10 study (`scripts/study.py`; see docs/results.md for "
    "what each part asks): accuracy mean and std over seeds. `cpu` rows are a reduced profile "
    "(narrow models, few epochs), `gpu` rows the paper's protocol."
)

folders = records.record_folders()
df, skipped = records.read_records(folders)
if skipped:
    shown = literal(", ".join(skipped[:5]))
    st.caption(f"Skipped {len(skipped)} file(s) that are not records: {shown}")
if df.empty:
    where = literal(", ".join(str(p) for p in folders.values()))
    st.info(f"No result records found in {where}.", icon=":material/info:")
    st.stop()

FILTER_KEYS = {
    "where": K.RS_SOURCE,
    "part": K.RS_PART,
    "profile": K.RS_PROFILE,
    "distiller": K.RS_DISTILLER,
    "ipc": K.RS_IPC,
    "arch": K.RS_ARCH,
    "mode": K.RS_MODE,
    "protocol": K.RS_PROTOCOL,
}
present = [c for c in FILTER_KEYS if c in df.columns and df[c].notna().any()]
cols = st.columns(len(present))
shown = df
for col, name in zip(cols, present, strict=True):
    options = sorted(df[name].dropna().unique().tolist(), key=str)
    with col:
        picked = st.multiselect(
            name, options, placeholder="all", **state.bound(FILTER_KEYS[name], url=False)
        )
    if picked:
        shown = shown[shown[name].isin(picked)]

view = shown.copy()
for c in ("mean", "std"):
    if c in view:
        view[c] = (100 * view[c]).round(2)
if "per_seed" in view:  # seed 0, 1, ...: what part 7 pairs codecs by
    view["per_seed"] = view["per_seed"].map(
        lambda v: ", ".join(f"{100 * a:.2f}" for a in v) if isinstance(v, list) else ""
    )
st.dataframe(
    view,
    hide_index=True,
    column_config={
        "mean": st.column_config.NumberColumn("mean (%)", format="%.2f"),
        "std": st.column_config.NumberColumn("std (%)", format="%.2f"),
        "per_seed": st.column_config.TextColumn("per seed (%)"),
        "seconds": st.column_config.NumberColumn("seconds", format="%.0f"),
    },
    key="rs_table",
)
st.caption(f"{len(shown)} of {len(df)} records")
widgets.csv_download(shown, "ladd_results", key="rs_csv")

st.subheader("Baseline vs LADD")
gain = records.ladd_gain(shown)
if gain.empty:
    st.caption("No baseline and LADD (N = 5, R = 0.625) records with the same settings here.")
else:
    table = gain.copy()
    percent = [c for c in table.columns if c.startswith(("mean", "std", "LADD -"))]
    for c in percent:
        table[c] = (100 * pd.to_numeric(table[c])).round(2)
    table = table.rename(columns={c: f"{c} (%)" for c in percent})
    st.dataframe(table, hide_index=True, key="rs_gain")
    widgets.csv_download(table, "ladd_vs_baseline", key="rs_gain_csv")

points = records.codec_points(shown)
if points:
    from ladd.codecs.choice import choose_default

    st.subheader("Accuracy against label bytes (part 7)")
    st.plotly_chart(
        charts.codec_frontier(points),
        key="rs_frontier",
        config=charts.export_config("ladd_codec_frontier"),
    )
    pick = choose_default(points)
    if pick is None:
        st.caption("The default codec needs float32 and another codec on each distiller shown.")
    else:
        st.caption(
            f"The paired rule of ladd.codecs.choice (fewest label bytes whose accuracy "
            f"difference from float32, paired by seed, has a 95 % t-interval reaching 0, pooled "
            f"and on every distiller) picks **{pick.codec}** here: "
            f"{pick.label_bytes_per_image:,.0f} label bytes per image against float32's "
            f"{pick.reference_bytes_per_image:,.0f} ({100 * pick.saving:.0f} % fewer)."
        )

strategies = records.strategy_points(shown)
if strategies:
    st.subheader("Label strategies at equal bytes (part 8)")
    st.plotly_chart(
        charts.strategy_frontier(strategies),
        key="rs_strategies",
        config=charts.export_config("ladd_strategy_frontier"),
    )
    pairs = records.strategy_pairs(strategies)
    if pairs.empty:
        st.caption("No LADD default (N 5, R 0.625, default codec) to pair the strategies with.")
    else:
        st.caption(
            "Each strategy against LADD's default on the same distiller, seed by seed: it "
            "**beats** the default when it stores no more bytes per image and its paired mean "
            "is above 0 by more than two standard errors (ladd.strategies.compare)."
        )
        st.dataframe(pairs.round(2), hide_index=True, key="rs_strategy_pairs")
        widgets.csv_download(pairs, "ladd_strategies_vs_default", key="rs_strategy_csv")
