"""Sweeps: the grids `ladd sweep` ran (or is running) in this workspace, their cells with status
and accuracy, and a link from any finished cell to its run in Compare runs."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from app import cache, widgets
from app.state import K
from app.text import literal
from ladd.summaries import summarise
from ladd.sweep import list_sweeps, load_sweep

STATUS_ICON = {"done": "✅", "running": "⏳", "pending": "·", "failed": "❌"}

st.title("Sweeps")
ws = cache.workspace()
sweeps = {s.name: s for s in list_sweeps(ws)}
if not sweeps:
    st.info(
        "No sweeps yet. A sweep is a grid of training runs (sets x architectures x modes x "
        "labeler epochs x N/R x seed groups) run by `ladd sweep SPEC.toml`, on this machine or "
        "a Ray cluster; see docs/sweeps.md.",
        icon=":material/info:",
    )
    st.stop()

# Options are plain strings: a bound selectbox keeps its formatted option in the URL.
name = widgets.select("Sweep", list(sweeps), K.SW_NAME, help="Newest first.")
rec = sweeps[name]
counts = rec.counts()
m = st.columns(5)
m[0].metric("Status", literal(rec.status))
m[1].metric("Cells done", f"{counts['done']} / {len(rec.cells)}")
m[2].metric("Running", counts["running"])
m[3].metric("Failed", counts["failed"])
wall = rec.estimate.get("wall_seconds")
m[4].metric("Estimated wall time", f"{wall / 60:.1f} min" if wall else "unknown")
st.progress(counts["done"] / max(1, len(rec.cells)))
st.caption(
    literal(
        f"Executor: {rec.executor}; started "
        f"{dt.datetime.fromtimestamp(rec.created).strftime('%Y-%m-%d %H:%M')}, last update "
        f"{dt.datetime.fromtimestamp(rec.updated).strftime('%H:%M:%S')} on {rec.host}. Estimate "
        f"from the cost model: {rec.estimate.get('cells', 0)} cells on "
        f"{rec.estimate.get('slots', 1)} worker(s), {rec.estimate.get('device', '?')}."
    )
)

if rec.status == "running":

    @st.fragment(run_every=5.0)
    def _watch(name: str, updated: float) -> None:
        """Rerun the page when the driver writes sweep.json again."""
        if load_sweep(ws, name).updated != updated:
            st.rerun()

    _watch(name, rec.updated)


def _pct(v: float | None) -> float | None:
    return None if v is None else round(100 * v, 2)


rows = [
    {
        "status": f"{STATUS_ICON.get(c.status, '')} {c.status}",
        "arch": c.arch,
        "mode": c.mode,
        "labeler epoch": c.labeler_epoch,
        "N": c.n,
        "R": c.r,
        "seeds": ",".join(str(s) for s in c.seeds),
        "accuracy": _pct(c.accuracy_mean),
        "± std": _pct(c.accuracy_std),
        "seconds": None if c.seconds is None else round(c.seconds, 1),
        "estimate s": None if c.estimate_seconds is None else round(c.estimate_seconds, 1),
        "run": c.run_id,
        "set": cache.rel(c.set),
        "error": c.error or "",
    }
    for c in rec.cells
]
df = pd.DataFrame(rows)

done = df.dropna(subset=["accuracy"])
if not done.empty:
    st.subheader("Accuracy by architecture and mode")
    grid = done.pivot_table(index="arch", columns="mode", values="accuracy", aggfunc="mean")
    st.dataframe(grid.round(2))

st.subheader("Cells")
st.dataframe(df, hide_index=True)
widgets.csv_download(df, f"sweep_{name}", key="sw_csv")

finished = {f"#{c.run_id} {c.label}": c for c in rec.cells if c.run_id is not None}
choice = widgets.select(
    "Open a cell's run", list(finished), K.SW_CELL, empty="No cell of this sweep has finished yet."
)
if choice is not None:
    cell = finished[choice]
    other = rec.counterpart(cell.key) if cell.mode != "baseline" else None
    with widgets.guard("Cannot open this run: "):  # e.g. deleted since the sweep ran
        b_run = summarise(ws.db.get_run(cell.run_id))
        label = f"Compare run #{cell.run_id}"
        a_run = None
        if other is not None and other.run_id is not None:
            a_run = summarise(ws.db.get_run(other.run_id))
            label += f" with its baseline, run #{other.run_id}"
        params = widgets.compare_params(b_run, a_run)
        st.page_link(
            "../pages/5_compare.py", label=label, icon=":material/compare:", query_params=params
        )
if counts["failed"]:
    st.warning(
        f"{counts['failed']} cell(s) failed (their error is in the table); rerunning the sweep "
        "runs them again and skips every finished cell.",
        icon=":material/warning:",
    )
