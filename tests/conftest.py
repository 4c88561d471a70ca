"""Shared test fixtures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Compute-heavy modules run on one thread: on a shared 2-core runner two OpenMP threads
    under contention were measured ~20x slower than one."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@dataclass(frozen=True)
class SmallDemo:
    """The small offline demo built once per test run, and the progress it reported."""

    root: Path
    arts: Any  # ladd.demo.DemoArtifacts
    events: tuple[Any, ...]  # ladd.progress.ProgressEvent, in the order reported


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> SmallDemo:
    """ONE build of the small `shapes` demo per test run, shared by tests/test_demo.py and the
    page tests (tests/pages/conftest.py points the app at it). Tests that read it must not
    change what it built; a test that needs another build makes its own in `tmp_path`."""
    from ladd.demo import build_demo

    root = tmp_path_factory.mktemp("demo_workspace")
    events: list[Any] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LADD_CACHE_DIR", raising=False)  # decoded data goes to the workspace cache
        arts = build_demo(root, source="shapes", size="small", progress=events.append)
    return SmallDemo(root=root, arts=arts, events=tuple(events))
