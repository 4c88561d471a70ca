"""The fast deployment trainer: the reference protocol, several seeds per step, compiled on CUDA.

Same protocol as `ladd.trainers.reference` (ladd.training holds the rules both use): per seed a
fresh model (`init_model(spec, seed)`, identical weights), its own shuffled batches of 256 each
epoch, one DSA op per batch with per-sample parameters, the soft-target cross-entropy averaged
over the batch, the protocol's SGD and lr schedule. Both run the one loop, ladd.trainers.loop's
`fit` (the seeds' generators and shuffles, stop, pass end, progress, checkpoint); what changes
here is the engine behind it, how the work is issued:

- **stacked** engine (`StackedEngine`, default on CUDA): the S seeds are one group of the loop
  and train as one step; SGD is element-wise, so one optimiser over the stacked (S, ...)
  parameters equals S per-seed optimisers. Each seed is fed its own batch. How the S models
  meet the hardware is the **layout** (`FastOptions`):
  - "grouped": torch.func `functional_call` under `vmap` (seeds along the channel axis, i.e.
    grouped convolutions; every architecture);
  - "dense": seeds laid end to end along the batch axis, (S*B, C, H, W); weight layers apply
    each seed's parameters to its slice (dense convolutions, batched matrix products), every
    other layer (norm statistics, ReLU, pooling, DSA) runs once over all S*B samples
    (ladd.trainers.layouts; ConvNets, AlexNet, VGG11, ResNet18, not the ViT);
  - "streams": "dense" with each seed's convolutions on its own CUDA stream (eager only).
  DSA is ladd.dsa's batched form (`batched_dsa`, branch-free), drawn on the device from each
  seed's generator once per epoch (`dsa_draws="epoch"`) or per step, so a compiled step is one
  static graph (and a CUDA graph with mode "reduce-overhead"). Gathering the batch stays
  outside the graph, so a compiled step depends only on (seeds, batch, image shape, classes),
  not on the training set: one warm-up (ladd.trainers.warmup) serves every set of that shape.
- **sequential** engine (default on CPU, and for models with BatchNorm): the reference trainer
  (one seed per group, ladd.trainers.reference), NHWC on CUDA. A saved state is resumed by the
  engine that wrote it. On a 2-core CPU grouped convolutions are slower than separate ones
  (measured), so this is what "never slower than the reference on the CPU" means.

Compilation on CUDA follows ladd.trainers.compile: with compile "auto" the trainer times a few
eager steps and compiles only when the expected work repays the compile time (from the cache's
index of what was compiled here before); compile time is reported apart from training time.
The last partial batch of an epoch is padded with zero-weight samples (static shapes; its loss is
still the mean over its real samples) or, with `pad_last=False`, run eager at its own size.

Precision: "auto" = bf16 autocast on CUDA with float32 master weights and a float32 loss, fp32
elsewhere; "fp32" / "bf16" as asked (the CPU path always computes in float32).
"""

from __future__ import annotations

import copy
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Unpack

import torch
from torch import nn

from ladd.device import resolve_device
from ladd.dsa import DSA_UNIFORMS, batched_dsa, draw_dsa_epoch, draw_dsa_params
from ladd.models import ModelSpec
from ladd.progress import ProgressEvent, ProgressFn
from ladd.rded import rded_augment
from ladd.trainers.compile import (
    CompilePolicy,
    EngineReport,
    cache_is_warm,
    compile_fn,
    decide_compile,
    read_index,
    record_step,
    resolve_precision,
    step_key,
    use_compile_cache,
)
from ladd.trainers.layouts import (
    conv_weight_channels_last,
    dense_layout_allowed,
    grouped_channels_last,
    seeded_loss,
    seeded_model,
)
from ladd.trainers.loop import Engine, Group, HookArgs, TrainHooks, fit, saved_engine
from ladd.trainers.reference import train_reference
from ladd.training import (
    TrainCheckpoint,
    TrainConfig,
    TrainedModels,
    TrainingData,
    base_lr,
    float_state,
    init_model,
    loss_weight,
    make_optimizer,
    model_spec,
    soft_cross_entropy,
)

__all__ = [
    "COMPILE_MODES",
    "DSA_DRAWS",
    "ENGINES",
    "LAYOUTS",
    "LEVER_DEFAULTS",
    "FastOptions",
    "FastTrainedModels",
    "StackedEngine",
    "batched_dsa",
    "draw_dsa_epoch",
    "draw_dsa_params",
    "stacked_loss",
    "train_fast",
    "warm_step",
]

ENGINES = ("auto", "stacked", "sequential")
COMPILE_MODES = ("auto", "off", "default", "reduce-overhead", "max-autotune-no-cudagraphs")
LAYOUTS = ("auto", "grouped", "dense", "streams")
DSA_DRAWS = ("epoch", "step")

# Which levers win, per (architecture, image size), from GPU measurements (docs/benchmarks.md):
# FastOptions fields used when the caller leaves them on "auto" / None, e.g.
#   ("convnet_d3", 32): {"layout": "dense", "channels_last": True, "compile": "reduce-overhead"}
# Empty until a GPU session measures the levers: every architecture runs the configuration
# measured on the H200 (grouped, NCHW, compile mode "default").
LEVER_DEFAULTS: dict[tuple[str, int], dict[str, Any]] = {}

# When the compile policy keeps a run eager (a short run, a cold cache), images of this size and
# up train on the sequential engine instead of the eager stacked step: on an H200 the eager
# grouped-convolution step measured 0.73x the reference loop at 128 px (ConvNet-D5) but 1.07x at
# 32 px (ConvNet-D3) (docs/benchmarks.md, 2026-11-26), so "never slower than the field's loop"
# means the loop itself there. Only the grouped layout was measured, so only it falls back.
SEQUENTIAL_WHEN_EAGER_FROM_PX = 128


@dataclass(frozen=True)
class FastOptions:
    """How the fast trainer issues its work (the protocol itself lives in TrainConfig).

    engine: "stacked" (all seeds in one step), "sequential" (one seed after another), "auto"
      (stacked on CUDA unless the model has BatchNorm, sequential on the CPU).
    compile: torch.compile mode of the stacked step. "auto": on CUDA, the policy of
      ladd.trainers.compile decides eager or compiled from the expected work (mode "default",
      or the architecture's LEVER_DEFAULTS); "off" on the CPU. The environment variable
      LADD_FAST_COMPILE overrides "auto" (benchmarks try modes with it). A compile that fails
      falls back to eager with a warning.
    pad_last: pad the last partial batch to full size with zero-weight samples; None = when
      compiling. False while compiling runs that one batch eager at its own size.
    layout: "grouped" | "dense" | "streams" (module doc); "auto" = LEVER_DEFAULTS, else grouped.
    channels_last: NHWC memory for the stacked step's images and convolution weights (and
      inductor's layout pass, which it skips for grouped convolutions by itself); None =
      LEVER_DEFAULTS, else off.
    dsa_draws: "epoch" (each seed draws its ops and uniforms for a whole epoch at once: no
      random-number launches per step) or "step".
    policy: the compile policy's conservative estimates.
    cache_dir: the compile cache (default ladd.trainers.compile.compile_cache_dir()).
    """

    engine: str = "auto"
    compile: str = "auto"
    pad_last: bool | None = None
    layout: str = "auto"
    channels_last: bool | None = None
    dsa_draws: str = "epoch"
    policy: CompilePolicy = field(default_factory=CompilePolicy)
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("engine", self.engine, ENGINES),
            ("compile mode", self.compile, COMPILE_MODES),
            ("layout", self.layout, LAYOUTS),
            ("dsa_draws", self.dsa_draws, DSA_DRAWS),
        ):
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; use one of {', '.join(allowed)}")


@dataclass
class FastTrainedModels(TrainedModels):
    """TrainedModels plus how the fast trainer ran (engine, levers, compile and train seconds)."""

    report: EngineReport | None = None


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@dataclass(frozen=True)
class _Plan:
    """FastOptions resolved for one device and model."""

    engine: str
    mode: str  # "off", a torch.compile mode, or "policy" (decide from the work on CUDA)
    target: str  # the mode the policy compiles in
    pad: bool
    layout: str
    channels_last: bool
    dsa_draws: str
    precision: str  # "fp32" | "bf16" (resolved)

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16"


def _resolve(
    opts: FastOptions,
    dev: torch.device,
    probe: nn.Module,
    spec: ModelSpec | None = None,
    precision: str = "fp32",
) -> _Plan:
    """The plan for this device and model: engine, compile mode, padding, levers, precision."""
    levers = LEVER_DEFAULTS.get((spec.name, spec.image_size), {}) if spec is not None else {}
    engine = opts.engine
    if engine == "auto":
        engine = "stacked" if dev.type == "cuda" and not _has_batchnorm(probe) else "sequential"
    if engine == "stacked" and _has_batchnorm(probe):
        raise ValueError("the stacked engine cannot train BatchNorm models; use sequential")
    layout = opts.layout
    if layout == "auto":
        layout = levers.get("layout", "grouped")
        if layout != "grouped" and not dense_layout_allowed(probe):
            layout = "grouped"
    elif layout != "grouped" and not dense_layout_allowed(probe):
        raise ValueError(
            f"the {layout} layout needs every parameter in Conv2d/Linear/GroupNorm/LayerNorm "
            f"and no BatchNorm; {type(probe).__name__} has others: use layout 'grouped'"
        )
    target = levers.get("compile", "default")
    mode = opts.compile
    if mode == "auto":
        env = os.environ.get("LADD_FAST_COMPILE", "")
        if env:
            if env not in COMPILE_MODES or env == "auto":
                raise ValueError(
                    f"LADD_FAST_COMPILE={env!r}: use one of {', '.join(COMPILE_MODES[1:])}"
                )
            mode = env
        else:
            mode = "policy" if dev.type == "cuda" else "off"
    if engine == "sequential" or (layout == "streams" and dev.type == "cuda"):
        mode = "off"  # the sequential engine is the eager reference math; streams run eager
    if mode == "reduce-overhead" and dev.type != "cuda":
        mode = "default"  # CUDA graphs need CUDA
    channels_last = opts.channels_last
    if channels_last is None:
        channels_last = bool(levers.get("channels_last", False))
    pad = opts.pad_last if opts.pad_last is not None else mode != "off"
    return _Plan(
        engine=engine,
        mode=mode,
        target=target,
        pad=pad,
        layout=layout,
        channels_last=bool(channels_last),
        dsa_draws=opts.dsa_draws,
        precision=resolve_precision(precision, dev),
    )


# ---------------------------------------------------------------------------------------------
# Layout "grouped": vmap over stacked parameters


def stacked_loss(
    base: nn.Module,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    bf16: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed-over-seeds loss and per-seed losses of S stacked models on S batches.

    x (S, B, C, H, W), y (S, B, K) probabilities, weight (S, B) 1 for real samples and 0 for
    padding (None: all real). Each seed's loss is the soft-target cross-entropy averaged over its
    real samples, exactly what the reference computes on that batch; the seeds' parameters are
    disjoint, so the gradient of the sum is each seed's own gradient.
    """
    from torch.func import functional_call, vmap

    def one(p, b, xs):
        return functional_call(base, (p, b), (xs,))

    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = vmap(one, randomness="different")(params, buffers, x)  # (S, B, K)
    per_seed = soft_cross_entropy(logits, y, weight)  # (S,)
    return per_seed.sum(), per_seed.detach()


# ---------------------------------------------------------------------------------------------
# Stacking


def _stack_models(
    models: list[nn.Module], *, channels_last: bool = False
) -> tuple[nn.Module, dict, dict]:
    from torch.func import stack_module_state

    params, buffers = stack_module_state(models)
    out = {}
    for k, v in params.items():
        v = v.detach().clone()
        if channels_last and v.dim() == 5:  # stacked conv weights
            v = conv_weight_channels_last(v)
        out[k] = nn.Parameter(v)
    base = copy.deepcopy(models[0]).to("meta")
    return base, out, buffers


def _unstack_into(models: list[nn.Module], params: dict, buffers: dict) -> None:
    with torch.no_grad():
        for s, model in enumerate(models):
            for name, t in model.named_parameters():
                t.copy_(params[name][s])
            for name, t in model.named_buffers():
                if name in buffers:
                    t.copy_(buffers[name][s])


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
    """One training step of S stacked models in the plan's layout, eager and (maybe) compiled.

    Calling it runs forward and backward for (S, B) sample indices and leaves each seed's
    gradients in `params`; it returns the per-seed losses (S,). `prepare` decides and warms up
    compilation before training (timed separately from the training loop).
    """

    def __init__(
        self,
        models: list[nn.Module],
        data: TrainingData,
        cfg: TrainConfig,
        plan: _Plan,
        spec: ModelSpec,
        dev: torch.device,
        cache_dir: str | None,
        policy: CompilePolicy,
    ) -> None:
        self.plan, self.dev, self.spec, self.cfg = plan, dev, spec, cfg
        self.seeds, self.batch = len(models), cfg.batch_size
        grouped_cl = plan.channels_last and plan.layout == "grouped"
        dense_cl = plan.channels_last and plan.layout != "grouped"
        self.base, self.params, self.buffers = _stack_models(models, channels_last=grouped_cl)
        if dense_cl:  # each seed's slice of a stacked conv weight becomes NHWC
            for k, p in self.params.items():
                if p.dim() == 5:
                    self.params[k] = nn.Parameter(conv_weight_channels_last(p.detach()))
        self.inputs, self.targets = data.inputs, data.targets
        if plan.channels_last:
            self.inputs = self.inputs.contiguous(memory_format=torch.channels_last)
        self.net: nn.Module | None = None
        if plan.layout != "grouped":
            streams = None
            if plan.layout == "streams" and dev.type == "cuda":
                streams = [torch.cuda.Stream(dev) for _ in range(self.seeds)]
            self.net = seeded_model(self.base, self.params, self.seeds, streams=streams)
        self.dsa_cfg = cfg.dsa_config
        self.loss_scale = loss_weight(cfg, data)  # 1, or samples per image ("image_sum")
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
        self.cache_warm: bool | None = None
        self.cache_used = False
        self.tail = "exact"  # set by the loop: "pad" | "eager" | "exact"
        # an augmentation of the gathered batch run before the (compiled) step: (x, B') -> x
        self.pre: Callable[[torch.Tensor, int], torch.Tensor] | None = None

    # -- the function that is compiled --------------------------------------------------------

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        weight: torch.Tensor | None,
        op: torch.Tensor | None,
        u: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (S*B, C, H, W) gathered images, y (S, B, K), weight (S, B) or None, op (S,) and
        u (S, B, 10) DSA draws or None -> (summed loss, per-seed losses (S,))."""
        s, b = y.shape[0], y.shape[1]
        if op is not None:
            x = batched_dsa(
                x, op.repeat_interleave(b), u.reshape(s * b, DSA_UNIFORMS), self.dsa_cfg
            )
        if self.net is not None:
            if self.plan.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return seeded_loss(self.net, x, y, weight, bf16=self.plan.bf16)
        x5 = x.view(s, b, *x.shape[1:])  # (S, B, C, H, W)
        if self.plan.channels_last:
            x5 = grouped_channels_last(x5)
        return stacked_loss(
            self.base, self.params, self.buffers, x5, y, weight, bf16=self.plan.bf16
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
        padded = idx.shape[1] == self.batch
        fn = self.compiled if (self.compiled is not None and padded) else None
        weight = self._weight(n_real, fn is not None) if padded else None  # None: all real
        args = (x, y, weight, op, u)
        if fn is None:
            return self._run(self.loss, args)
        try:
            return self._run(fn, args)
        except Exception as err:
            self._go_eager(f"compiled step failed ({type(err).__name__}: {err}); continuing eager")
            return self._run(
                self.loss, (x, y, self._weight(n_real, False) if padded else None, op, u)
            )

    def _go_eager(self, why: str) -> None:
        """Drop the compiled step after a failure (warned, stacklevel: the trainer's caller):
        the run goes on eager, with no half-accumulated gradient of the failed call."""
        warnings.warn(why, stacklevel=3)
        self.compiled, self.mode = None, "off"
        for p in self.params.values():
            p.grad = None

    # -- deciding and compiling -------------------------------------------------------------------

    def description(self) -> dict[str, Any]:
        """What the compiled graph depends on (the cache index key)."""
        shape = tuple(self.inputs.shape[1:])
        return {
            "arch": self.spec.name,
            "model_options": dict(self.spec.options),
            "image": list(shape),
            "classes": int(self.targets.shape[1]),
            "seeds": self.seeds,
            "batch": self.batch,
            "precision": self.plan.precision,
            "layout": self.plan.layout,
            "channels_last": self.plan.channels_last,
            "dsa": self.dsa_cfg.strategy if self.cfg.augmentation == "dsa" else "",
            "mode": self.mode,
            "device": torch.cuda.get_device_name(self.dev) if self.dev.type == "cuda" else "cpu",
            "torch": torch.__version__,
        }

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
        w = self._weight(self.batch, True)  # the weight the compiled graph takes (all ones)
        out = []
        for _ in range(calls):
            _sync(self.dev)
            t0 = time.perf_counter()
            per_seed = self._run(fn, (x, y, w, op, u)).clone()
            _sync(self.dev)
            out.append(time.perf_counter() - t0)
        for p in self.params.values():
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
        cache = use_compile_cache(self.cache_dir)
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
        grouped_cl = plan.channels_last and plan.layout == "grouped"
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
    """All seeds in one group: one step of the S stacked models (the plan's layout, compiled or
    eager), the batched DSA drawn from each seed's generator, per epoch or per step (_Draws).

    Starting the group decides and warms up compilation (`_StackedStep.prepare`); with
    `may_fall_back`, a run the policy keeps eager at >= SEQUENTIAL_WHEN_EAGER_FROM_PX raises
    _UseSequential there, before any training. `step` is the last group's step (the report).
    """

    name = "stacked"
    tag = "fast, stacked"

    def __init__(
        self,
        spec: ModelSpec,
        cfg: TrainConfig,
        lr: float,
        device: torch.device,
        plan: _Plan,
        opts: FastOptions,
        progress: ProgressFn | None = None,
        *,
        may_fall_back: bool = False,
    ) -> None:
        super().__init__(spec, cfg, lr, device)
        self.plan, self.opts, self.progress, self.may_fall_back = (
            plan,
            opts,
            progress,
            may_fall_back,
        )
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
        cfg, dev, plan, opts = engine.cfg, engine.device, engine.plan, engine.opts
        s_count, t_count, bsz = len(seeds), len(data), cfg.batch_size
        self.seeds = seeds
        self.models = [init_model(engine.spec, seed).to(dev).train() for seed in seeds]
        step = _StackedStep(
            self.models, data, cfg, plan, engine.spec, dev, opts.cache_dir, opts.policy
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
        if cfg.augmentation == "rded":  # per seed, from its generator, outside the graph
            step.pre = partial(_rded_per_seed, gens=gens)
        self.tensors = float_state(list(step.params.values()), list(step.buffers.values()))
        passes = cfg.passes
        # Steps the compiled function would run: all (padded tail) or the full ones (eager tail).
        per_epoch = t_count // bsz if opts.pad_last is False else math.ceil(t_count / bsz)
        step.prepare(passes * per_epoch, engine.progress, s_count * passes)
        if (
            engine.may_fall_back
            and step.mode == "off"
            and plan.mode == "policy"
            and plan.layout == "grouped"
            and int(data.inputs.shape[-1]) >= SEQUENTIAL_WHEN_EAGER_FROM_PX
        ):
            raise _UseSequential(
                f"{step.decision}; eager grouped steps lose to the reference loop at "
                f">= {SEQUENTIAL_WHEN_EAGER_FROM_PX} px: sequential engine",
                step.seconds_probe,
            )
        self.pad = opts.pad_last if opts.pad_last is not None else step.mode != "off"
        steps = math.ceil(t_count / bsz)
        self.draws = _Draws(cfg, gens, dev, plan.dsa_draws, steps, bsz)
        padding = self.pad and steps * bsz > t_count
        step.tail = "pad" if padding else ("eager" if step.mode != "off" else "exact")

    def begin_pass(self) -> None:
        self.draws.new_epoch()

    def step(self, b: int, idx: torch.Tensor, n_real: int) -> torch.Tensor:
        op, u = self.draws.at(b, idx.shape[1])
        return self.fn(idx, n_real, op, u)

    def live(self) -> list[nn.Module]:
        _unstack_into(self.models, self.fn.params, self.fn.buffers)
        return self.models

    def state(self) -> dict[str, torch.Tensor]:
        out = {f"p.{k}": v for k, v in self.fn.params.items()}
        out.update({f"b.{k}": v for k, v in self.fn.buffers.items()})
        return out

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, t in self.fn.params.items():
                t.copy_(tensors[f"p.{name}"])
            for name, t in self.fn.buffers.items():
                t.copy_(tensors[f"b.{name}"])


def _rded_per_seed(x: torch.Tensor, b: int, *, gens: list[torch.Generator]) -> torch.Tensor:
    """RDED's augmentation of the stacked batch x (S*b, ...), each seed's b samples from its own
    generator: the draws the reference engine makes for that seed's batch."""
    parts = x.split(b)
    return torch.cat([rded_augment(p, g) for p, g in zip(parts, gens, strict=True)])


class _UseSequential(Exception):
    """The stacked step was not worth it for this run (raised before any training)."""

    def __init__(self, reason: str, seconds_probe: float) -> None:
        super().__init__(reason)
        self.reason, self.seconds_probe = reason, seconds_probe


def _saved_engine(checkpoint: TrainCheckpoint | None) -> str | None:
    """Which of the fast trainer's engines wrote this run's saved state (None: nothing to
    resume): "sequential" (the reference engine, per seed) or "stacked"."""
    meta = checkpoint.saved_meta() if checkpoint is not None else None
    if meta is None:
        return None
    return "sequential" if saved_engine(meta) == "reference" else "stacked"


def _train_sequential(
    data: TrainingData,
    spec: ModelSpec,
    cfg: TrainConfig,
    lr: float,
    dev: torch.device,
    plan: _Plan,
    hooks: TrainHooks,
    *,
    decision: str | None = None,
    seconds_probe: float = 0.0,
) -> FastTrainedModels:
    """The reference trainer, NHWC on CUDA (measured slower on the CPU)."""
    res = train_reference(
        data,
        spec,
        replace(cfg, precision=plan.precision),
        lr=lr,
        device=dev,
        hooks=hooks,
        channels_last=dev.type == "cuda",
    )
    rep = EngineReport(
        engine="sequential",
        layout="separate",
        compile_mode="off",
        precision=plan.precision if dev.type == "cuda" else "fp32",
        channels_last=dev.type == "cuda",
        dsa_draws="per batch (reference)",
        tail="exact",
        seconds_probe=seconds_probe,
        seconds_train=res.seconds,
        decision=decision or "",
    )
    seconds = res.seconds + seconds_probe
    return FastTrainedModels(res.models, res.loss_curves, seconds, res.flops, report=rep)


def train_fast(
    data: TrainingData,
    spec: ModelSpec,
    cfg: TrainConfig,
    *,
    device: str | torch.device,
    lr: float | None = None,
    hooks: TrainHooks | None = None,
    options: FastOptions | None = None,
    **old_hooks: Unpack[HookArgs],
) -> FastTrainedModels:
    """Train one model per seed of cfg.seeds with the reference protocol, faster (see module doc).

    Drop-in for `ladd.trainers.reference.train_reference` (same arguments; a TrainedModels with
    an EngineReport added): the models start from the same weights per seed; the results agree in
    distribution, not bit for bit (different random streams for DSA, grouped kernels, bf16).
    A saved state is resumed by the engine that wrote it, whatever the plan says now.
    """
    opts = options or FastOptions()
    hooks = TrainHooks.of(hooks, **old_hooks)
    dev = resolve_device(device)
    cfg = cfg.resolved(int(data.inputs.shape[-1]))
    lr = base_lr(cfg, spec) if lr is None else float(lr)
    data = data.to(dev)
    plan = _resolve(opts, dev, init_model(spec, 0), spec, cfg.precision)
    note = None
    saved = _saved_engine(hooks.checkpoint)
    if saved is not None and saved != plan.engine:  # only the engine that saved it can resume
        plan = replace(plan, engine=saved, mode="off" if saved == "sequential" else plan.mode)
        note = f"resuming the state the {saved} engine saved"
    if plan.engine == "sequential":
        return _train_sequential(data, spec, cfg, lr, dev, plan, hooks, decision=note)
    t0 = time.perf_counter()
    engine = StackedEngine(
        spec,
        cfg,
        lr,
        dev,
        plan,
        opts,
        hooks.progress,
        may_fall_back=saved is None and opts.engine == "auto",  # "stacked" asked: stacked
    )
    try:
        res = fit(engine, data, cfg, hooks)
    except _UseSequential as fall_back:
        return _train_sequential(
            data,
            spec,
            cfg,
            lr,
            dev,
            plan,
            hooks,
            decision=fall_back.reason,
            seconds_probe=fall_back.seconds_probe,
        )
    _sync(dev)
    seconds = time.perf_counter() - t0
    step = engine.step
    assert step is not None  # fit started the group
    rep = EngineReport(
        engine="stacked",
        layout=plan.layout,
        compile_mode=step.mode,
        precision=plan.precision if dev.type == "cuda" else "fp32",
        channels_last=plan.channels_last,
        dsa_draws=plan.dsa_draws,
        tail=step.tail,
        seconds_compile=step.seconds_compile,
        seconds_probe=step.seconds_probe,
        seconds_train=max(0.0, seconds - step.seconds_compile - step.seconds_probe),
        compiled_loss_diff=step.compiled_loss_diff,
        decision="; ".join(x for x in (note, step.decision) if x),
        cache_dir=step.cache_dir if step.cache_used else None,
        cache_warm=step.cache_warm,
    )
    return FastTrainedModels(res.models, res.loss_curves, seconds, report=rep)


# ---------------------------------------------------------------------------------------------
# Warm-up (ladd.trainers.warmup)


@dataclass(frozen=True)
class WarmupReport:
    """What a warm-up did: the step it prepared and what that cost (ladd.trainers.warmup)."""

    key: str
    description: dict[str, Any]
    device: str
    compile_mode: str
    seconds_compile: float
    eager_step_seconds: float | None
    compiled_step_seconds: float | None
    cache_dir: str | None
    artifacts: str | None = None  # mega-cache artifacts written by `warmup(export=...)`
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def warm_step(
    *,
    arch: str,
    image_size: int,
    num_classes: int,
    seeds: int,
    batch_size: int,
    precision: str,
    channels: int,
    model_options: dict[str, Any],
    dsa: bool,
    options: FastOptions | None,
    device: str | torch.device,
    cache_dir: str | Path | None,
) -> WarmupReport:
    """Build the stacked step for these shapes and compile it in the mode long runs use (the
    compile cache keeps it); on a CPU time one eager step instead. See ladd.trainers.warmup."""
    opts = options or FastOptions()
    if cache_dir is not None:
        opts = replace(opts, cache_dir=str(cache_dir))
    dev = resolve_device(device)
    resolved = resolve_precision(precision, dev)
    cfg = TrainConfig(
        arch=arch,
        epochs=1,
        seeds=tuple(range(seeds)),
        batch_size=batch_size,
        precision=resolved,
        dsa=dsa,
        model_options=dict(model_options),
        lr=0.01,
    )
    spec = model_spec(cfg, num_classes, image_size, channels)
    probe = init_model(spec, 0)
    plan = _resolve(opts, dev, probe, spec, resolved)
    notes: list[str] = []
    if plan.engine == "sequential":
        notes.append(f"{dev.type}: the fast trainer runs the sequential engine, nothing to compile")
        opts = replace(opts, engine="stacked", compile="off")
        plan = _resolve(opts, dev, probe, spec, resolved)
    if plan.mode == "policy":
        plan = replace(plan, mode=plan.target)  # warm what a long run compiles
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, channels, image_size, image_size, generator=g)
    y = torch.softmax(torch.randn(batch_size, num_classes, generator=g), dim=1)
    data = TrainingData(x, y, batch_size, 0, num_classes).to(dev)
    models = [init_model(spec, s).to(dev).train() for s in range(seeds)]
    step = _StackedStep(models, data, cfg, plan, spec, dev, opts.cache_dir, opts.policy)
    eager = statistics.median(step._timed(step.loss, 3)[0][1:])
    step.prepare(1, eager_step=eager)
    if step.compiled is None:
        notes.append("compile off: nothing cached")
    return WarmupReport(
        key=step_key(step.description()),
        description=step.description(),
        device=str(dev),
        compile_mode=step.mode,
        seconds_compile=step.seconds_compile,
        eager_step_seconds=eager,
        compiled_step_seconds=step.compiled_step_seconds,
        cache_dir=step.cache_dir if step.cache_used else None,
        notes=notes,
    )
