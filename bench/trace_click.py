"""Trace the dashboard's training click through the layers (issue 24).

    PYTHONPATH=. python -m bench.trace_click

The click (`app.tasks.submit_training`) walks down a stack of layers: the dashboard job
(`app.*`), the run that records it (`ladd.pipeline`), one training and its evaluation
(`ladd.deploy`), the loop and its engines (`ladd.trainers.*`). Leaf helpers that any layer
calls (the training rules in `ladd.training`, models, data, the store, progress) are not
layers of the walk and are not traced.

With `sys.setprofile` (and `threading.setprofile`, the job runs on a worker thread) every
call from a layer into a deeper layer is a descent and its return a climb (a module's first import is not a step of the walk). A climb that is
followed by another descent is a *return to a higher layer* mid-walk: the higher layer took
control back to settle something and went down again. The final unwinding, once the last
descent is done, is not counted. Calls up the stack (the progress and stop callbacks the app
hands down) are not descents.

Prints the walk, one line per descent or mid-walk climb, and the count.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

LAYERS = (("app.", 0), ("ladd.pipeline", 1), ("ladd.deploy", 2), ("ladd.trainers", 3))
LAYER_NAMES = ("app", "ladd.pipeline", "ladd.deploy", "ladd.trainers")


def layer_of(module: str) -> int | None:
    """The walk's layer of a module (None: a leaf helper, not traced)."""
    for prefix, depth in LAYERS:
        if module == prefix.rstrip(".") or module.startswith(prefix):
            return depth
    return None


@dataclass
class Walk:
    """The descents and climbs between layers, in order: (kind, from layer, to layer, what)."""

    events: list[tuple[str, int, int, str]] = field(default_factory=list)
    _open: dict[int, int] = field(default_factory=dict)  # id(frame) -> its caller's layer
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event not in ("call", "return"):
            return
        depth = layer_of(frame.f_globals.get("__name__", ""))
        if depth is None or frame.f_code.co_name == "<module>":  # an import, not a step
            return
        with self._lock:
            if event == "call":
                caller = _caller_layer(frame.f_back)
                if caller is not None and depth > caller:
                    self._open[id(frame)] = caller
                    self.events.append(("down", caller, depth, _name(frame)))
            else:
                caller = self._open.pop(id(frame), None)
                if caller is not None:
                    self.events.append(("up", depth, caller, _name(frame)))

    def mid_walk_returns(self) -> list[tuple[str, int, int, str]]:
        """The climbs followed by another descent."""
        last_down = max((i for i, e in enumerate(self.events) if e[0] == "down"), default=-1)
        return [e for e in self.events[:last_down] if e[0] == "up"]

    def descents(self) -> list[tuple[str, int, int, str]]:
        return [e for e in self.events if e[0] == "down"]


def _caller_layer(frame: FrameType | None) -> int | None:
    while frame is not None:
        depth = layer_of(frame.f_globals.get("__name__", ""))
        if depth is not None:
            return depth
        frame = frame.f_back
    return None


def _name(frame: FrameType) -> str:
    return f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_qualname}"


def trace_training_click(root: Path, trainer: str = "fast") -> Walk:
    """Build a tiny set (offline shapes source) in `root`, then trace one training job of the
    dashboard (`app.tasks.submit_training`) from its submission to its end."""
    from app import tasks
    from app.jobs import registry
    from ladd.data import load_source
    from ladd.sets import random_real

    train = load_source("shapes", "train")
    set_dir = random_real(train, ipc=2, seed=0).save_mtt(root / "sets" / "tiny")
    cfg = {"mode": "baseline", "epochs": 1, "seeds": (0,), "trainer": trainer}
    cfg["model_options"] = {"width": 8}
    walk = Walk()
    threading.setprofile(walk.profile)
    sys.setprofile(walk.profile)
    try:
        job = tasks.submit_training(str(root / "ws"), str(set_dir), cfg, "traced")
        done = registry().wait(job.id, timeout=600)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    if done is None or done.status != "done":
        raise RuntimeError(f"the traced job did not finish: {done and done.error}")
    return walk


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        walk = trace_training_click(Path(tmp))
    mid = walk.mid_walk_returns()
    for kind, a, b, what in walk.events:
        if kind == "down":
            print(f"down {LAYER_NAMES[a]} -> {LAYER_NAMES[b]}: {what}")
        elif (kind, a, b, what) in mid:
            print(f"up   {LAYER_NAMES[b]} <- {LAYER_NAMES[a]}: {what}")
    print(f"descents: {len(walk.descents())}, returns to a higher layer mid-walk: {len(mid)}")


if __name__ == "__main__":
    main()
