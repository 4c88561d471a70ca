"""Where cells run: the per-cell compute (worker side) and the executors the driver talks to.

A worker only computes: `compute_cell` runs `ladd.deploy.train_and_evaluate` -- the function
`ladd train` runs -- on a prepared set and the real test split, and returns the DeployResult plus
the models' CPU state dicts (a CellOutput). It writes nothing but, when asked (the serial
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

from ladd.deploy import DeployResult, resolve_config, train_and_evaluate
from ladd.progress import ProgressFn
from ladd.sweep.spec import Cell, SweepSpec
from ladd.training import TrainCheckpoint, checkpoint_path, train_key

__all__ = ["CellOutput", "ComputeFn", "Executor", "SerialExecutor", "compute_cell"]


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


def compute_cell(
    cell: Cell,
    dataset: Any,
    test_set: Any,
    *,
    device: str = "auto",
    threads: int | None = None,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_seconds: float = 60.0,
) -> CellOutput:
    """Train and test one cell (what `ladd train` computes) and return it.

    `threads` pins torch's intra-op threads (on the CPU the result then depends only on the
    seeds: the serial and the Ray executor give the same accuracies). `checkpoint_dir`: the
    training state is saved there every `checkpoint_seconds` (the file `ladd train` would write
    for the same run), so a cell killed mid-training resumes where it stopped when the sweep
    runs again, and ends with the weights an uninterrupted run would have; the file is removed
    once the cell is done. Without it the cell writes nothing.
    """
    t0 = time.perf_counter()
    cfg, ckpt = cell.config, None
    if checkpoint_dir is not None:
        cfg = resolve_config(dataset, cfg, device)  # the key names the settled run
        key = train_key(dataset, cfg)
        ckpt = TrainCheckpoint(checkpoint_path(checkpoint_dir, key), key, checkpoint_seconds)
    resumed = ckpt is not None and ckpt.saved_meta() is not None
    with _torch_threads(threads):
        res = train_and_evaluate(
            dataset, test_set, cfg, device=device, progress=progress, stop=stop, checkpoint=ckpt
        )
        where = _device_name(device)
    if ckpt is not None:
        ckpt.remove()
    specs = [m.spec.to_dict() for m in res.models]
    states = [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in res.models]
    return CellOutput(
        key=cell.key,
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
    def submit(self, cell: Cell, dataset: Any, test_set: Any) -> Any: ...  # -> a handle
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
        self._queue: deque[tuple[int, Cell, Any, Any]] = deque()
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

    def submit(self, cell: Cell, dataset: Any, test_set: Any) -> int:
        self._next += 1
        self._queue.append((self._next, cell, dataset, test_set))
        return self._next

    def wait(self, timeout: float) -> list[tuple[Any, CellOutput | BaseException]]:
        if not self._queue:
            return []
        handle, cell, dataset, test_set = self._queue.popleft()
        try:
            out = self.compute(
                cell,
                dataset,
                test_set,
                device=self.spec.device,
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
