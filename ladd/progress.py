"""Progress reports from long work, and the one adapter that shows them.

Long work (labeler, training, distillation, the demo) calls a `ProgressFn` with ProgressEvents.
An event either moves a bar (`step` of `total`, with an optional loss and message) or, with
`note=True`, is a one-off line to print (a checkpoint written, evaluation started). Consumers
never look at stage names to decide what an event means.

`progress_reporter` renders events for a person: a rich bar on a terminal, plain lines (at most
one every few seconds, plus every note and the last step) on a log file or pipe, where a rich
bar would show nothing until it stops. The CLI and the scripts use it; the dashboard's jobs
consume the same events.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["ProgressEvent", "ProgressFn", "progress_reporter"]


@dataclass
class ProgressEvent:
    """One progress report."""

    stage: str  # what is running: "labeler" | "train" | "dm" | "mtt" | "experts" | "demo" | ...
    step: int
    total: int
    loss: float | None = None
    message: str = ""
    note: bool = False  # a one-off message to show as a line, not a bar update
    # Numbers for live charts, e.g. {"epoch": 12, "seeds": [0, 1], "loss": [..], "accuracy": [..]}
    metrics: dict[str, Any] | None = None


ProgressFn = Callable[[ProgressEvent], None]


def _fmt_seconds(s: float) -> str:
    s = int(max(0.0, s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@contextmanager
def progress_reporter(
    description: str,
    *,
    stream: TextIO | None = None,
    enabled: bool = True,
    plain: bool | None = None,
    every: float = 10.0,
) -> Iterator[ProgressFn]:
    """A ProgressFn that shows events on `stream` (default stderr) while the block runs.

    plain: None = rich on a terminal, plain lines otherwise; True/False forces one. `every`:
    seconds between plain progress lines. User-supplied text is shown literally (never parsed
    as rich markup).
    """
    stream = stream if stream is not None else sys.stderr
    if not enabled:
        yield lambda ev: None
        return
    if plain is None:
        plain = not (hasattr(stream, "isatty") and stream.isatty())
    if plain:
        with _plain(description, stream, every) as cb:
            yield cb
    else:
        with _rich(description, stream) as cb:
            yield cb


@contextmanager
def _plain(description: str, stream: TextIO, every: float) -> Iterator[ProgressFn]:
    t0 = time.monotonic()
    last = [float("-inf")]

    def write(text: str) -> None:
        stream.write(text + "\n")
        stream.flush()

    def callback(ev: ProgressEvent) -> None:
        if ev.note:
            write(f"  {ev.message}")
            return
        now = time.monotonic()
        final = ev.total > 0 and ev.step >= ev.total
        if now - last[0] < every and not final:
            return
        last[0] = now
        elapsed = now - t0
        parts = [f"{description}:"]
        if ev.total > 0:
            parts.append(f"{ev.step}/{ev.total} ({ev.step / ev.total:.0%})")
            if 0 < ev.step < ev.total:
                parts.append(f"eta {_fmt_seconds(elapsed * (ev.total - ev.step) / ev.step)}")
        parts.append(f"elapsed {_fmt_seconds(elapsed)}")
        if ev.loss is not None:
            parts.append(f"loss {ev.loss:.4f}")
        if ev.message:
            parts.append(ev.message)
        write(" ".join(parts))

    yield callback


@contextmanager
def _rich(description: str, stream: TextIO) -> Iterator[ProgressFn]:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(file=stream, highlight=False, soft_wrap=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task(escape(description), total=None, info="")

    def callback(ev: ProgressEvent) -> None:
        info = ev.message or ""
        if ev.note:
            progress.console.print(f"  {info}", markup=False)
            return
        if ev.loss is not None:
            info = f"{info} loss {ev.loss:.4f}".strip()
        progress.update(
            task, completed=ev.step, total=ev.total if ev.total > 0 else None, info=escape(info)
        )

    with progress:
        yield callback
