"""Where cells run: the per-cell compute (worker side) and the executors the driver talks to.

A worker only computes: `compute_cell` executes a cell's plan (ladd.plan.TrainPlan, made on the
driver) with `ladd.deploy.execute` -- what `ladd train` executes -- on the prepared set and the
real test split, and returns the DeployResult plus the models' CPU state dicts (a CellOutput). It writes nothing but, when asked (the serial
executor and the tasks of a private local Ray instance ask), the training state it resumes from
after a kill. An Executor runs such calls
somewhere: `SerialExecutor` in this process, one at a time; `ladd.sweep.ray_backend.RayExecutor`
as Ray tasks.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch

from ladd.data.imageset import ImageSet
from ladd.deploy import DeployResult, execute
from ladd.plan import TrainPlan
from ladd.progress import ProgressFn
from ladd.sets.augmented import TrainableSet
from ladd.sweep.spec import Cell, SweepSpec
from ladd.training import TrainCheckpoint

__all__ = [
    "CellOutput",
    "ComputeFn",
    "Executor",
    "PlannedCell",
    "SerialExecutor",
    "compute_cell",
]


@dataclass
class CellOutput:
    """What a worker sends back: the result (models left out) and the weights as CPU tensors."""

    key: str
    result: DeployResult  # .models == []
    specs: list[dict[str, Any]]  # ModelSpec.to_dict() per seed
    states: list[dict[str, torch.Tensor]]  # state_dict per seed, on the CPU
    seconds: float  # wall time of the whole cell on the worker
    worker: str  # host:pid
    device: str
    resumed: bool = False  # training went on from a saved state of an earlier, killed attempt

    def models(self) -> list[torch.nn.Module]:
        """The trained models, rebuilt from specs and weights (eval mode, CPU)."""
        from ladd.models import create_from_spec

        out = []
        for spec, state in zip(self.specs, self.states, strict=True):
            model = create_from_spec(spec)
            model.load_state_dict(state)
            out.append(model.eval())
        return out


ComputeFn = Callable[..., CellOutput]


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with `n` torch threads (None: unchanged), restoring the count after."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class PlannedCell:
    """A cell of the grid with the plan that answers it (made on the driver: its key is the
    run's identity, the same as `ladd train`'s for the same run)."""

    cell: Cell
    plan: TrainPlan

    @property
    def key(self) -> str:
        return self.plan.key

    @property
    def label(self) -> str:
        return self.cell.label


def compute_cell(
    plan: TrainPlan,
    dataset: TrainableSet,
    test_set: ImageSet,
    *,
    threads: int | None = None,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_seconds: float = 60.0,
) -> CellOutput:
    """Execute one cell's plan (what `ladd train` executes) and return it.

    `threads` pins torch's intra-op threads (on the CPU the result then depends only on the
    seeds: the serial and the Ray executor give the same accuracies). `checkpoint_dir`: the
    training state is saved there every `checkpoint_seconds` (the file `ladd train` would write
    for the same plan), so a cell killed mid-training resumes where it stopped when the sweep
    runs again, and ends with the weights an uninterrupted run would have; the file is removed
    once the cell is done. Without it the cell writes nothing.
    """
    t0 = time.perf_counter()
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = TrainCheckpoint(plan.checkpoint(checkpoint_dir), plan.key, checkpoint_seconds)
    resumed = ckpt is not None and ckpt.saved_meta() is not None
    with _torch_threads(threads):
        res = execute(plan, dataset, test_set, progress=progress, stop=stop, checkpoint=ckpt)
        where = _device_name(plan.device)
    if ckpt is not None:
        ckpt.remove()
    specs = [m.spec.to_dict() for m in res.models]
    states = [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in res.models]
    return CellOutput(
        key=plan.key,
        result=replace(res, models=[]),
        specs=specs,
        states=states,
        seconds=time.perf_counter() - t0,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        device=where,
        resumed=resumed,
    )


def _device_name(device: str) -> str:
    from ladd.device import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({torch.get_num_threads()} threads)"


# ---------------------------------------------------------------------------------------------
# Executors


class Executor(Protocol):
    """Runs cells somewhere; the driver loop only ever talks to this."""

    name: str

    def start(self) -> None: ...
    def slots(self) -> int: ...  # how many cells may run at once now
    def device_kind(self) -> str: ...  # "cpu" | "cuda": where cells will train
    def share(self, obj: Any) -> Any: ...  # make a prepared input available to workers
    def submit(self, cell: PlannedCell, dataset: Any, test_set: Any) -> Any: ...  # -> a handle
    def wait(self, timeout: float) -> list[tuple[Any, CellOutput | BaseException]]: ...
    def cancel(self) -> None: ...  # give up everything in flight
    def close(self) -> None: ...


class SerialExecutor:
    """One cell at a time in this process, on `spec.device` (the loop `ladd evaluate` runs).

    `wait` runs the oldest submitted cell to the end; its per-epoch progress goes to
    `progress` and `stop` ends it early (the cell goes back to pending). With `checkpoint_dir`
    (the runner passes the workspace's) each cell's training state is saved there as it trains,
    so a sweep killed mid-cell resumes that cell instead of starting it over.
    """

    name = "serial"

    def __init__(
        self,
        spec: SweepSpec,
        *,
        compute: ComputeFn = compute_cell,
        progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        self.spec = spec
        self.compute = compute
        self.progress = progress
        self.stop = stop
        self.checkpoint_dir = checkpoint_dir
        self._queue: deque[tuple[int, PlannedCell, Any, Any]] = deque()
        self._next = 0

    def start(self) -> None:
        pass

    def slots(self) -> int:
        return 1

    def device_kind(self) -> str:
        from ladd.device import resolve_device

        return resolve_device(self.spec.device).type

    def share(self, obj: Any) -> Any:
        return obj

    def submit(self, cell: PlannedCell, dataset: Any, test_set: Any) -> int:
        self._next += 1
        self._queue.append((self._next, cell, dataset, test_set))
        return self._next

    def wait(self, timeout: float) -> list[tuple[Any, CellOutput | BaseException]]:
        if not self._queue:
            return []
        handle, cell, dataset, test_set = self._queue.popleft()
        try:
            out = self.compute(
                cell.plan,
                dataset,
                test_set,
                threads=self.spec.threads,
                progress=self.progress,
                stop=self.stop,
                checkpoint_dir=self.checkpoint_dir,
            )
        except Exception as err:  # a failed cell is reported, the sweep goes on
            return [(handle, err)]
        return [(handle, out)]

    def cancel(self) -> None:
        self._queue.clear()

    def close(self) -> None:
        self._queue.clear()
