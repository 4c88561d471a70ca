"""The page tests' shared fixture: the app pointed at the session's small demo workspace."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")


@pytest.fixture(scope="session")
def demo(small_demo):
    """The small demo (built once per run, tests/conftest.py); the app reads it through
    LADD_WORKSPACE."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LADD_WORKSPACE", str(small_demo.root))
    mp.delenv("LADD_CACHE_DIR", raising=False)
    mp.setenv("LADD_ALLOWED_DIRS", "")
    yield small_demo.arts
    mp.undo()
