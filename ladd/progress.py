"""Progress reports from long work: the CLI's bars and the dashboard both consume these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class ProgressEvent:
    """One progress report."""

    stage: str  # "labeler" | "train" | "evaluate" | "dm" | "mtt" | "experts" | ...
    step: int
    total: int
    loss: float | None = None
    message: str = ""


ProgressFn = Callable[[ProgressEvent], None]
