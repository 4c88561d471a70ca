"""LADD Studio dashboard entry: `streamlit run app/main.py` from the repository root.

Sets the page up, lists the pages (they live in the top-level pages/ folder, so they are named
explicitly) and draws the sidebar every page shares: workspace, device, running jobs, and the
figure export format.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts app/ on sys.path; the pages import `app.*`, so add the repository root.
# (`ladd` itself is installed with `pip install -e .`.)
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from app import widgets  # noqa: E402
from app.paths import workspace_root  # noqa: E402
from ladd.compile_cache import compile_cache_dir, use_compile_cache  # noqa: E402
from ladd.store import Workspace  # noqa: E402

# The dashboard owns its process: torch.compile's kernels go to the workspace's compile cache
# (a read-only workspace is still shown: then torch's own default serves).
try:
    use_compile_cache(compile_cache_dir(Path(Workspace(workspace_root()).cache_dir) / "compile"))
except OSError:
    pass

st.set_page_config(
    page_title="LADD Studio",
    page_icon=str(_ROOT / "assets" / "icon.png"),
    layout="wide",
    initial_sidebar_state="expanded",
)
widgets.inject_css(_ROOT / "assets" / "style.css")

PAGES = [
    st.Page(
        "../pages/home.py", title="Home", icon=":material/home:", url_path="home", default=True
    ),
    st.Page(
        "../pages/1_distilled.py",
        title="Distilled images",
        icon=":material/grid_view:",
        url_path="distilled",
    ),
    st.Page(
        "../pages/2_subsampling.py",
        title="Sub-sampling",
        icon=":material/crop:",
        url_path="subsampling",
    ),
    st.Page(
        "../pages/3_soft_labels.py",
        title="Soft labels",
        icon=":material/bar_chart:",
        url_path="soft-labels",
    ),
    st.Page(
        "../pages/4_training.py",
        title="Deployment training",
        icon=":material/model_training:",
        url_path="training",
    ),
    st.Page(
        "../pages/5_compare.py", title="Compare runs", icon=":material/compare:", url_path="compare"
    ),
    st.Page("../pages/6_sweeps.py", title="Sweeps", icon=":material/grid_on:", url_path="sweeps"),
    st.Page(
        "../pages/7_results.py", title="Results", icon=":material/table_view:", url_path="results"
    ),
    st.Page("../pages/8_score.py", title="Score", icon=":material/leaderboard:", url_path="score"),
]

page = st.navigation(PAGES)
widgets.sidebar()
page.run()
