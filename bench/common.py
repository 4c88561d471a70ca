"""What every benchmark shares: the card's name, synthetic training sets, a steady-state clock,
time-boxed training runs and appending records to a JSON list (method: ../shared/BENCH.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

from ladd.files import write_text
from ladd.training import TrainingData

SCHEMA = "ladd-bench/1"  # every record written by these benchmarks carries it


def card_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def today() -> str:
    return dt.date.today().isoformat()


def command_line(module: str, argv: list[str] | None) -> str:
    return f"python -m {module} " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))


def stamp(record: dict[str, Any], device: torch.device, command: str) -> dict[str, Any]:
    """Add the fields every record has: schema, card, date, command, torch."""
    return {
        "schema": SCHEMA,
        **record,
        "card": card_name(device),
        "date": today(),
        "command": command,
        "torch": torch.__version__,
    }


def synthetic_data(
    samples: int, image_size: int, num_classes: int = 10, num_full: int = 0, seed: int = 0
) -> TrainingData:
    """A training set of the right shape (speed does not depend on the pixels): `num_full` hard
    one-hot rows first, then soft rows."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 3, image_size, image_size, generator=g)
    hard = torch.nn.functional.one_hot(torch.arange(num_full) % num_classes, num_classes).float()
    soft = torch.softmax(torch.randn(samples - num_full, num_classes, generator=g) * 3, dim=1)
    return TrainingData(x, torch.cat([hard, soft]), num_full, samples - num_full, num_classes)


class Clock:
    """Progress callback recording (time, seed-epochs done) after every reported epoch; with
    `window` seconds, sets `stop` once that much steady state has been seen (time-boxed runs)."""

    def __init__(self, window: float | None = None) -> None:
        self.marks: list[tuple[float, int]] = []
        self.window = window
        self.stop = threading.Event()

    def __call__(self, event: Any) -> None:
        if event.stage != "train" or getattr(event, "note", False):
            return
        self.marks.append((time.perf_counter(), int(event.step)))
        if self.window is not None and self.marks[-1][0] - self.marks[0][0] >= self.window:
            self.stop.set()

    def rate(self, samples_per_epoch: int, fallback_seconds: float = 0.0, seed_epochs: int = 0):
        """Steady-state seed-samples/s between the first and the last report (None if unknown)."""
        if len(self.marks) >= 2:
            (t0, s0), (t1, s1) = self.marks[0], self.marks[-1]
            if t1 > t0 and s1 > s0:
                return (s1 - s0) * samples_per_epoch / (t1 - t0)
        if fallback_seconds > 0 and seed_epochs > 0:
            return seed_epochs * samples_per_epoch / fallback_seconds
        return None


def windowed(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a trainer whose progress is a windowed Clock: its TrainingStopped is the normal end
    of a time-boxed run (None is returned then)."""
    from ladd.training import TrainingStopped

    try:
        return fn(*args, **kwargs)
    except TrainingStopped:
        return None


def append_records(path: Path | None, records: list[dict[str, Any]]) -> None:
    """Append records to a JSON list file (created when missing), atomically: a killed run keeps
    what it measured before."""
    if path is None or not records:
        return
    existing = json.loads(path.read_text()) if path.exists() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(existing + records, indent=2) + "\n")


def latest_compile(cache_dir: str | Path | None, **match: Any) -> dict[str, Any] | None:
    """The most recent compile-index entry whose description has these fields (bench helper:
    a time-boxed run ends by its stop event, so its report is read back from the index)."""
    from ladd.trainers.compile import read_index

    if cache_dir is None:  # the trainer's default: where it pointed inductor
        cache_dir = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if cache_dir is None:
        return None
    best = None
    for rec in read_index(cache_dir).values():
        if all(rec.description.get(k) == v for k, v in match.items()):
            if best is None or rec.updated >= best.updated:
                best = rec
    return best.to_dict() if best is not None else None
