"""Engines that execute a planned training run (ladd.plan.TrainPlan), registered by name.

    reference    the field's evaluation loop, one seed after another, fp32 (reference.py)
    sequential   the same loop per seed in the run's precision, NHWC on CUDA (reference.py)
    stacked      all seeds in one vmapped step, compiled on CUDA (stacked.py)
    ddp          one seed at a time, each global batch sharded over torchrun's ranks
                 (DistributedDataParallel; distributed.py)

Every engine runs the one loop, ladd.trainers.loop's `fit` (shuffle, stop, pass end, progress,
checkpoint, the finite-weights check). `train_models(data, plan, hooks)` is the one entry point:
the plan names the engine (decided when it was planned, never by an exception mid-run), and the
FLOPs are counted once, whatever the engine. A saved training state is resumed by the engine
that wrote it (the fast trainer's sequential and stacked engines can stand in for each other:
the state says which, and the engine report says why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ladd.compile_cache import compile_cache_dir
from ladd.plan import TrainPlan
from ladd.trainers.compile import EngineReport
from ladd.trainers.distributed import train_distributed
from ladd.trainers.loop import TrainHooks
from ladd.trainers.reference import train_reference
from ladd.trainers.stacked import FastOptions, train_stacked
from ladd.training import TrainedModels, TrainingData, saved_engine, step_flops

__all__ = ["ENGINE_RUNNERS", "TrainHooks", "train_models"]


def _sequential(data: TrainingData, plan: TrainPlan, hooks: TrainHooks) -> TrainedModels:
    cuda = plan.torch_device.type == "cuda"
    out = train_reference(data, plan, hooks, channels_last=cuda)
    out_report = EngineReport(
        engine="sequential",
        layout="separate",
        compile_mode="off",
        precision=plan.config.precision if cuda else "fp32",
        channels_last=cuda,
        dsa_draws="per batch (reference)",
        tail="exact",
        seconds_train=out.seconds,
    )
    out.engine = out_report.to_dict()
    return out


def _stacked(
    data: TrainingData, plan: TrainPlan, hooks: TrainHooks, cache: str | None = None
) -> TrainedModels:
    out = train_stacked(data, plan, hooks, options=FastOptions(cache_dir=cache))
    out.engine = out.report.to_dict() if out.report is not None else None
    return out


ENGINE_RUNNERS: dict[str, Callable[[TrainingData, TrainPlan, TrainHooks], TrainedModels]] = {
    "reference": train_reference,
    "sequential": _sequential,
    "stacked": _stacked,
    "ddp": train_distributed,
}


def _resumed_engine(plan: TrainPlan, hooks: TrainHooks) -> tuple[TrainPlan, str]:
    """The plan with the engine of the run's saved state, when that is the other engine of the
    fast trainer (only the engine that saved a state can continue it), and why."""
    meta = hooks.checkpoint.saved_meta() if hooks.checkpoint is not None else None
    if meta is None or plan.engine not in ("sequential", "stacked"):
        return plan, ""
    wrote = "sequential" if saved_engine(meta) == "reference" else "stacked"
    if wrote == plan.engine:
        return plan, ""
    mode = "policy" if wrote == "stacked" else "off"
    return replace(plan, engine=wrote, compile=mode), f"resuming the state the {wrote} engine saved"


def train_models(
    data: TrainingData,
    plan: TrainPlan,
    hooks: TrainHooks | None = None,
    *,
    compile_cache: str | Path | None = None,
) -> TrainedModels:
    """Train one model per seed of the plan with the engine it names.

    FLOPs: one measured forward + backward per sample, times samples x passes x seeds.
    `compile_cache`: the folder of the stacked engine's compile index (a workspace's,
    ladd.compile_cache.compile_cache_dir); inductor's own kernels go where the process points
    it (the front ends call ladd.compile_cache.use_compile_cache; the library never sets
    process-wide state). The result's `engine` is how the engine ran,
    JSON-ready (None for the reference loop).
    """
    hooks = hooks or TrainHooks()
    plan, note = _resumed_engine(plan, hooks)
    cfg = plan.config
    per_sample = (
        step_flops(data, plan.spec, cfg.batch_size, plan.torch_device) if len(data) else 0.0
    )
    if plan.engine == "stacked" and compile_cache is not None:  # its index and kernels there
        out = _stacked(data, plan, hooks, str(compile_cache_dir(compile_cache)))
    else:
        out = ENGINE_RUNNERS[plan.engine](data, plan, hooks)
    out.flops = int(per_sample * len(data) * cfg.passes * len(cfg.seeds))
    if note and out.engine is not None:
        out.engine = {
            **out.engine,
            "decision": "; ".join(x for x in (note, out.engine.get("decision")) if x),
        }
    return out
