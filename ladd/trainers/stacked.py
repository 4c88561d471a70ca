"""The stacked engine: all seeds of a run in one step (vmap over stacked parameters).

The plan (ladd.plan) picks it for the fast trainer on CUDA. Same protocol as the reference loop
(ladd.training holds the rules both use): per seed a fresh model (`init_model(spec, seed)`,
identical weights), its own shuffled batches each pass, one DSA op per batch with per-sample
parameters, the soft-target cross-entropy averaged over the batch, the protocol's optimiser and
lr schedule. Both run the one loop, ladd.trainers.loop's `fit`; what changes here is how the
work is issued. The S seeds are one group of the loop and train as one step: torch.func's
`functional_call` under `vmap` (seeds along the channel axis, i.e. grouped convolutions; every
architecture without batch norm). One optimiser over the stacked (S, ...) parameters equals S
per-seed optimisers (SGD and AdamW are element-wise). DSA is ladd.dsa's batched form
(`batched_dsa`, branch-free), drawn on the device from each seed's generator once per pass (or
per step), so a compiled step is one static graph (and a CUDA graph with "reduce-overhead").
Gathering the batch stays outside the graph: a compiled step depends only on (seeds, batch,
image shape, classes), so one warm-up (ladd.trainers.warmup) serves every set of that shape.

Compilation follows the plan's compile mode: a torch.compile mode, "off", or "policy" (time a
few eager steps and compile only when the expected work repays the compile, from the cache's
index of what was compiled here before; ladd.trainers.compile). Compile time is reported apart
from training time. A compiled step that fails is dropped for the eager step with a warning and
the failure is kept in the engine report (the run's record says it). The last partial batch of
a pass is padded with zero-weight samples (static shapes; its loss is still the mean over its
real samples) or, with `pad_last=False`, run eager at its own size.
"""

from __future__ import annotations

import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from ladd.compile_cache import active_compile_cache
from ladd.dsa import DSA_UNIFORMS, batched_dsa, draw_dsa_epoch, draw_dsa_params
from ladd.models import ModelSpec
from ladd.plan import TrainPlan
from ladd.progress import ProgressEvent, ProgressFn
from ladd.rded import rded_augment
from ladd.strategies import Objective, make_objective
from ladd.trainers.compile import (
    CompilePolicy,
    EngineReport,
    cache_is_warm,
    compile_fn,
    decide_compile,
    read_index,
    record_step,
    step_key,
)
from ladd.trainers.loop import Engine, Group, TrainHooks, fit
from ladd.trainers.stacking import (
    grouped_channels_last,
    stack_models,
    stacked_loss,
    unstack_into,
)
from ladd.training import (
    TrainConfig,
    TrainedModels,
    TrainingData,
    float_state,
    init_model,
    loss_weight,
    make_optimizer,
)

__all__ = [
    "COMPILE_MODES",
    "DSA_DRAWS",
    "FastOptions",
    "FastTrainedModels",
    "StackedEngine",
    "batched_dsa",
    "draw_dsa_epoch",
    "draw_dsa_params",
    "train_stacked",
]

COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune-no-cudagraphs")
DSA_DRAWS = ("epoch", "step")


@dataclass(frozen=True)
class FastOptions:
    """How the stacked step meets the hardware (the protocol lives in the plan's config; the
    engine and its compile mode are the plan's). For benchmarks and tests.

    compile: None = the plan's mode; else a torch.compile mode or "off". The environment
      variable LADD_FAST_COMPILE overrides the plan's "policy" (benchmarks try modes with it).
    pad_last: pad the last partial batch to full size with zero-weight samples; None = when
      compiling. False while compiling runs that one batch eager at its own size.
    channels_last: NHWC memory for the stacked step's images and convolution weights (and
      inductor's layout pass, which it skips for grouped convolutions by itself).
    dsa_draws: "epoch" (each seed draws its ops and uniforms for a whole pass at once: no
      random-number launches per step) or "step".
    policy: the compile policy's conservative estimates.
    cache_dir: the compile cache (default ladd.compile_cache.compile_cache_dir()).
    """

    compile: str | None = None
    pad_last: bool | None = None
    channels_last: bool = False
    dsa_draws: str = "epoch"
    policy: CompilePolicy = field(default_factory=CompilePolicy)
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise ValueError(
                f"unknown compile mode {self.compile!r}; use one of {', '.join(COMPILE_MODES)}"
            )
        if self.dsa_draws not in DSA_DRAWS:
            raise ValueError(f"unknown dsa_draws {self.dsa_draws!r}; use epoch or step")


@dataclass
class FastTrainedModels(TrainedModels):
    """TrainedModels plus how the stacked engine ran (levers, compile and train seconds)."""

    report: EngineReport | None = None


@dataclass(frozen=True)
class _Levers:
    """FastOptions and the plan resolved for one device."""

    mode: str  # "off", a torch.compile mode, or "policy" (decide from the work on CUDA)
    target: str  # the mode the policy compiles in
    pad: bool
    channels_last: bool
    dsa_draws: str
    precision: str  # "fp32" | "bf16" (the plan's)

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16"


def _levers(opts: FastOptions, plan: TrainPlan, dev: torch.device) -> _Levers:
    """The levers for this plan on `dev`: compile mode, padding, layout, precision."""
    mode = opts.compile if opts.compile is not None else plan.compile
    if mode == "policy":
        env = os.environ.get("LADD_FAST_COMPILE", "")
        if env:
            if env not in COMPILE_MODES:
                raise ValueError(
                    f"LADD_FAST_COMPILE={env!r}: use one of {', '.join(COMPILE_MODES)}"
                )
            mode = env
        elif dev.type != "cuda":
            mode = "off"
    if mode == "reduce-overhead" and dev.type != "cuda":
        mode = "default"  # CUDA graphs need CUDA
    pad = opts.pad_last if opts.pad_last is not None else mode != "off"
    return _Levers(
        mode=mode,
        target="default",
        pad=pad,
        channels_last=opts.channels_last,
        dsa_draws=opts.dsa_draws,
        precision=plan.config.precision if dev.type == "cuda" else "fp32",
    )


class _Draws:
    """The DSA draws of every step: per step, or a whole epoch at once (views per step)."""

    def __init__(
        self, cfg: TrainConfig, gens: list, dev: torch.device, per: str, steps: int, batch: int
    ) -> None:
        self.dsa_cfg = cfg.dsa_config
        self.on = cfg.augmentation == "dsa"
        self.gens, self.dev, self.per, self.steps, self.batch = gens, dev, per, steps, batch
        self.epoch: tuple[torch.Tensor, torch.Tensor] | None = None

    def new_epoch(self) -> None:
        if self.on and self.per == "epoch":
            s = len(self.gens)
            self.epoch = draw_dsa_epoch(
                s, self.steps, self.batch, self.dsa_cfg, self.gens, self.dev
            )

    def at(self, b: int, length: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(op (S,), u (S, length, 10)) for step b, or (None, None) without DSA."""
        if not self.on:
            return None, None
        if self.epoch is None:
            return draw_dsa_params(len(self.gens), length, self.dsa_cfg, self.gens, self.dev)
        ops, us = self.epoch
        return ops[:, b], us[:, b, :length]


# ---------------------------------------------------------------------------------------------
# The step: gather, DSA, forward, loss, backward


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class _StackedStep:
    """One training step of S stacked models, eager and (maybe) compiled.

    Calling it runs forward and backward for (S, B) sample indices and leaves each seed's
    gradients in `params`; it returns the per-seed losses (S,). `prepare` decides and warms up
    compilation before training (timed separately from the training loop).
    """

    def __init__(
        self,
        models: list[nn.Module],
        data: TrainingData,
        cfg: TrainConfig,
        plan: _Levers,
        spec: ModelSpec,
        dev: torch.device,
        cache_dir: str | None,
        policy: CompilePolicy,
    ) -> None:
        self.plan, self.dev, self.spec, self.cfg = plan, dev, spec, cfg
        self.seeds, self.batch = len(models), cfg.batch_size
        self.base, self.params, self.buffers = stack_models(
            models, channels_last=plan.channels_last
        )
        self.inputs, self.targets = data.inputs, data.targets
        if plan.channels_last:
            self.inputs = self.inputs.contiguous(memory_format=torch.channels_last)
        self.dsa_cfg = cfg.dsa_config
        self.loss_scale = loss_weight(cfg, data)  # 1, or samples per image ("image_sum")
        self.temperature = data.temperature  # the student's KD temperature (1: plain)
        self.mode = plan.mode if plan.mode != "policy" else "off"
        self.compiled: Callable | None = None
        self.cache_dir = cache_dir
        self.policy = policy
        self.ones = torch.ones(self.seeds, self.batch, device=dev)
        self._tail_w: dict[int, torch.Tensor] = {}
        self.seconds_compile = self.seconds_probe = 0.0
        self.compiled_step_seconds: float | None = None
        self.compiled_loss_diff: float | None = None
        self.decision = ""
        self.failure: str | None = None  # why a compiled step was dropped for the eager one
        self.cache_warm: bool | None = None
        self.cache_used = False
        self.tail = "exact"  # set by the loop: "pad" | "eager" | "exact"
        # an augmentation of the gathered batch run before the (compiled) step: (x, B') -> x
        self.pre: Callable[[torch.Tensor, int], torch.Tensor] | None = None
        # a label strategy other than LADD's default (ladd.strategies), and what it reads
        self.objective: Objective | None = None
        self.classes, self.soft = data.sample_kinds()  # (T,), (T,)

    # -- the function that is compiled --------------------------------------------------------

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        weight: torch.Tensor | None,
        op: torch.Tensor | None,
        u: torch.Tensor | None,
        kinds: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (S*B, C, H, W) gathered images, y (S, B, K), weight (S, B) or None, op (S,) and
        u (S, B, 10) DSA draws or None, kinds the samples' (classes, soft) (S, B) each for a
        label strategy -> (summed loss, per-seed losses (S,))."""
        s, b = y.shape[0], y.shape[1]
        if op is not None:
            x = batched_dsa(
                x, op.repeat_interleave(b), u.reshape(s * b, DSA_UNIFORMS), self.dsa_cfg
            )
        x5 = x.view(s, b, *x.shape[1:])  # (S, B, C, H, W)
        if self.plan.channels_last:
            x5 = grouped_channels_last(x5)
        return stacked_loss(
            self.base,
            self.params,
            self.buffers,
            x5,
            y,
            weight,
            bf16=self.plan.bf16,
            temperature=self.temperature,
            objective=self.objective,
            kinds=kinds,
        )

    # -- one step --------------------------------------------------------------------------------

    def _weight(self, n_real: int, compiled: bool) -> torch.Tensor | None:
        if n_real >= self.batch:
            return self.ones if compiled else None
        if n_real not in self._tail_w:
            w = torch.zeros(self.seeds, self.batch, device=self.dev)
            w[:, :n_real] = 1.0
            self._tail_w[n_real] = w
        return self._tail_w[n_real]

    def _run(self, fn: Callable, args: tuple) -> torch.Tensor:
        if fn is not self.loss and self.mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        loss, per_seed = fn(*args)
        (loss * self.loss_scale if self.loss_scale != 1.0 else loss).backward()
        return per_seed

    def __call__(
        self, idx: torch.Tensor, n_real: int, op: torch.Tensor | None, u: torch.Tensor | None
    ) -> torch.Tensor:
        """Forward + backward for indices idx (S, B'); n_real of the B' are real samples."""
        x = self.inputs[idx.reshape(-1)]  # (S*B', C, H, W), gathered outside the graph
        if self.pre is not None:
            x = self.pre(x, idx.shape[1])
        y = self.targets[idx]  # (S, B', K)
        kinds = (self.classes[idx], self.soft[idx]) if self.objective is not None else None
        padded = idx.shape[1] == self.batch
        fn = self.compiled if (self.compiled is not None and padded) else None
        weight = self._weight(n_real, fn is not None) if padded else None  # None: all real
        args = (x, y, weight, op, u, kinds)
        if fn is None:
            return self._run(self.loss, args)
        try:
            return self._run(fn, args)
        except Exception as err:
            self._go_eager(f"compiled step failed ({type(err).__name__}: {err}); continuing eager")
            return self._run(
                self.loss, (x, y, self._weight(n_real, False) if padded else None, op, u, kinds)
            )

    def _go_eager(self, why: str) -> None:
        """Drop the compiled step after a failure (warned, stacklevel: the trainer's caller):
        the run goes on eager, with no half-accumulated gradient of the failed call."""
        warnings.warn(why, stacklevel=3)
        self.failure = why
        self.compiled, self.mode = None, "off"
        for p in self._trained():
            p.grad = None

    def _trained(self) -> list[torch.Tensor]:
        """Everything the step leaves gradients on: the stacked parameters, a strategy's."""
        extra = self.objective.parameters() if self.objective is not None else []
        return [*self.params.values(), *extra]

    # -- deciding and compiling -------------------------------------------------------------------

    def description(self) -> dict[str, Any]:
        """What the compiled graph depends on (the cache index key)."""
        shape = tuple(self.inputs.shape[1:])
        out = {
            "arch": self.spec.name,
            "model_options": dict(self.spec.options),
            "image": list(shape),
            "classes": int(self.targets.shape[1]),
            "seeds": self.seeds,
            "batch": self.batch,
            "precision": self.plan.precision,
            "channels_last": self.plan.channels_last,
            "dsa": self.dsa_cfg.strategy if self.cfg.augmentation == "dsa" else "",
            "mode": self.mode,
            "device": torch.cuda.get_device_name(self.dev) if self.dev.type == "cuda" else "cpu",
            "torch": torch.__version__,
        }
        if self.objective is not None:  # another graph (said only then: the older keys stay)
            out["strategy"] = self.objective.strategy.to_dict()
        return out

    def _probe_args(self) -> tuple:
        t = self.inputs.shape[0]
        idx = (torch.arange(self.seeds * self.batch, device=self.dev) % t).view(self.seeds, -1)
        op = u = None
        if self.cfg.augmentation == "dsa":
            g = torch.Generator(device=self.dev).manual_seed(0)  # not the seeds' streams
            op, u = draw_dsa_params(
                self.seeds, self.batch, self.dsa_cfg, [g] * self.seeds, self.dev
            )
        return idx, op, u

    def _timed(self, fn: Callable, calls: int) -> tuple[list[float], torch.Tensor]:
        """Seconds of each of `calls` forward + backward passes of fn on a probe batch, and the
        last call's per-seed losses (the gradients are thrown away: parameters untouched)."""
        idx, op, u = self._probe_args()
        x, y = self.inputs[idx.reshape(-1)], self.targets[idx]
        kinds = (self.classes[idx], self.soft[idx]) if self.objective is not None else None
        w = self._weight(self.batch, True)  # the weight the compiled graph takes (all ones)
        out = []
        for _ in range(calls):
            _sync(self.dev)
            t0 = time.perf_counter()
            per_seed = self._run(fn, (x, y, w, op, u, kinds)).clone()
            _sync(self.dev)
            out.append(time.perf_counter() - t0)
        for p in self._trained():
            p.grad = None
        return out, per_seed

    def prepare(
        self,
        compiled_steps: int,
        progress: ProgressFn | None = None,
        total: int = 0,
        *,
        eager_step: float | None = None,
    ) -> None:
        """Decide eager or compiled (plan "policy"), then compile and warm up, timing both.

        `compiled_steps`: how many steps the compiled function would run; `eager_step`: an
        eager step time already measured (recorded in the cache index with the compile).
        """
        plan = self.plan
        if plan.mode == "off" or compiled_steps <= 0:
            self.mode = "off"
            return
        cache = active_compile_cache(self.cache_dir)
        self.cache_dir, self.cache_used = str(cache), True
        self.cache_warm = cache_is_warm(cache)
        if plan.mode == "policy":
            t0 = time.perf_counter()
            times, _ = self._timed(self.loss, 4)
            self.seconds_probe = time.perf_counter() - t0
            eager_step = statistics.median(times[1:])
            self.mode = plan.target
            record = read_index(cache).get(step_key(self.description()))
            decision = decide_compile(
                compiled_steps,
                eager_step,
                record=record,
                warm=self.cache_warm,
                policy=self.policy,
            )
            self.decision = decision.reason
            if not decision.compile:
                self.mode = "off"
                return
        else:
            self.mode = plan.mode
            self.decision = f"compile mode {plan.mode} asked for"
        if progress is not None:
            warmth = "warm" if self.cache_warm else "cold"
            progress(
                ProgressEvent(
                    "train", 0, total, None, f"compiling the step ({warmth} cache)", note=True
                )
            )
        grouped_cl = plan.channels_last
        if self.mode == "reduce-overhead":  # CUDA graphs: the parameters keep their addresses
            for p in self.params.values():
                torch._dynamo.mark_static_address(p)
        self.compiled = compile_fn(self.loss, self.mode, layout_optimization=grouped_cl)
        if self.compiled is self.loss:  # compile unavailable
            self.compiled, self.mode = None, "off"
            return
        calls = 3 if self.mode == "reduce-overhead" else 2
        try:
            times, compiled_loss = self._timed(self.compiled, calls)
        except Exception as err:
            self._go_eager(
                f"compiling the step failed ({type(err).__name__}: {err}); running eager"
            )
            return
        steady = times[-1]
        self.compiled_step_seconds = steady
        self.seconds_compile = max(0.0, sum(times[:-1]) - (calls - 1) * steady)
        _, eager_loss = self._timed(self.loss, 1)  # the self-check: same batch, same draws
        self.compiled_loss_diff = float((compiled_loss - eager_loss).abs().max())
        record_step(
            cache,
            self.description(),
            compile_seconds=self.seconds_compile,
            compiled_step_seconds=steady,
            eager_step_seconds=eager_step,
            loss_diff=self.compiled_loss_diff,
        )


# ---------------------------------------------------------------------------------------------
# Training: the stacked engine (ladd.trainers.loop's fit runs it)


class StackedEngine(Engine):
    """All seeds in one group: one step of the S stacked models (compiled or eager), the batched
    DSA drawn from each seed's generator, per pass or per step (_Draws). Starting the group
    decides and warms up compilation (`_StackedStep.prepare`). `step` is the last group's step
    (the report)."""

    name = "stacked"
    tag = "stacked"

    def __init__(
        self, plan: TrainPlan, opts: FastOptions, progress: ProgressFn | None = None
    ) -> None:
        super().__init__(plan)
        self.opts, self.progress = opts, progress
        self.levers = _levers(opts, plan, self.device)
        self.step: _StackedStep | None = None

    def groups(self, seeds: tuple[int, ...]) -> list[tuple[int, ...]]:
        return [tuple(seeds)]

    def start(
        self, seeds: tuple[int, ...], gens: list[torch.Generator], data: TrainingData
    ) -> Group:
        group = _Stack(self, seeds, gens, data)
        self.step = group.fn
        return group


class _Stack(Group):
    stacked = True

    def __init__(
        self,
        engine: StackedEngine,
        seeds: tuple[int, ...],
        gens: list[torch.Generator],
        data: TrainingData,
    ) -> None:
        cfg, dev, levers, opts = engine.cfg, engine.device, engine.levers, engine.opts
        s_count, t_count, bsz = len(seeds), len(data), cfg.batch_size
        self.seeds = seeds
        self.models = [init_model(engine.spec, seed).to(dev).train() for seed in seeds]
        step = _StackedStep(
            self.models, data, cfg, levers, engine.spec, dev, opts.cache_dir, opts.policy
        )
        self.fn = step
        self.optimizer = make_optimizer(
            list(step.params.values()),
            cfg,
            engine.lr,
            foreach=True,
            names=list(step.params),
            stacked=True,
        )
        # a label strategy (ladd.strategies): its state per seed, its learned weights trained
        # by the same optimiser
        step.objective = make_objective(cfg, s_count, dev, stacked=True)
        if step.objective is not None:
            step.objective.attach(self.optimizer)
            self.extras = tuple(step.objective.parameters())
        if cfg.augmentation == "rded":  # per seed, from its generator, outside the graph
            step.pre = partial(_rded_per_seed, gens=gens)
        self.tensors = float_state(list(step.params.values()), list(step.buffers.values()))
        passes = cfg.passes
        # Steps the compiled function would run: all (padded tail) or the full ones (eager tail).
        per_epoch = t_count // bsz if opts.pad_last is False else math.ceil(t_count / bsz)
        step.prepare(passes * per_epoch, engine.progress, s_count * passes)
        self.pad = opts.pad_last if opts.pad_last is not None else step.mode != "off"
        steps = math.ceil(t_count / bsz)
        self.draws = _Draws(cfg, gens, dev, levers.dsa_draws, steps, bsz)
        padding = self.pad and steps * bsz > t_count
        step.tail = "pad" if padding else ("eager" if step.mode != "off" else "exact")

    def begin_pass(self) -> None:
        self.draws.new_epoch()
        if self.fn.objective is not None:
            self.fn.objective.begin_pass()

    def summary(self) -> dict | None:
        return self.fn.objective.summary() if self.fn.objective is not None else None

    def step(self, b: int, idx: torch.Tensor, n_real: int) -> torch.Tensor:
        op, u = self.draws.at(b, idx.shape[1])
        return self.fn(idx, n_real, op, u)

    def live(self) -> list[nn.Module]:
        unstack_into(self.models, self.fn.params, self.fn.buffers)
        return self.models

    def state(self) -> dict[str, torch.Tensor]:
        out = {f"p.{k}": v for k, v in self.fn.params.items()}
        out.update({f"b.{k}": v for k, v in self.fn.buffers.items()})
        if self.fn.objective is not None:
            out.update(self.fn.objective.state())
        return out

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, t in self.fn.params.items():
                t.copy_(tensors[f"p.{name}"])
            for name, t in self.fn.buffers.items():
                t.copy_(tensors[f"b.{name}"])
        if self.fn.objective is not None:
            self.fn.objective.load(tensors)


def _rded_per_seed(x: torch.Tensor, b: int, *, gens: list[torch.Generator]) -> torch.Tensor:
    """RDED's augmentation of the stacked batch x (S*b, ...), each seed's b samples from its own
    generator: the draws the reference engine makes for that seed's batch."""
    parts = x.split(b)
    return torch.cat([rded_augment(p, g) for p, g in zip(parts, gens, strict=True)])


def train_stacked(
    data: TrainingData,
    plan: TrainPlan,
    hooks: TrainHooks | None = None,
    *,
    options: FastOptions | None = None,
) -> FastTrainedModels:
    """Train one model per seed of the plan with the stacked engine (module doc).

    The models start from the reference loop's weights per seed; the results agree with it in
    distribution, not bit for bit (other random streams for DSA, grouped kernels, bf16).
    """
    opts = options or FastOptions()
    hooks = hooks or TrainHooks()
    dev = plan.torch_device
    data = data.to(dev)
    t0 = time.perf_counter()
    engine = StackedEngine(plan, opts, hooks.progress)
    res = fit(engine, data, hooks)
    _sync(dev)
    strategy = res.strategy
    seconds = time.perf_counter() - t0
    step = engine.step
    assert step is not None  # fit started the group
    levers = engine.levers
    rep = EngineReport(
        engine="stacked",
        layout="grouped",
        compile_mode=step.mode,
        precision=levers.precision,
        channels_last=levers.channels_last,
        dsa_draws=levers.dsa_draws,
        tail=step.tail,
        seconds_compile=step.seconds_compile,
        seconds_probe=step.seconds_probe,
        seconds_train=max(0.0, seconds - step.seconds_compile - step.seconds_probe),
        compiled_loss_diff=step.compiled_loss_diff,
        decision=step.decision,
        cache_dir=step.cache_dir if step.cache_used else None,
        cache_warm=step.cache_warm,
        compile_failure=step.failure,
    )
    out = FastTrainedModels(res.models, res.loss_curves, seconds, report=rep)
    out.strategy = strategy
    return out
