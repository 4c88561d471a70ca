"""Live progress of a sweep: one SweepEvent per step, and a plain-text renderer for terminals."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

__all__ = ["SweepEvent", "TextProgress", "render_event"]


@dataclass(frozen=True)
class SweepEvent:
    """One step of a sweep, with the counts after it (done includes skipped)."""

    kind: str  # "plan" | "warning" | "skip" | "start" | "progress" | "done" | "fail" | "end"
    sweep: str
    total: int
    done: int
    running: int
    failed: int
    skipped: int
    elapsed: float
    eta: float | None = None  # seconds until every cell has run, from the cost model
    cell: str | None = None  # the cell's label
    message: str = ""
    run_id: int | None = None
    accuracy: float | None = None

    @property
    def pending(self) -> int:
        return self.total - self.done - self.running - self.failed


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def render_event(ev: SweepEvent) -> str:
    """One line of plain text for a sweep event (the terminal's progress)."""
    head = (
        f"[{ev.sweep}] {ev.done}/{ev.total} done"
        + (f" ({ev.skipped} skipped)" if ev.skipped else "")
        + f", {ev.running} running, {ev.failed} failed"
        + f", elapsed {_duration(ev.elapsed)}"
        + (f", ETA {_duration(ev.eta)}" if ev.eta is not None and ev.kind != "end" else "")
    )
    what = {
        "plan": "planned",
        "skip": "skipped (recorded)",
        "start": "started",
        "progress": "",
        "done": "done",
        "fail": "FAILED",
        "end": "finished",
    }.get(ev.kind, ev.kind)
    tail = " ".join(x for x in (what, ev.cell or "") if x)
    if ev.accuracy is not None:
        tail += f": {ev.accuracy:.2%}"
    if ev.run_id is not None:
        tail += f" (run {ev.run_id})"
    if ev.message:
        tail += f" -- {ev.message}" if tail else ev.message
    return f"{head} | {tail}" if tail else head


class TextProgress:
    """An on_event callback printing one line per event to a stream; "progress" events (per
    epoch, serial executor) at most every `every` seconds."""

    def __init__(self, stream: TextIO, every: float = 10.0) -> None:
        self.stream = stream
        self.every = every
        self._last = -float("inf")

    def __call__(self, ev: SweepEvent) -> None:
        if ev.kind == "progress":
            now = time.monotonic()
            if now - self._last < self.every:
                return
            self._last = now
        self.stream.write(render_event(ev) + "\n")
        self.stream.flush()
