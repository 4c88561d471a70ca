"""The page tests' shared fixtures: the app pointed at the session's small demo workspace, or
(`thousand`) at a synthetic 1000-class one."""

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


@pytest.fixture(scope="session")
def thousand_build(tmp_path_factory):
    """The synthetic 1000-class workspace (tests/pages/thousand.py), built once per run."""
    from thousand import build_thousand

    root = tmp_path_factory.mktemp("thousand_workspace")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LADD_CACHE_DIR", raising=False)  # decoded images go to the workspace cache
        return build_thousand(root)


@pytest.fixture
def thousand(thousand_build, monkeypatch):
    """The app pointed at the 1000-class workspace for one test (then back to the demo's)."""
    monkeypatch.setenv("LADD_WORKSPACE", str(thousand_build.root))
    monkeypatch.delenv("LADD_CACHE_DIR", raising=False)
    monkeypatch.setenv("LADD_ALLOWED_DIRS", "")
    return thousand_build
