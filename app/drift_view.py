"""The drift views the soft-labels and sub-sampling pages share (ladd.drift): a heat grid of one
image's crops per labeler epoch, and over the whole set a histogram and a per-epoch curve."""

from __future__ import annotations

import streamlit as st

from app import cache, charts, widgets
from ladd.drift import DRIFT_JS


def rule_caption() -> None:
    st.caption(
        "Drift: each crop's label against the labeler's label of the whole image, as the "
        "Jensen-Shannon divergence in nats (0 to ln 2 = 0.69; HALD's crop-consistency measure). "
        f"A crop is **drifted** (×) when its top class is not the image's class and its "
        f"divergence is at least {DRIFT_JS:g} nats: labelled as something else, and not just "
        "because the labeler sees the whole image so."
    )


def image_grids(path: str, picked: dict[int, str], n: int, r: float, index: int, tag: str) -> None:
    """One heat grid per checkpoint of image `index`'s crops (at most 4 a row)."""
    drift = cache.image_drift(path, picked, n, r, index)
    cols = st.columns(min(len(picked), 4))
    for i, (epoch, d) in enumerate(sorted(drift.items())):
        flagged = int(d["drifted"].sum())
        with cols[i % len(cols)]:
            widgets.plot(
                charts.drift_heatmap(
                    d["js"], d["drifted"], f"epoch {epoch}: JS to the image ({flagged} drifted)"
                ),
                f"drift_n{n}_epoch{epoch}",
                key=f"{tag}_drift_{epoch}",
            )


def set_views(path: str, picked: dict[int, str], n: int, r: float, tag: str) -> None:
    """Over the whole set: the histogram of every crop's JS per checkpoint and the drifted
    share per epoch."""
    rows = cache.drift_by_epoch(path, picked, n, r)
    from ladd.drift import JS_MAX

    bins = len(rows[0]["histogram"]) if rows else 20
    edges = [JS_MAX * i / bins for i in range(bins + 1)]
    widgets.plot(
        charts.drift_histogram(
            {f"epoch {row['epoch']}": row["histogram"] for row in rows}, edges, DRIFT_JS
        ),
        f"drift_histogram_n{n}",
        key=f"{tag}_drift_hist",
    )
    if len(rows) > 1:
        widgets.plot(
            charts.drift_curve(
                [row["epoch"] for row in rows],
                [row["drifted_fraction"] for row in rows],
                [row["mean_js"] for row in rows],
            ),
            "drift_by_epoch",
            key=f"{tag}_drift_curve",
        )
    import pandas as pd

    df = pd.DataFrame([{k: v for k, v in row.items() if k != "histogram"} for row in rows])
    widgets.table(df.round(4), f"drift_n{n}", key=f"{tag}_drift_csv")
