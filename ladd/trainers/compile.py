"""When to compile the fast trainer's step, where compiled code is kept, and warming it up.

Compilation (torch.compile, inductor) makes a steady-state step 2-3x faster on a GPU but costs
seconds up front: ~17 s with a warm cache for the 32 px ConvNet-D3 step on an H200, more when
cold (docs/benchmarks.md). A short run (the dashboard's 50 epochs) can lose more to compiling
than it gains. Three things here keep every run at least as fast as eager:

- **A policy from the expected work** (`decide_compile`): the trainer times a few eager steps,
  and compiles only when `steps x (eager - compiled step time)` beats the compile time by a
  margin. Compile time and compiled step time come from this cache's index when this exact step
  (architecture, shapes, seeds, precision, levers, card, torch) was compiled here before, else
  from conservative defaults (`CompilePolicy`).
- **A persistent cache in the workspace** (ladd.compile_cache: `compile_cache_dir`, `use_compile_cache`):
  inductor's on-disk FX-graph, AOTAutograd and Triton caches (TORCHINDUCTOR_CACHE_DIR) under
  `<workspace>/cache/compile/`, so a second process reuses the kernels of the first.
  Mega-cache artifacts (`torch.compiler.save_cache_artifacts`) carry them to another machine
  (`export_artifacts` / `import_artifacts`).
- **Warm-up** (ladd.trainers.warmup): compiles the step for given shapes ahead of a run and
  records it in the index; `ladd warmup` and the dashboard's first run call it.

Compile time is reported apart from training time (`EngineReport.seconds_compile`,
`seconds_train`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import types
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ladd.files import write_bytes, write_json

__all__ = [
    "CompileDecision",
    "CompilePolicy",
    "EngineReport",
    "StepRecord",
    "cache_is_warm",
    "compile_fn",
    "decide_compile",
    "export_artifacts",
    "import_artifacts",
    "read_index",
    "record_step",
    "step_key",
]

INDEX_NAME = "ladd-compile-index.json"
INDEX_VERSION = 1


def cache_is_warm(folder: str | Path) -> bool:
    """True when the folder holds inductor's compiled graphs (its FX-graph cache is not empty)."""
    fx = Path(folder) / "fxgraph"
    return fx.is_dir() and any(fx.iterdir())


# ---------------------------------------------------------------------------------------------
# The index: what was compiled here, and what it cost


def step_key(description: dict[str, Any]) -> str:
    """A stable short key of a step description (architecture, shapes, levers, card, torch)."""
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class StepRecord:
    """What one compiled step cost on this machine, as last measured."""

    description: dict[str, Any]
    compile_seconds: float  # compile + warm-up of the last run that compiled it
    compiled_step_seconds: float  # steady forward + backward of one step
    eager_step_seconds: float | None = None
    runs: int = 1
    updated: str = ""
    loss_diff: float | None = None  # max |compiled - eager| per-seed loss on the probe batch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_index(folder: str | Path) -> dict[str, StepRecord]:
    """The cache folder's index (empty when missing or unreadable: it is only a hint)."""
    path = Path(folder) / INDEX_NAME
    try:
        raw = json.loads(path.read_text())
        if raw.get("version") != INDEX_VERSION:
            return {}
        return {k: StepRecord(**v) for k, v in raw.get("steps", {}).items()}
    except (OSError, ValueError, TypeError):
        return {}


def record_step(
    folder: str | Path,
    description: dict[str, Any],
    *,
    compile_seconds: float,
    compiled_step_seconds: float,
    eager_step_seconds: float | None = None,
    loss_diff: float | None = None,
) -> StepRecord:
    """Add or update this step's entry in the folder's index (atomic write; last writer wins)."""
    folder = Path(folder)
    key = step_key(description)
    steps = read_index(folder)
    old = steps.get(key)
    rec = StepRecord(
        description=description,
        compile_seconds=float(compile_seconds),
        compiled_step_seconds=float(compiled_step_seconds),
        eager_step_seconds=(
            float(eager_step_seconds)
            if eager_step_seconds is not None
            else (old.eager_step_seconds if old else None)
        ),
        runs=(old.runs + 1) if old else 1,
        updated=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        loss_diff=None if loss_diff is None else float(loss_diff),
    )
    steps[key] = rec
    payload = {"version": INDEX_VERSION, "steps": {k: v.to_dict() for k, v in steps.items()}}
    write_json(folder / INDEX_NAME, payload, indent=1)
    return rec


# ---------------------------------------------------------------------------------------------
# The policy


@dataclass(frozen=True)
class CompilePolicy:
    """Estimates used when the index has no measurement of a step (all conservative).

    cold_seconds: compile + warm-up with an empty cache. The only figures measured so far are
      ~17 s with a warm cache (32 px ConvNet-D3, H200) and a cold DM-set run that had not
      finished 28 s after the warm one (issue 15): 45 s errs on the side of eager.
    speedup: compiled over eager step time when never measured for this step (measured on an
      H200: 1.9x for the 5-seed grouped step at 32 px, compiled bf16 + channels-last over eager
      fp32; 2.4x for the 128 px ConvNet-D5 single-model step, fp32; BENCH.md): 2.0.
    margin: compile only when the estimated saving is at least this fraction of the eager
      total and at least `min_saving_seconds`: "never slower" matters more than a few seconds.
    """

    cold_seconds: float = 45.0
    speedup: float = 2.0
    margin: float = 0.1
    min_saving_seconds: float = 2.0


@dataclass(frozen=True)
class CompileDecision:
    """The policy's choice and the estimates behind it (seconds)."""

    compile: bool
    reason: str
    eager_seconds: float
    compiled_seconds: float
    compile_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide_compile(
    steps: int,
    eager_step_seconds: float,
    *,
    record: StepRecord | None = None,
    warm: bool = False,
    policy: CompilePolicy | None = None,
) -> CompileDecision:
    """Compile or not, from the expected work: `steps` forward + backward passes left to run.

    eager total = steps x eager step; compiled total = compile + steps x compiled step, where a
    `record` of this step (with `warm`: its kernels are still in the cache) gives the compile
    time and compiled step time measured last time, else the policy's cold estimates.
    """
    pol = policy or CompilePolicy()
    if steps <= 0 or eager_step_seconds <= 0:
        return CompileDecision(False, "nothing to run", 0.0, 0.0, 0.0)
    eager = steps * eager_step_seconds
    if record is not None and warm:
        compile_s = record.compile_seconds
        step_c = record.compiled_step_seconds
        source = "measured here before (warm cache)"
    elif record is not None:
        compile_s = pol.cold_seconds
        step_c = record.compiled_step_seconds
        source = "compiled here before, cache since emptied: cold compile"
    else:
        compile_s = pol.cold_seconds
        step_c = eager_step_seconds / pol.speedup
        source = f"never compiled here: cold compile, {pol.speedup:g}x assumed"
    compiled = compile_s + steps * step_c
    saving = eager - compiled
    yes = saving >= max(pol.margin * eager, pol.min_saving_seconds)
    verdict = "compile" if yes else "eager"
    reason = (
        f"{verdict}: {steps} steps, eager ~{eager:.1f} s vs compiled ~{compiled:.1f} s "
        f"({compile_s:.1f} s to compile; {source})"
    )
    return CompileDecision(yes, reason, eager, compiled, compile_s)


# ---------------------------------------------------------------------------------------------
# Compiling a function


def compile_fn(fn: Callable, mode: str, *, layout_optimization: bool = False) -> Callable:
    """torch.compile(fn) in `mode` with static shapes, or `fn` itself when mode is "off".

    Dynamo keeps its compiled variants on the function's code object, shared by every run in
    the process; a long-lived process (the dashboard) would hit the recompile limit and drop to
    eager. A private copy of the code object gives each call its own variants (inductor's
    on-disk caches are keyed on the graph, so they still hit). `layout_optimization` forces
    inductor's channels-last layout pass, which it skips by itself for grouped convolutions.
    """
    if mode == "off":
        return fn
    func = getattr(fn, "__func__", fn)  # a bound method: copy its function, bind it again
    fresh: Callable = types.FunctionType(
        func.__code__.replace(),
        func.__globals__,
        func.__name__,
        func.__defaults__,
        func.__closure__,
    )
    if func is not fn:
        fresh = types.MethodType(fresh, fn.__self__)
    try:
        if layout_optimization:
            from torch._inductor import list_mode_options

            options = {**list_mode_options(mode), "force_layout_optimization": True}
            return torch.compile(fresh, options=options, dynamic=False)
        return torch.compile(fresh, mode=mode, dynamic=False)
    except Exception as err:  # compile unavailable on this platform
        warnings.warn(f"torch.compile unavailable ({err}); running eager", stacklevel=3)
        return fn


# ---------------------------------------------------------------------------------------------
# What a run reports


@dataclass(frozen=True)
class EngineReport:
    """How an engine ran, and where its time went (saved with the run's result).

    seconds_compile: compilation and warm-up of the compiled step (0 when eager);
    seconds_probe: the eager steps timed for the compile decision (their results are thrown
    away); seconds_train: the training loop itself. compiled_loss_diff: max |compiled - eager|
    per-seed loss on one batch after compiling (bf16 rounding only, ~1e-3; models with dropout
    draw different masks in the two calls, so there it is no parity measure).
    """

    engine: str
    layout: str
    compile_mode: str  # the mode that ran ("off" when eager)
    precision: str  # resolved: "fp32" or "bf16"
    channels_last: bool
    dsa_draws: str
    tail: str  # "pad" | "eager" | "exact"
    seconds_compile: float = 0.0
    seconds_probe: float = 0.0
    seconds_train: float = 0.0
    compiled_loss_diff: float | None = None  # compiled vs eager step, one batch (self-check)
    decision: str = ""
    cache_dir: str | None = None
    cache_warm: bool | None = None
    compile_failure: str | None = None  # a compiled step that failed and was dropped: why

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Mega-cache artifacts (portable)


def export_artifacts(path: str | Path) -> Path | None:
    """Write the process's compile artifacts (torch.compiler.save_cache_artifacts) to `path`;
    None when nothing was compiled. Loading them elsewhere skips that machine's compile."""
    saved = torch.compiler.save_cache_artifacts()
    if saved is None:
        return None
    data, _info = saved
    if not data:
        return None
    return write_bytes(path, data)


def import_artifacts(path: str | Path) -> bool:
    """Load artifacts written by `export_artifacts` into this process's caches (True if any)."""
    data = Path(path).read_bytes()
    return torch.compiler.load_cache_artifacts(data) is not None
