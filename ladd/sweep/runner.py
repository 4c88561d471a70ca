"""Running a sweep: the driver loop that prepares inputs, hands cells to an executor and records.

The driver prepares each distinct input once (loads the set, label-augments it with the labeler
checkpoint at N x R, loads the test split), hands it to the executor (in-process for the serial
executor, Ray's object store for Ray), and turns each returned CellOutput into a `train` run of
the runs database and a cell of sweep.json. Workers only compute (ladd.sweep.executor), so the
driver is the workspace's one writer of runs and records. One exception: the
serial executor keeps each cell's training state in the workspace's checkpoint folder (the file
`ladd train` keeps for the same run), so a sweep killed mid-cell resumes that cell; so do the
tasks of a private local Ray instance. A cluster's workers, which may share no filesystem with
the driver, start a killed cell over.

Artifacts travel back through the executor (Ray's object store), not a shared filesystem, so a
cluster needs no shared path and the workspace never sees a half-written file from a worker
that died; the cost is one copy of the weights per cell (measured in docs/sweeps.md).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ladd.pipeline import record_train
from ladd.progress import ProgressEvent, ProgressFn
from ladd.store import Workspace
from ladd.sweep.cost import CellEstimate, SweepEstimate, estimate_cell
from ladd.sweep.events import SweepEvent
from ladd.sweep.executor import (
    CellOutput,
    ComputeFn,
    Executor,
    PlannedCell,
    SerialExecutor,
    compute_cell,
)
from ladd.sweep.inputs import SweepInputs
from ladd.sweep.record import (
    CellRecord,
    SweepRecord,
    driver_lock,
    load_sweep,
    recorded_runs,
)
from ladd.sweep.spec import CellInput, SweepSpec, expand
from ladd.training import TrainingStopped

__all__ = ["SweepPlan", "SweepResult", "plan_sweep", "run_sweep"]


# ---------------------------------------------------------------------------------------------
# Planning


@dataclass
class SweepPlan:
    """A sweep before it runs: its cells, which are recorded already, and what the rest costs."""

    spec: SweepSpec
    cells: list[PlannedCell]
    recorded: dict[str, int]  # plan key -> run id of its finished run
    shapes: dict[str, tuple[int, int, int]]  # plan key -> (images, image size, N) of its input
    estimates: dict[str, CellEstimate]
    estimate: SweepEstimate
    warnings: tuple[str, ...] = ()  # the sets' warnings, "path: warning" (ladd.sets.inputs)

    @property
    def todo(self) -> list[PlannedCell]:
        return [c for c in self.cells if c.key not in self.recorded]

    def with_capacity(self, slots: int, device: str) -> SweepPlan:
        """The same plan estimated for `slots` workers training on `device` ("cpu" | "cuda")."""
        estimates = {
            c.key: estimate_cell(
                c.plan.config.arch,
                "baseline" if c.plan.config.mode == "store" else c.plan.config.mode,
                images=self.shapes[c.key][0],
                n=self.shapes[c.key][2],
                image_size=self.shapes[c.key][1],
                seeds=len(c.plan.config.seeds),
                epochs=c.plan.config.epochs,
                width=c.plan.config.model_options.get("width"),
                device=device,
            )
            for c in self.cells
        }
        known = [e.seconds for e in estimates.values() if e.seconds is not None]
        est = SweepEstimate(len(self.cells), len(known), float(sum(known)), max(1, slots), device)
        return replace(self, estimates=estimates, estimate=est)

    def summary(self) -> str:
        """What `ladd sweep --dry-run` prints: the grid, what is recorded, what is left, cost."""
        todo = self.todo
        left = sum(self.estimates[c.key].seconds or 0.0 for c in todo)
        unknown = sum(1 for c in todo if self.estimates[c.key].seconds is None)
        text = (
            f"sweep {self.spec.name}: {len(self.cells)} cells, {len(self.recorded)} recorded "
            f"already, {len(todo)} to run; all cells: {self.estimate.summary()}; left to run: "
            f"~{left / max(1, self.estimate.slots) / 60:.1f} min on {self.estimate.slots} worker(s)"
        )
        if unknown:
            text += f" ({unknown} of unknown cost)"
        return text

    def table(self) -> list[dict[str, Any]]:
        """One row per cell: label, recorded run id, estimated seconds and the estimate's basis."""
        return [
            {
                "key": c.key,
                "cell": c.label,
                "recorded_run": self.recorded.get(c.key),
                "estimate_seconds": self.estimates[c.key].seconds,
                "samples_per_s": self.estimates[c.key].samples_per_s,
                "basis": self.estimates[c.key].basis,
            }
            for c in self.cells
        ]


def plan_sweep(
    spec: SweepSpec,
    workspace: Workspace,
    *,
    slots: int = 1,
    device: str | None = None,
    _inputs: SweepInputs | None = None,
) -> SweepPlan:
    """Expand the grid, plan every cell on the driver (ladd.plan.plan_training: its inputs are
    prepared, a labeler's dense labels made once and recorded as an augment run), find the
    cells whose plan has a finished run already, and estimate the cost of the rest (`ladd sweep
    --dry-run` prints `.summary()`). `device`: "cpu" | "cuda", where the cells will train
    (default: spec.device resolved on this machine); `slots`: workers running cells at once."""
    from ladd.device import resolve_device
    from ladd.plan import plan_training

    inputs = _inputs or SweepInputs(spec, workspace)
    dev = torch.device(device) if device else resolve_device(spec.device)
    kind = dev.type
    recorded_all = recorded_runs(workspace)
    cells: dict[str, PlannedCell] = {}
    shapes: dict[str, tuple[int, int, int]] = {}
    for c in expand(spec):
        ds = inputs.dataset(c.input)
        planned = PlannedCell(c, plan_training(ds, c.config, dev))
        cells.setdefault(planned.key, planned)
        n = planned.plan.config.n or int(getattr(ds, "n", 5) or 5)
        store = planned.plan.set.soft_labels or {}  # a store run: its crops an epoch
        images = int(store.get("crops_per_epoch") or len(ds))
        shapes[planned.key] = (images, int(ds.images.shape[-1]), int(n))
    plan = SweepPlan(
        spec,
        list(cells.values()),
        {k: recorded_all[k] for k in cells if k in recorded_all},
        shapes,
        {},
        SweepEstimate(len(cells), 0, 0.0, 1, "cpu"),
        tuple(f"{path}: {w}" for path, found in inputs.warnings.items() for w in found),
    )
    return plan.with_capacity(slots, kind)


# ---------------------------------------------------------------------------------------------
# The driver loop


@dataclass
class SweepResult:
    """How a sweep ended."""

    record: SweepRecord
    wall_seconds: float
    ran: int  # cells computed in this call
    skipped: int  # cells found recorded
    failed: int

    @property
    def status(self) -> str:
        return self.record.status


def _cell_record(planned: PlannedCell, est: CellEstimate | None) -> CellRecord:
    c, i = planned.plan.config, planned.cell.input
    return CellRecord(
        key=planned.key,
        cell=planned.cell.key,
        label=planned.label,
        set=i.set_path,
        arch=c.arch,
        mode=c.mode,
        seeds=list(c.seeds),
        labeler_epoch=i.labeler_epoch,
        n=i.n if i.n is not None else c.n,
        r=i.r if i.r is not None else c.r,
        estimate_seconds=None if est is None else est.seconds,
        store=i.store_path,
        store_digest=i.store_digest,
    )


def _make_executor(
    executor: str | Executor,
    spec: SweepSpec,
    *,
    address: str | None,
    compute: ComputeFn,
    progress: ProgressFn | None,
    stop: threading.Event | None,
    ray_options: dict[str, Any] | None,
    checkpoint_dir: Path | None = None,
) -> Executor:
    if not isinstance(executor, str):
        return executor
    if executor == "serial":
        return SerialExecutor(
            spec,
            compute=compute,
            progress=progress,
            stop=stop,
            checkpoint_dir=checkpoint_dir,
        )
    if executor == "ray":
        from ladd.sweep.ray_backend import RayExecutor

        return RayExecutor(
            spec,
            address=address,
            compute=compute,
            checkpoint_dir=checkpoint_dir,
            **(ray_options or {}),
        )
    raise ValueError(f"unknown executor {executor!r}: use serial or ray")


def run_sweep(
    spec: SweepSpec,
    workspace: Workspace,
    *,
    executor: str | Executor = "serial",
    address: str | None = None,
    on_event: Callable[[SweepEvent], None] | None = None,
    stop: threading.Event | None = None,
    compute: ComputeFn = compute_cell,
    ray_options: dict[str, Any] | None = None,
) -> SweepResult:
    """Run every cell of `spec` not recorded yet; record each as it finishes (driver only).

    executor: "serial" (this process, one cell at a time), "ray" (a local Ray instance sized to
    this machine, or the cluster at `address`: "auto", "host:6379", "ray://host:10001"), or an
    Executor. `on_event` gets a SweepEvent at every step; `stop` (a threading.Event) ends the
    sweep early, in-flight cells going back to pending. `compute` is the function each cell
    runs (compute_cell, or a wrapper that calls it). `ray_options`: RayExecutor keywords
    (num_cpus, num_gpus, temp_dir, log_to_driver, ship_code). A sweep with nothing left to run
    starts no executor. Failed cells are reported and left failed; the others go on.
    """
    t0 = time.perf_counter()
    inputs = SweepInputs(spec, workspace)
    with driver_lock(workspace, spec.name):  # one driver per sweep
        return _run_locked(
            spec, workspace, inputs, executor, address, on_event, stop, compute, ray_options, t0
        )


def _run_locked(
    spec: SweepSpec,
    workspace: Workspace,
    inputs: SweepInputs,
    executor: str | Executor,
    address: str | None,
    on_event: Callable[[SweepEvent], None] | None,
    stop: threading.Event | None,
    compute: ComputeFn,
    ray_options: dict[str, Any] | None,
    t0: float,
) -> SweepResult:
    state: _State | None = None

    def relay(ev: ProgressEvent) -> None:  # per-epoch progress of the serial executor's cell
        if state is not None:
            if ev.stage == "train" and not ev.note and ev.total > 0:
                state.observe(ev.step / ev.total)
            msg = f"{ev.stage} {ev.step}/{ev.total}" + (f" {ev.message}" if ev.message else "")
            state.emit("progress", running_label=True, message=msg)

    plan = plan_sweep(spec, workspace, _inputs=inputs)
    ex = _make_executor(
        executor,
        spec,
        address=address,
        compute=compute,
        progress=relay,
        stop=stop,
        ray_options=ray_options,
        checkpoint_dir=workspace.root / "checkpoints",  # where `ladd train` keeps its states
    )
    started = False
    try:
        if plan.todo:
            ex.start()
            started = True
            if ex.device_kind() != plan.estimate.device:  # the workers train elsewhere: replan
                plan = plan_sweep(spec, workspace, device=ex.device_kind(), _inputs=inputs)
            plan = plan.with_capacity(ex.slots(), ex.device_kind())
        record = SweepRecord(
            name=spec.name,
            spec=spec.to_dict(),
            cells=[_cell_record(c, plan.estimates.get(c.key)) for c in plan.cells],
            executor=ex.name,
            estimate=plan.estimate.to_dict(),
        )
        try:  # a rerun keeps the sweep's first start time (the dashboard lists by it)
            record.created = load_sweep(workspace, spec.name).created
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            pass
        state = _State(spec, record, plan, on_event, t0)
        for c in plan.cells:
            if c.key in plan.recorded:
                state.reuse(c.key, plan.recorded[c.key], workspace)
        record.save(workspace)
        state.emit("plan", message=plan.estimate.summary())
        for warning in plan.warnings:
            state.emit("warning", message=warning)
        for c in plan.cells:
            if c.key in plan.recorded:
                state.emit("skip", cell=c.label, run_id=plan.recorded[c.key])
        _drive(state, ex, inputs, workspace, stop)
    except BaseException as err:
        if started:
            ex.cancel()
        if state is not None:
            state.abort("stopped" if isinstance(err, KeyboardInterrupt) else "failed", workspace)
        raise
    finally:
        if started:
            ex.close()
    return SweepResult(
        state.record, time.perf_counter() - t0, state.ran, len(plan.recorded), state.failed
    )


# A running cell's pace counts for the ETA once its training has reported over this many seconds.
MIN_PACE_SECONDS = 20.0


class _State:
    """The driver's book-keeping: cell statuses, counts, ETA, events, sweep.json."""

    def __init__(
        self,
        spec: SweepSpec,
        record: SweepRecord,
        plan: SweepPlan,
        on_event: Callable[[SweepEvent], None] | None,
        t0: float,
    ) -> None:
        self.spec, self.record, self.plan, self.on_event, self.t0 = (
            spec,
            record,
            plan,
            on_event,
            t0,
        )
        self.by_key = {c.key: c for c in record.cells}
        self.started: dict[str, float] = {}
        self.took: dict[str, float] = {}  # this call's finished cells: key -> seconds
        # A running cell's training progress: key -> ((time, fraction) first seen, latest).
        self.seen: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}
        self.ran = self.failed = 0
        self.skipped = 0

    def reuse(self, key: str, run_id: int, workspace: Workspace) -> None:
        cell = self.by_key[key]
        run = workspace.db.get_run(run_id)
        cell.status, cell.run_id, cell.reused = "done", run_id, True
        cell.accuracy_mean = run.metrics.get("accuracy_mean")
        cell.accuracy_std = run.metrics.get("accuracy_std")
        cell.seconds = run.metrics.get("seconds")
        self.skipped += 1

    def observe(self, fraction: float) -> None:
        """The one running cell has trained `fraction` of its passes (the serial executor's
        progress; a cell resumed from a saved state starts past 0)."""
        running = [c.key for c in self.record.cells if c.status == "running"]
        if len(running) != 1:
            return
        point = (time.perf_counter(), min(1.0, max(0.0, fraction)))
        first = self.seen[running[0]][0] if running[0] in self.seen else point
        self.seen[running[0]] = (first, point)

    def cell_pace(self, key: str) -> float | None:
        """Seconds the whole cell takes at the rate its training has shown so far (None until
        it has shown one: MIN_PACE_SECONDS and some progress since its first report)."""
        if key not in self.seen:
            return None
        (t0, f0), (t1, f1) = self.seen[key]
        if t1 - t0 < MIN_PACE_SECONDS or f1 <= f0:
            return None
        return (t1 - t0) / (f1 - f0)

    def eta(self) -> float | None:
        """Cost-model seconds of what is left, scaled by how fast cells really ran: the
        finished ones, and the running ones by their training's pace so far. A running cell
        with a pace is given its own remaining time, (1 - done) x pace."""
        left = [c for c in self.record.cells if c.status in ("pending", "running")]
        if not left:
            return 0.0
        paces = {c.key: self.cell_pace(c.key) for c in left if c.status == "running"}
        seconds = {**{k: p for k, p in paces.items() if p is not None}, **self.took}
        ratios = [
            sec / self.plan.estimates[k].seconds
            for k, sec in seconds.items()
            if self.plan.estimates[k].seconds
        ]
        factor = statistics.fmean(ratios) if ratios else 1.0
        observed = statistics.fmean(seconds.values()) if seconds else None
        now = time.perf_counter()
        total = 0.0
        for c in left:
            if paces.get(c.key) is not None:
                total += (1.0 - self.seen[c.key][1][1]) * paces[c.key]
                continue
            est = self.plan.estimates[c.key].seconds
            sec = est * factor if est is not None else observed
            if sec is None:
                return None
            if c.key in self.started:
                sec = max(0.0, sec - (now - self.started[c.key]))
            total += sec
        return total / max(1, self.plan.estimate.slots)

    def emit(
        self,
        kind: str,
        *,
        cell: str | None = None,
        message: str = "",
        run_id: int | None = None,
        accuracy: float | None = None,
        running_label: bool = False,
    ) -> None:
        if self.on_event is None:
            return
        counts = self.record.counts()
        if running_label and cell is None:
            running = [c.label for c in self.record.cells if c.status == "running"]
            cell = running[0] if len(running) == 1 else None
        self.on_event(
            SweepEvent(
                kind=kind,
                sweep=self.spec.name,
                total=len(self.record.cells),
                done=counts["done"],
                running=counts["running"],
                failed=counts["failed"],
                skipped=self.skipped,
                elapsed=time.perf_counter() - self.t0,
                eta=self.eta(),
                cell=cell,
                message=message,
                run_id=run_id,
                accuracy=accuracy,
            )
        )

    def abort(self, status: str, workspace: Workspace) -> None:
        for c in self.record.cells:
            if c.status == "running":
                c.status = "pending"
        self.record.status = status
        self.record.save(workspace)


def _drive(
    state: _State,
    ex: Executor,
    inputs: SweepInputs,
    workspace: Workspace,
    stop: threading.Event | None,
) -> None:
    """Submit cells while there are free slots, record results as they come back."""
    plan, record = state.plan, state.record
    pending = deque(plan.todo)
    in_flight: dict[Any, PlannedCell] = {}
    shared: dict[str, tuple[Any, Any]] = {}  # input key -> executor handles (set, test split)
    shared_tests: dict[int, Any] = {}  # id(test split) -> handle (cells share test splits)

    def handles(inp: CellInput) -> tuple[Any, Any]:
        if inp.key not in shared:
            ds = inputs.dataset(inp)
            test = inputs.test_split(ds)
            if id(test) not in shared_tests:
                shared_tests[id(test)] = ex.share(test)
            shared[inp.key] = (ex.share(ds), shared_tests[id(test)])
        return shared[inp.key]

    recorded = dict(plan.recorded)
    remaining_uses: dict[str, int] = {}
    for c in pending:
        remaining_uses[c.cell.input.key] = remaining_uses.get(c.cell.input.key, 0) + 1
    stopped = False
    while pending or in_flight:
        if stop is not None and stop.is_set():
            stopped = True
            break
        slots = ex.slots() if pending else 0  # re-read each round: a cluster may grow
        while pending and len(in_flight) < slots:
            cell = pending.popleft()
            crec = state.by_key[cell.key]
            try:
                handle = ex.submit(cell, *handles(cell.cell.input))
            except Exception as err:  # the input cannot be prepared: this cell fails
                _fail(state, crec, err, workspace)
                continue
            in_flight[handle] = cell
            crec.status = "running"
            state.started[cell.key] = time.perf_counter()
            record.save(workspace)
            state.emit("start", cell=cell.label)
        for handle, out in ex.wait(timeout=1.0):
            cell = in_flight.pop(handle)
            crec = state.by_key[cell.key]
            inp = cell.cell.input
            remaining_uses[inp.key] -= 1
            if remaining_uses[inp.key] == 0:
                shared.pop(inp.key, None)  # let the executor free it
            if isinstance(out, TrainingStopped):
                crec.status = "pending"
                stopped = True
                continue
            if isinstance(out, BaseException):
                _fail(state, crec, out, workspace)
                continue
            try:
                run_id = _record(state.spec, cell, out, inputs, workspace, recorded)
            except Exception as err:  # recording failed (disk full, ...): the cell failed
                _fail(state, crec, err, workspace)
                continue
            res = out.result
            crec.status, crec.run_id = "done", run_id
            crec.accuracy_mean, crec.accuracy_std = res.accuracy_mean, res.accuracy_std
            crec.seconds, crec.worker, crec.error = out.seconds, out.worker, None
            state.took[cell.key] = out.seconds
            state.ran += 1
            record.save(workspace)
            state.emit("done", cell=cell.label, run_id=run_id, accuracy=res.accuracy_mean)
    if stopped:
        ex.cancel()
        state.abort("stopped", workspace)
    else:
        record.status = "failed" if state.failed else "done"
        record.save(workspace)
    state.emit("end", message=f"sweep {record.status}")


def _fail(state: _State, crec: CellRecord, err: BaseException, workspace: Workspace) -> None:
    msg = f"{type(err).__name__}: {err}".strip()
    crec.status, crec.error = "failed", msg.splitlines()[0][:500]
    state.failed += 1
    state.record.save(workspace)
    state.emit("fail", cell=crec.label, message=crec.error)


def _record(
    spec: SweepSpec,
    cell: PlannedCell,
    out: CellOutput,
    inputs: SweepInputs,
    workspace: Workspace,
    recorded: dict[str, int],
) -> int:
    """Record the cell's run with the pipeline's one writer of train runs (once per plan key:
    the in-memory map and the database are checked first, so a second result for a recorded
    plan is dropped)."""
    if cell.key in recorded:
        return recorded[cell.key]
    again = recorded_runs(workspace).get(cell.key)
    if again is not None:
        recorded[cell.key] = again
        return again
    inp = cell.cell.input
    ds = inputs.dataset(inp)
    extra: dict[str, Any] = {
        "sweep": {
            "name": spec.name,
            "cell": cell.cell.key,
            "input": inp.to_dict(),
            "worker": out.worker,
            "device": out.device,
            "cell_seconds": out.seconds,
        },
    }
    run_id = record_train(
        workspace,
        cell.plan,
        replace(out.result, models=out.models()),
        set_path=inputs.set_file(inp),
        source=inputs.source(ds),
        label=f"{spec.name}: {cell.label}",
        reading=inputs.reading(),
        extra=extra,
        resumed=out.resumed,
    )
    recorded[cell.key] = run_id
    return run_id
