"""Trace a training run through the layers: the dashboard's click and `ladd train` (issue 34).

    PYTHONPATH=. python -m bench.trace_click

Both front ends walk down the same stack of layers: the front end (`app.*`: the click, then the
job on a worker thread; or `ladd.cli`), the plan that settles the config (`ladd.plan`), the
run that records it (`ladd.pipeline`), the execution and its evaluation (`ladd.deploy`), the
loop and its engines (`ladd.trainers.*`). Leaf helpers that any layer calls (the training rules
in `ladd.training`, models, data, sets, the store, results, progress) are not layers of the
walk and are not traced.

With `sys.setprofile` (and `threading.setprofile`, the dashboard's job runs on a worker thread)
every call from a layer into a deeper layer is a descent and its return a climb (a module's
first import is not a step of the walk). A climb that is followed by another descent is a
*return to a higher layer* mid-walk: a higher layer took control back and went down again.
The final unwinding, once the last descent is done, is not counted. Calls up the stack (the
progress and stop callbacks a front end hands down) are not descents, and neither is reading
the settled plan (TrainPlan's own properties and methods, e.g. `plan.lr`) or building a value
(a dataclass's generated `__init__`, e.g. the TrainHooks a layer hands down): no control goes
down with them.

A descent whose arguments hold the run's configuration (a TrainConfig, a TrainPlan, or an
object carrying one, such as the dashboard's PlannedTraining) is a *crossing* of the config
into that layer: settled once, the config should enter each layer once.

Prints each walk, one line per descent (the config's crossings marked) or mid-walk climb, and
the counts.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

LAYERS = (
    ("app.", 0),
    ("ladd.cli", 0),
    ("ladd.plan", 1),
    ("ladd.pipeline", 2),
    ("ladd.deploy", 3),
    ("ladd.trainers", 4),
)
LAYER_NAMES = ("front end", "ladd.plan", "ladd.pipeline", "ladd.deploy", "ladd.trainers")


def layer_of(module: str) -> int | None:
    """The walk's layer of a module (None: a leaf helper, not traced)."""
    for prefix, depth in LAYERS:
        if module == prefix.rstrip(".") or module.startswith(prefix):
            return depth
    return None


def _is_a_value_read(frame: FrameType) -> bool:
    """A dataclass's generated __init__, or a property or method of the plan itself."""
    from ladd.plan import TrainPlan

    code = frame.f_code
    if code.co_name == "__init__" and "__create_fn__" in code.co_qualname:
        return True
    first = code.co_varnames[0] if code.co_argcount else None
    return first == "self" and isinstance(frame.f_locals.get("self"), TrainPlan)


def _carries_config(frame: FrameType) -> str:
    """ "plan" / "config" when the called function's arguments hold the run's configuration."""
    from ladd.plan import TrainPlan
    from ladd.training import TrainConfig

    code = frame.f_code
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    found = ""
    for name in names:
        value = frame.f_locals.get(name)
        if isinstance(value, TrainPlan) or isinstance(getattr(value, "plan", None), TrainPlan):
            return "plan"
        if isinstance(value, TrainConfig):
            found = "config"
    return found


@dataclass
class Walk:
    """The descents and climbs between layers, in order: (kind, from layer, to layer, what,
    carried) with carried "plan" / "config" / "" for a descent (what its arguments hold)."""

    events: list[tuple[str, int, int, str, str]] = field(default_factory=list)
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
                if caller is not None and depth > caller and not _is_a_value_read(frame):
                    self._open[id(frame)] = caller
                    carried = _carries_config(frame)
                    self.events.append(("down", caller, depth, _name(frame), carried))
            else:
                caller = self._open.pop(id(frame), None)
                if caller is not None:
                    self.events.append(("up", depth, caller, _name(frame), ""))

    def mid_walk_returns(self) -> list[tuple[str, int, int, str, str]]:
        """The climbs followed by another descent."""
        last_down = max((i for i, e in enumerate(self.events) if e[0] == "down"), default=-1)
        return [e for e in self.events[:last_down] if e[0] == "up"]

    def descents(self) -> list[tuple[str, int, int, str, str]]:
        return [e for e in self.events if e[0] == "down"]

    def crossings(self) -> list[tuple[int, int, str, str]]:
        """The config's descents: (from layer, into layer, what, "plan" | "config")."""
        return [(a, b, what, c) for kind, a, b, what, c in self.events if kind == "down" and c]

    def layers_crossed_twice(self) -> list[int]:
        """The layers the config entered more than once."""
        into = [b for _, b, _, _ in self.crossings()]
        return sorted({b for b in into if into.count(b) > 1})

    def lines(self) -> list[str]:
        """The walk as printed: each descent (the config's crossings marked) and each mid-walk
        climb, then the counts."""
        mid = self.mid_walk_returns()
        out = []
        for kind, a, b, what, carried in self.events:
            if kind == "down":
                mark = f"   [{carried} crosses]" if carried else ""
                out.append(f"down {LAYER_NAMES[a]} -> {LAYER_NAMES[b]}: {what}{mark}")
            elif (kind, a, b, what, carried) in mid:
                out.append(f"up   {LAYER_NAMES[b]} <- {LAYER_NAMES[a]}: {what}")
        twice = [LAYER_NAMES[b] for b in self.layers_crossed_twice()]
        out.append(
            f"descents: {len(self.descents())}, returns to a higher layer mid-walk: {len(mid)}, "
            f"config crossings: {len(self.crossings())}, layers it entered twice: "
            f"{', '.join(twice) or 'none'}"
        )
        return out


def _caller_layer(frame: FrameType | None) -> int | None:
    while frame is not None:
        depth = layer_of(frame.f_globals.get("__name__", ""))
        if depth is not None:
            return depth
        frame = frame.f_back
    return None


def _name(frame: FrameType) -> str:
    return f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_qualname}"


def tiny_set(root: Path) -> Path:
    """A random-real set of the offline `shapes` source (IPC 2) saved under `root`."""
    from ladd.data import load_source
    from ladd.sets import random_real

    train = load_source("shapes", "train")
    return random_real(train, ipc=2, seed=0).save_mtt(root / "sets" / "tiny")


def _config(trainer: str) -> Any:
    from ladd.training import TrainConfig

    return TrainConfig(
        mode="baseline", epochs=1, seeds=(0,), trainer=trainer, model_options={"width": 8}
    )


def _traced(walk: Walk, fn: Any) -> Any:
    threading.setprofile(walk.profile)
    sys.setprofile(walk.profile)
    try:
        return fn()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


def trace_training_click(root: Path, trainer: str = "fast") -> Walk:
    """Trace the dashboard's training click on a tiny set in `root`: the plan made at the
    click (`app.tasks.plan_training_job`) and the job it submits (`app.tasks.submit_training`)
    to the job's end."""
    from app import tasks
    from app.jobs import registry

    set_dir = tiny_set(root)
    walk = Walk()

    def click() -> Any:
        planned = tasks.plan_training_job(
            str(root / "ws"), str(set_dir), _config(trainer), device="cpu"
        )
        job = tasks.submit_training(planned, "traced")
        return registry().wait(job.id, timeout=600)

    done = _traced(walk, click)
    if done is None or done.status != "done":
        raise RuntimeError(f"the traced job did not finish: {done and done.error}")
    return walk


def trace_ladd_train(root: Path, trainer: str = "fast") -> Walk:
    """Trace `ladd train` (the command line, in this process) on a tiny set in `root`."""
    from typer.testing import CliRunner

    from ladd.cli import app

    set_dir = tiny_set(root)
    args = [
        "train", str(set_dir), "--mode", "baseline", "--epochs", "1", "--seeds", "1",
        "--width", "8", "--trainer", trainer, "--device", "cpu",
        "--workspace", str(root / "ws"),
    ]  # fmt: skip
    walk = Walk()
    res = _traced(walk, lambda: CliRunner().invoke(app, args, catch_exceptions=False))
    if res.exit_code != 0:
        raise RuntimeError(f"the traced `ladd train` failed: {res.output[-2000:]}")
    return walk


def main() -> None:
    for name, trace in (
        ("the dashboard's click", trace_training_click),
        ("ladd train", trace_ladd_train),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            walk = trace(Path(tmp))
        print(f"== {name}")
        print("\n".join(walk.lines()))


if __name__ == "__main__":
    main()
