"""The page tests' shared fixture: the small offline demo in a fresh workspace."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The small demo in a fresh workspace; the app reads it through LADD_WORKSPACE."""
    from ladd.demo import build_demo

    root = tmp_path_factory.mktemp("workspace")
    mp = pytest.MonkeyPatch()
    mp.setenv("LADD_WORKSPACE", str(root))
    mp.delenv("LADD_CACHE_DIR", raising=False)
    mp.setenv("LADD_ALLOWED_DIRS", "")
    t0 = time.perf_counter()
    arts = build_demo(root, source="shapes", size="small", device="cpu")
    print(f"\nsmall demo built in {time.perf_counter() - t0:.1f} s")
    yield arts
    mp.undo()
