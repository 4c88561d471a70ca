"""Fixtures of the sweep tests: the grid's inputs and one serial run of it (tests/sweep/
sweep_grid.py says what the grid is)."""

from __future__ import annotations

import pytest
from sweep_grid import grid

from ladd.store import Workspace
from ladd.sweep import SweepEvent, run_sweep


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    """A random-real shapes set (IPC 2, 16 px) and a 2-checkpoint labeler folder."""
    import torch

    from ladd.labeler import LabelerConfig, train_labeler
    from ladd.sets import random_real

    root = tmp_path_factory.mktemp("sweep-inputs")
    random_real("shapes", 2, seed=0, image_size=16).save_mtt(root / "rr")
    cfg = LabelerConfig(
        epochs=2, save_at=(1, 2), limit_per_class=20, image_size=16, model_options={"width": 8}
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_labeler("shapes", cfg, root / "labeler", device="cpu")
    finally:
        torch.set_num_threads(threads)
    return root


@pytest.fixture(scope="session")
def serial_run(inputs, tmp_path_factory):
    """The grid run serially once (the reference for the Ray run) and its events."""
    ws = Workspace(tmp_path_factory.mktemp("ws-serial"))
    events: list[SweepEvent] = []
    res = run_sweep(grid(inputs), ws, executor="serial", on_event=events.append)
    return ws, res, events
