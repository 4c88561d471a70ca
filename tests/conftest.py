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


@pytest.fixture(scope="session")
def ray_instance(tmp_path_factory):
    """ONE local Ray instance per test run (2 CPUs, no GPU, no dashboard), shared by the sweep
    tests that run on Ray and the GPU sweep script's rehearsal; shut down when the run ends.
    An executor that finds Ray up uses it and leaves it up (tasks are told they see this
    machine's files with RayExecutor's local_files).

    Ray 2.60 guards a local instance with a token under ~/.ray and reads where that is once,
    when the instance starts: it starts under a HOME of its own, set before ray is imported,
    and the suite's HOME comes back at once."""
    home = tmp_path_factory.mktemp("ray-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        ray = pytest.importorskip("ray")
        from ladd.sweep.ray_backend import init_ray, short_temp_dir

        temp = short_temp_dir()
        init_ray(num_cpus=2, num_gpus=0, temp_dir=temp, log_to_driver=False)
    try:
        yield ray
    finally:
        import shutil

        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
