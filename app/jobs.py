"""Background jobs: long work (demo build, labeler and deployment training) off the script thread.

A Job is a plain object run by a daemon thread; it never calls `st.*`. Pages submit work through
the process-wide JobRegistry (one per server via st.cache_resource, so every browser tab sees the
same jobs), and draw a job's progress from a `@st.fragment(run_every=...)`. A job stops at the
next progress check once its `stop` event is set. Results that matter (runs, checkpoints) are
written to the workspace by the ladd calls themselves; the job only keeps a summary.

Events that carry `metrics` (the trainers' monitor: `ProgressEvent(stage="monitor", step=epoch,
total=epochs, metrics={"accuracy": [per seed], "loss": [per seed]})`) are kept per metric, per
seed and per epoch in `Job.curves`, so the training page draws them against epochs as they
arrive. A metric given as one number instead of a list belongs to the seed index in
`metrics["seed"]` (a trainer that trains seeds one after another), else to seed 0.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from ladd.training import TrainingStopped

log = logging.getLogger("ladd.app.jobs")

JOB_STATES = ("queued", "running", "done", "failed", "stopped")
_MAX_LOSSES = 5000
_MAX_EPOCHS = 5000  # points kept per metric and seed
WARNING_PREFIX = "warning: "  # a job log line that warns about the job's inputs


@dataclass
class Job:
    """One piece of background work and what it has reported so far."""

    id: str
    kind: str  # "demo" | "labeler" | "train" | ...
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "queued"
    stage: str = ""
    step: int = 0
    total: int = 0
    message: str = ""
    losses: list[float] = field(default_factory=list)  # one entry per reported loss
    log: list[str] = field(default_factory=list)
    # metric -> seed index -> epoch -> value, from events with `metrics`
    curves: dict[str, dict[int, dict[int, float]]] = field(default_factory=dict)
    result: Any = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- called from the worker thread -------------------------------------------------------
    def progress(self, event: Any = None, **fields: Any) -> None:
        """Progress callback for ladd functions: a ladd.progress.ProgressEvent, or its fields as
        keywords. A note is logged, not counted. Raises TrainingStopped once a stop was asked."""
        get = (lambda k: fields.get(k)) if event is None else (lambda k: getattr(event, k, None))
        note = bool(get("note"))
        metrics = get("metrics")
        # A bar update moves the bar; a note or a metrics report (monitor) does not.
        bar = not note and not isinstance(metrics, dict)
        with self._lock:
            if get("stage") and not isinstance(metrics, dict):
                self.stage = str(get("stage"))
            if bar and get("step") is not None:
                self.step = int(get("step"))
            if bar and get("total") is not None:
                self.total = int(get("total"))
            loss = get("loss")
            if loss is not None and bar and len(self.losses) < _MAX_LOSSES:
                self.losses.append(float(loss))
            if isinstance(metrics, dict) and get("step") is not None:
                self._record(int(get("step")), metrics)
            msg = get("message")
            if msg:
                self.message = str(msg)
                self.log.append(str(msg))
                del self.log[:-200]
        if self.stop.is_set():
            raise TrainingStopped("stopped on request")

    def _record(self, epoch: int, metrics: dict[str, Any]) -> None:
        """Keep one epoch's metrics (lock held): lists are per seed, numbers are one seed's."""
        seed = metrics.get("seed")
        for name, value in metrics.items():
            if name == "seed":
                continue
            if isinstance(value, (list, tuple)):
                per_seed = dict(enumerate(value))
            elif isinstance(value, (int, float)):
                per_seed = {int(seed) if isinstance(seed, int) else 0: value}
            else:
                continue
            series = self.curves.setdefault(str(name), {})
            for s, v in per_seed.items():
                points = series.setdefault(int(s), {})
                if v is not None and (epoch in points or len(points) < _MAX_EPOCHS):
                    points[epoch] = float(v)

    # -- read from pages ---------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        if self.status == "done":
            return 1.0
        return min(1.0, self.step / self.total) if self.total > 0 else 0.0

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the fields a page draws."""
        with self._lock:
            return {
                "id": self.id,
                "kind": self.kind,
                "title": self.title,
                "status": self.status,
                "stage": self.stage,
                "step": self.step,
                "total": self.total,
                "fraction": self.fraction,
                "message": self.message,
                "losses": list(self.losses),
                "curves": {
                    name: {s: dict(points) for s, points in per_seed.items()}
                    for name, per_seed in self.curves.items()
                },
                "result": self.result,
                "log": list(self.log),
                "error": self.error,
                "elapsed": self.elapsed,
                "params": dict(self.params),
            }


class JobRegistry:
    """All jobs of this server process; at most `max_running` run at once, the rest queue."""

    def __init__(self, max_running: int = 1) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, int(max_running)))
        self._ids = itertools.count(1)

    def submit(
        self,
        kind: str,
        title: str,
        fn: Callable[[Job], Any],
        params: dict[str, Any] | None = None,
    ) -> Job:
        """Start `fn(job)` in a daemon thread; its return value becomes `job.result`."""
        job = Job(id=f"{kind}-{next(self._ids)}", kind=kind, title=title, params=params or {})
        with self._lock:
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, fn), name=job.id, daemon=True).start()
        return job

    def _run(self, job: Job, fn: Callable[[Job], Any]) -> None:
        with self._slots:
            if job.stop.is_set():
                job.status, job.finished = "stopped", time.time()
                return
            job.status, job.started = "running", time.time()
            try:
                job.result = fn(job)
            except Exception as err:
                if isinstance(err, TrainingStopped) or job.stop.is_set():
                    job.status, job.message = "stopped", "stopped"
                    return
                # shown to the user as a message, logged in full
                log.error("job %s failed:\n%s", job.id, traceback.format_exc())
                job.error = f"{type(err).__name__}: {err}".splitlines()[0]
                job.status = "failed"
            else:
                job.status = "done"
            finally:
                job.finished = time.time()

    def jobs(self, kind: str | None = None) -> list[Job]:
        """Jobs, newest first."""
        with self._lock:
            found = list(self._jobs.values())
        found = [j for j in found if kind is None or j.kind == kind]
        return sorted(found, key=lambda j: j.created, reverse=True)

    def active(self, kind: str | None = None) -> list[Job]:
        return [j for j in self.jobs(kind) if j.active]

    def latest(self, kind: str) -> Job | None:
        found = self.jobs(kind)
        return found[0] if found else None

    def get(self, job_id: str | None) -> Job | None:
        if job_id is None:
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def stop(self, job_id: str) -> None:
        job = self.get(job_id)
        if job is not None:
            job.stop.set()

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """Block until a job ends (tests and scripts; pages poll instead)."""
        job = self.get(job_id)
        deadline = None if timeout is None else time.time() + timeout
        while job is not None and job.active:
            if deadline is not None and time.time() > deadline:
                break
            time.sleep(0.05)
        return job


def _default_max_running() -> int:
    env = os.environ.get("LADD_MAX_JOBS")
    if env:
        return max(1, int(env))
    return 1  # CPU-bound work on a small machine: queue rather than share cores


@st.cache_resource(show_spinner=False)
def registry() -> JobRegistry:
    """The server-wide registry (the same object in every session and tab)."""
    return JobRegistry(_default_max_running())
