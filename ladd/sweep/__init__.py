"""Sweeps: grids of `ladd train` runs, serially or as Ray tasks, resumable, into the runs database.

    from ladd.sweep import load_spec, plan_sweep, run_sweep, TextProgress
    spec = load_spec("cifar10-cross-arch.toml")
    print(plan_sweep(spec, ws).summary())                  # the cost before it starts
    run_sweep(spec, ws, executor="ray", on_event=TextProgress(sys.stderr))

`spec` the grid and its cells (stable keys), `stores` the sets paired with soft-label stores
(mode "store"), `cost` the cost model, `record` the sweep record
and the runs it lands in, `executor` the per-cell compute and the serial executor, `runner` the
driver loop, `events` live progress, `ray_backend` the Ray executor -- the only module that
imports ray, and only when a sweep runs on it: `import ladd.sweep` works without ray installed.
"""

from ladd.sweep.cost import CellEstimate, SweepEstimate, estimate_cell, throughput
from ladd.sweep.events import SweepEvent, TextProgress, render_event
from ladd.sweep.executor import CellOutput, Executor, SerialExecutor, compute_cell
from ladd.sweep.ray_backend import ray_available
from ladd.sweep.record import (
    CellRecord,
    SweepBusy,
    SweepRecord,
    driver_lock,
    list_sweeps,
    load_sweep,
    recorded_runs,
)
from ladd.sweep.runner import SweepPlan, SweepResult, plan_sweep, run_sweep
from ladd.sweep.spec import Cell, CellInput, SweepSpec, expand, load_spec, seed_groups
from ladd.sweep.stores import StorePairing

__all__ = [
    "Cell",
    "CellEstimate",
    "CellInput",
    "CellOutput",
    "CellRecord",
    "Executor",
    "SerialExecutor",
    "StorePairing",
    "SweepBusy",
    "SweepEstimate",
    "SweepEvent",
    "SweepPlan",
    "SweepRecord",
    "SweepResult",
    "SweepSpec",
    "TextProgress",
    "compute_cell",
    "driver_lock",
    "estimate_cell",
    "expand",
    "list_sweeps",
    "load_spec",
    "load_sweep",
    "plan_sweep",
    "ray_available",
    "recorded_runs",
    "render_event",
    "run_sweep",
    "seed_groups",
    "throughput",
]
