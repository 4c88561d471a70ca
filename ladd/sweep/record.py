"""Where a sweep's results land: runs in the workspace's runs database, a record per sweep.

    <workspace>/sweeps/<name>/sweep.json    the spec, the estimate, every cell with its status
                                            (pending | running | done | failed) and run id
    <workspace>/sweeps/<name>/driver.lock   held by the one driver running the sweep
    <workspace>/sweeps/<name>/inputs/       the label-augmented sets the sweep made (one per
                                            set x labeler epoch x N/R), so every run points
                                            at the exact file it trained on
    <workspace>/runs/<id>/                  one `train` run per cell (models, result.json),
                                            its config holding its plan and {"sweep": {"name", "cell"}}

Only the driver writes any of these (SQLite sees one writer; workers only compute). The runs
database is the truth about what is done: a cell whose key has a finished run is skipped, and a
result that arrives for a key already recorded (a retried task finishing twice, a driver that
died between recording and updating sweep.json) is dropped, never recorded twice.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ladd.files import write_json

__all__ = [
    "CELL_STATUSES",
    "CellRecord",
    "SweepBusy",
    "SweepRecord",
    "driver_lock",
    "list_sweeps",
    "load_sweep",
    "recorded_runs",
    "sweep_dir",
]

CELL_STATUSES = ("pending", "running", "done", "failed")


def sweep_dir(workspace: Any, name: str) -> Path:
    """<workspace>/sweeps/<name>/ (not created)."""
    return Path(workspace.root) / "sweeps" / name


class SweepBusy(RuntimeError):
    """Another process is driving this sweep: two drivers would train the same cells twice."""


@contextmanager
def driver_lock(workspace: Any, name: str) -> Iterator[None]:
    """Hold <workspace>/sweeps/<name>/driver.lock while driving the sweep; a second driver of
    the same sweep (another terminal, the dashboard) is refused with SweepBusy and who holds
    it. The lock is the OS's (flock): it is released when its holder exits, even on kill -9,
    so a crashed driver never leaves the sweep locked. Where flock is missing (Windows), no
    lock is taken."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    d = sweep_dir(workspace, name)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "driver.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise SweepBusy(
                f"sweep {name!r} is already running ({holder}); wait for it to end or stop it, "
                "then run it again: recorded cells are skipped"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()  # the lock itself goes with the file's closing


@dataclass
class CellRecord:
    """A cell as the sweep record and the dashboard see it."""

    key: str  # the run's identity: its plan's key (ladd.plan)
    label: str
    set: str
    arch: str
    mode: str
    seeds: list[int]
    labeler_epoch: int | None = None
    n: int | None = None
    r: float | None = None
    status: str = "pending"
    run_id: int | None = None
    accuracy_mean: float | None = None
    accuracy_std: float | None = None
    seconds: float | None = None  # wall time of the cell's task (worker side)
    estimate_seconds: float | None = None
    error: str | None = None
    worker: str | None = None  # host:pid that computed it
    reused: bool = False  # found already recorded when the sweep started
    cell: str | None = None  # the grid cell's id (ladd.sweep.spec.Cell.key)
    store: str | None = None  # mode "store": the soft-label store replayed ...
    store_digest: str | None = None  # ... and its digest (ladd.stores)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SweepRecord:
    """sweep.json: one sweep's spec, estimate and cells."""

    name: str
    spec: dict[str, Any]
    cells: list[CellRecord]
    status: str = "running"  # running | done | failed | stopped | interrupted (driver gone)
    executor: str = "serial"
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    estimate: dict[str, Any] = field(default_factory=dict)
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)

    def counts(self) -> dict[str, int]:
        """Cells per status (every status present, zeros included)."""
        out = dict.fromkeys(CELL_STATUSES, 0)
        for c in self.cells:
            out[c.status] = out.get(c.status, 0) + 1
        return out

    def cell(self, key: str) -> CellRecord:
        for c in self.cells:
            if c.key == key:
                return c
        raise KeyError(f"sweep {self.name} has no cell {key}")

    def counterpart(self, key: str, mode: str = "baseline") -> CellRecord | None:
        """The cell with the same set, architecture and seeds in `mode` (e.g. a LADD cell's
        baseline), for side-by-side comparison; None when the sweep has none."""
        me = self.cell(key)
        for c in self.cells:
            if (c.mode, c.set, c.arch, c.seeds) == (
                mode,
                me.set,
                me.arch,
                me.seeds,
            ) and c is not me:
                return c
        return None

    def save(self, workspace: Any) -> Path:
        self.updated = time.time()
        return write_json(sweep_dir(workspace, self.name) / "sweep.json", self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["counts"] = self.counts()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepRecord:
        d = dict(d)
        d.pop("counts", None)
        known = set(cls.__dataclass_fields__)
        cell_fields = set(CellRecord.__dataclass_fields__)
        d["cells"] = [
            CellRecord(**{k: v for k, v in c.items() if k in cell_fields}) for c in d["cells"]
        ]
        return cls(**{k: v for k, v in d.items() if k in known})


def load_sweep(workspace: Any, name: str) -> SweepRecord:
    """A sweep's record; a "running" sweep whose driver process is gone reads "interrupted"
    (and its running cells "pending": nothing is computing them any more)."""
    import json

    from ladd.store import pid_alive

    path = sweep_dir(workspace, name) / "sweep.json"
    if not path.is_file():
        raise FileNotFoundError(f"no sweep named {name!r} in {workspace.root}")
    rec = SweepRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    if rec.status == "running" and rec.host == socket.gethostname() and not pid_alive(rec.pid):
        rec.status = "interrupted"
        for c in rec.cells:
            if c.status == "running":
                c.status = "pending"
    return rec


def list_sweeps(workspace: Any) -> list[SweepRecord]:
    """Every sweep of the workspace, newest first (unreadable records skipped)."""
    root = Path(workspace.root) / "sweeps"
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        if (d / "sweep.json").is_file():
            try:
                out.append(load_sweep(workspace, d.name))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a record from another version or half-copied: not listed
    out.sort(key=lambda r: -r.created)
    return out


def recorded_runs(workspace: Any) -> dict[str, int]:
    """plan key -> id of its finished `train` run, from the runs database (newest run wins):
    a run recorded by `ladd train`, the dashboard, the demo or any sweep answers every later
    request of the same plan."""
    found: dict[str, int] = {}
    for run in workspace.db.list_runs("train"):
        plan = run.config.get("plan") if isinstance(run.config, dict) else None
        key = plan.get("key") if isinstance(plan, dict) else None
        if key and run.status == "done" and key not in found:
            found[key] = run.id
    return found
