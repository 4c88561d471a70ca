"""The grid the sweep tests share (not a test module: no test_ prefix).

Random real `shapes` IPC 2 at 16 px, a ConvNet-D3 labeler trained for one epoch, ConvNet-D2 and
ConvNet-D3 at width 8 x baseline and LADD (N 3, R 0.5), one seed per cell, 4 epochs, one torch
thread per cell (so that on the CPU a cell's result depends on its seeds only, whichever
process computes it). The inputs and the serial run of it are tests/sweep/conftest.py's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ladd.store import Workspace
from ladd.sweep import SweepSpec

ROOT = Path(__file__).resolve().parents[2]


def grid(inputs: Path, name: str = "grid", **changes) -> SweepSpec:
    spec = SweepSpec(
        name=name,
        sets=(str(inputs / "rr"),),
        source="shapes",
        archs=("convnet_d2", "convnet_d3"),
        modes=("baseline", "ladd"),
        labeler=str(inputs / "labeler"),
        labeler_epochs=(1,),
        nr=((3, 0.5),),
        seed_groups=((0,),),
        epochs=4,
        width=8,
        device="cpu",
        threads=1,
        cpus_per_cell=1,
    )
    return replace(spec, **changes)


def train_runs(ws: Workspace) -> list:
    return list(ws.db.list_runs("train"))


def by_plan_key(ws: Workspace) -> dict:
    """The workspace's train runs by their plan's key (the run identity)."""
    return {r.config["plan"]["key"]: r for r in train_runs(ws)}
