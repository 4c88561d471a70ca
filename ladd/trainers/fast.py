"""The fast deployment trainer: the reference protocol, several seeds per step, compiled on CUDA.

Same protocol as `ladd.trainers.reference` (ladd.training holds the rules both use): per seed a
fresh model (`init_model(spec, seed)`, identical weights), its own shuffled batches of 256 each
epoch, one DSA op per batch with per-sample parameters, the soft-target cross-entropy averaged
over the batch, the protocol's SGD and lr schedule. What changes is how the work is issued:

- **stacked** engine (default on CUDA): the S seeds are one stacked model (torch.func
  `stack_module_state` + `functional_call` under `vmap`, i.e. grouped convolutions), each seed
  fed its own batch, so a step is one launch sequence for S x 256 samples instead of S. SGD is
  element-wise, so one optimiser over the stacked tensors equals S per-seed optimisers. DSA is
  vectorised and branch-free (`batched_dsa`: every seed draws its op, every sample its
  parameters, on the device), so the whole step is one static graph for `torch.compile` (and
  CUDA graphs with mode "reduce-overhead"; see `FastOptions.compile`). The last partial batch of an epoch is padded to 256 with zero-weight samples so that
  shapes never change (no recompilation); its loss is still the mean over its real samples.
- **sequential** engine (default on CPU, and for models with BatchNorm): the reference loop per
  seed with lighter bookkeeping. On a 2-core CPU grouped convolutions are slower than separate
  ones (measured), so this is what "never slower than the reference on the CPU" means.

Precision: "fp32", or "bf16" = autocast to bfloat16 on CUDA with float32 master weights and a
float32 loss (the CPU path always computes in float32).
"""

from __future__ import annotations

import copy
import math
import os
import threading
import time
import types
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ladd.device import resolve_device
from ladd.dsa import DSA_OPS, DSAConfig
from ladd.models import ModelSpec
from ladd.progress import ProgressEvent, ProgressFn
from ladd.trainers.reference import train_reference
from ladd.training import (
    Monitor,
    PassEnd,
    TrainCheckpoint,
    TrainConfig,
    TrainedModels,
    TrainingData,
    TrainingStopped,
    base_lr,
    check_finite,
    float_state,
    init_model,
    loss_weight,
    make_optimizer,
    soft_cross_entropy,
)

__all__ = [
    "COMPILE_MODES",
    "ENGINES",
    "FastOptions",
    "batched_dsa",
    "draw_dsa_params",
    "stacked_loss",
    "train_fast",
]

ENGINES = ("auto", "stacked", "sequential")
COMPILE_MODES = ("auto", "off", "default", "reduce-overhead", "max-autotune-no-cudagraphs")
_NUM_U = 10  # uniforms drawn per sample for the vectorised DSA (see draw_dsa_params)


@dataclass(frozen=True)
class FastOptions:
    """How the fast trainer issues its work (the protocol itself lives in TrainConfig).

    engine: "stacked" (all seeds in one vmapped step), "sequential" (one seed after another),
      "auto" (stacked on CUDA unless the model has BatchNorm, sequential on the CPU).
    compile: torch.compile mode for the stacked step; "auto" = "default" on CUDA, "off" on CPU.
      The environment variable LADD_FAST_COMPILE overrides "auto" (benchmarks try modes with it).
      A compile that fails falls back to eager with a warning.
    pad_last: pad the last partial batch to full size with zero-weight samples (static shapes);
      None = when compiling.
    """

    engine: str = "auto"
    compile: str = "auto"
    pad_last: bool | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; use one of {', '.join(ENGINES)}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(
                f"unknown compile mode {self.compile!r}; use one of {', '.join(COMPILE_MODES)}"
            )


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _resolve(opts: FastOptions, dev: torch.device, probe: nn.Module) -> tuple[str, str, bool]:
    """(engine, compile mode, pad_last) for this device and model."""
    engine = opts.engine
    if engine == "auto":
        engine = "stacked" if dev.type == "cuda" and not _has_batchnorm(probe) else "sequential"
    if engine == "stacked" and _has_batchnorm(probe):
        raise ValueError("the stacked engine cannot train BatchNorm models; use sequential")
    mode = opts.compile
    if mode == "auto":
        mode = os.environ.get("LADD_FAST_COMPILE", "") or (
            "default" if dev.type == "cuda" else "off"
        )
        if mode not in COMPILE_MODES or mode == "auto":
            raise ValueError(f"LADD_FAST_COMPILE={mode!r}: use one of {', '.join(COMPILE_MODES)}")
    if engine == "sequential":
        mode = "off"  # the sequential engine is the eager reference math
    pad = opts.pad_last if opts.pad_last is not None else mode != "off"
    return engine, mode, pad


# ---------------------------------------------------------------------------------------------
# Vectorised DSA: one op per seed's batch, parameters per sample, no host round trips


def draw_dsa_params(
    num_seeds: int, batch: int, cfg: DSAConfig, generators: list[torch.Generator], device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-seed op codes (S,) as indices into DSA_OPS, and uniforms (S, B, 10) for the params.

    Each seed draws from its own generator (on `device`), so a seed's augmentation stream does
    not depend on which other seeds train beside it.
    """
    ops = torch.tensor([DSA_OPS.index(o) for o in cfg.ops], device=device)
    picks, us = [], []
    for g in generators[:num_seeds]:
        picks.append(torch.randint(len(ops), (1,), generator=g, device=device))
        us.append(torch.rand(batch, _NUM_U, generator=g, device=device))
    return ops[torch.cat(picks)], torch.stack(us)  # (S,), (S, B, 10)


def batched_dsa(x: torch.Tensor, op: torch.Tensor, u: torch.Tensor, cfg: DSAConfig) -> torch.Tensor:
    """DSA with a per-sample op code and per-sample uniforms: (N, C, H, W) -> (N, C, H, W).

    `op` (N,) holds indices into DSA_OPS; `u` (N, 10) uniforms in [0, 1). Same distributions as
    ladd.dsa (color: u0..u2; crop: u3, u4; cutout: u5, u6; flip: u7; scale: u8, u9; rotate:
    u8). Branch-free: every op's result is computed and the chosen one is kept with torch.where,
    so the graph is static (compile, CUDA graphs). Samples whose op is not in the strategy pass
    through unchanged.
    """
    n, _, h, w = x.shape
    dev, dt = x.device, x.dtype
    code = {name: i for i, name in enumerate(DSA_OPS)}
    u = u.to(dt)

    def pick(name: str) -> torch.Tensor:  # (N, 1, 1, 1) bool
        return (op == code[name]).view(n, 1, 1, 1)

    out = x
    # color: brightness, saturation, contrast in that order
    xc = x + (u[:, 0] - 0.5).view(n, 1, 1, 1)
    m = xc.mean(dim=1, keepdim=True)
    xc = (xc - m) * (u[:, 1] * 2.0).view(n, 1, 1, 1) + m
    m = xc.mean(dim=(1, 2, 3), keepdim=True)
    xc = (xc - m) * (u[:, 2] + 0.5).view(n, 1, 1, 1) + m
    out = torch.where(pick("color"), xc, out)
    # crop: integer shift in [-s, s], zero fill (out[i, j] = x[i - dy, j - dx])
    s = int(h * cfg.crop_ratio + 0.5)
    if s > 0:
        dy = (u[:, 3] * (2 * s + 1)).floor().long().clamp_(max=2 * s) - s  # (N,)
        dx = (u[:, 4] * (2 * s + 1)).floor().long().clamp_(max=2 * s) - s
        rows = torch.arange(h, device=dev).unsqueeze(0) - dy.unsqueeze(1)  # (N, H)
        cols = torch.arange(w, device=dev).unsqueeze(0) - dx.unsqueeze(1)  # (N, W)
        ok = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        shifted = x.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand_as(x))
        shifted = shifted.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand_as(x))
        out = torch.where(pick("crop"), shifted * ok[:, None].to(dt), out)
    # flip: horizontal with probability p
    flip = pick("flip") & (u[:, 7] < cfg.flip_p).view(n, 1, 1, 1)
    out = torch.where(flip, x.flip(3), out)
    # scale / rotate: one affine grid sample, identity for the other samples
    lo = 1.0 / cfg.scale_ratio
    sx = u[:, 8] * (cfg.scale_ratio - lo) + lo
    sy = u[:, 9] * (cfg.scale_ratio - lo) + lo
    ang = (u[:, 8] - 0.5) * 2.0 * cfg.rotate_degrees * math.pi / 180.0
    cos, sin = torch.cos(ang), torch.sin(ang)
    is_scale, is_rot = op == code["scale"], op == code["rotate"]
    zero = torch.zeros_like(sx)
    a00 = torch.where(is_scale, sx, cos)
    a11 = torch.where(is_scale, sy, cos)
    a01 = torch.where(is_scale, zero, sin)
    a10 = torch.where(is_scale, zero, -sin)
    theta = torch.stack([a00, a01, zero, a10, a11, zero], dim=1).view(n, 2, 3)
    grid = F.affine_grid(theta, [n, x.shape[1], h, w], align_corners=True)
    warped = F.grid_sample(x, grid, align_corners=True)
    out = torch.where((is_scale | is_rot).view(n, 1, 1, 1), warped, out)
    # cutout: zero a square of side round(H * ratio) at a random centre
    side = int(h * cfg.cutout_ratio + 0.5)
    cy = (u[:, 5] * h).floor().long().clamp_(max=h - 1)
    cx = (u[:, 6] * w).floor().long().clamp_(max=w - 1)
    top, left = cy - side // 2, cx - side // 2
    ys, xs = torch.arange(h, device=dev), torch.arange(w, device=dev)
    in_y = (ys[None] >= top[:, None]) & (ys[None] < (top + side)[:, None])  # (N, H)
    in_x = (xs[None] >= left[:, None]) & (xs[None] < (left + side)[:, None])  # (N, W)
    hole = (in_y[:, :, None] & in_x[:, None, :])[:, None] & pick("cutout")  # (N, 1, H, W)
    return out.masked_fill(hole, 0.0)


# ---------------------------------------------------------------------------------------------
# The stacked step


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


def _stack_models(models: list[nn.Module]) -> tuple[nn.Module, dict, dict]:
    from torch.func import stack_module_state

    params, buffers = stack_module_state(models)
    params = {k: nn.Parameter(v.detach().clone()) for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    return base, params, buffers


def _unstack_into(models: list[nn.Module], params: dict, buffers: dict) -> None:
    with torch.no_grad():
        for s, model in enumerate(models):
            for name, t in model.named_parameters():
                t.copy_(params[name][s])
            for name, t in model.named_buffers():
                if name in buffers:
                    t.copy_(buffers[name][s])


class _Epochs:
    """Per-seed shuffles of one epoch as (S, steps * B) indices, padded when asked."""

    def __init__(self, t: int, batch: int, gens: list[torch.Generator], dev, pad: bool) -> None:
        self.t, self.batch, self.gens, self.dev, self.pad = t, batch, gens, dev, pad
        self.steps = math.ceil(t / batch)
        self.padded = self.steps * batch
        if pad and self.padded > t:
            w = torch.zeros(self.padded, device=dev)
            w[:t] = 1.0
            self.weight = w  # (steps * B,)
        else:
            self.weight = None

    def order(self) -> torch.Tensor:
        perms = torch.stack(
            [torch.randperm(self.t, generator=g, device=self.dev) for g in self.gens]
        )  # (S, T)
        if self.weight is not None:
            fill = torch.zeros(
                len(self.gens), self.padded - self.t, dtype=perms.dtype, device=self.dev
            )
            perms = torch.cat([perms, fill], dim=1)  # (S, steps * B); padding reads sample 0
        return perms


def _compile(fn, mode: str):
    if mode == "off":
        return fn
    # Dynamo keeps its compiled variants on the function's code object, shared by every run of
    # this module; a long-lived process (the dashboard) would hit the recompile limit and drop
    # to eager. A private copy of the code object gives each run its own cache.
    fresh = types.FunctionType(
        fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    try:
        return torch.compile(fresh, mode=mode, dynamic=False)
    except Exception as err:  # compile unavailable on this platform
        warnings.warn(
            f"torch.compile unavailable ({err}); the fast trainer runs eager", stacklevel=3
        )
        return fn


def _train_stacked(
    data: TrainingData,
    spec: ModelSpec,
    cfg: TrainConfig,
    lr: float,
    dev: torch.device,
    mode: str,
    pad: bool,
    progress: ProgressFn | None,
    stop: threading.Event | None,
    monitor: Monitor | None = None,
    monitor_every: int = 0,
    checkpoint: TrainCheckpoint | None = None,
) -> tuple[list[nn.Module], list[list[float]]]:
    seeds = cfg.seeds
    s_count, t_count, bsz = len(seeds), len(data), cfg.batch_size
    models = [init_model(spec, seed).to(dev).train() for seed in seeds]
    base, params, buffers = _stack_models(models)
    bf16 = cfg.precision == "bf16" and dev.type == "cuda"
    opt = make_optimizer(params.values(), cfg, lr, foreach=True)
    end = PassEnd(
        cfg,
        opt,
        float_state(list(params.values()), list(buffers.values())),
        seeds,
        stacked=True,
        monitor=monitor,
        monitor_every=monitor_every,
    )
    weight_scale = loss_weight(cfg, data)
    gens = [torch.Generator(device=dev).manual_seed(int(s)) for s in seeds]
    epochs = _Epochs(t_count, bsz, gens, dev, pad)
    dsa_cfg = cfg.dsa_config
    use_dsa = cfg.dsa and bool(dsa_cfg.ops)
    inputs, targets = data.inputs, data.targets
    shape = inputs.shape[1:]

    def step_loss(idx, weight, op, u):  # idx (S, B) -> summed loss, per-seed losses (S,)
        x = inputs[idx.reshape(-1)]  # (S*B, C, H, W)
        if op is not None:
            x = batched_dsa(x, op.repeat_interleave(idx.shape[1]), u.reshape(-1, _NUM_U), dsa_cfg)
        x = x.reshape(idx.shape[0], idx.shape[1], *shape)
        return stacked_loss(base, params, buffers, x, targets[idx], weight, bf16=bf16)

    compiled = _compile(step_loss, mode)
    graphs = mode == "reduce-overhead"
    passes = cfg.passes
    total = s_count * passes
    curves_dev: list[torch.Tensor] = []  # per epoch (S,) mean losses, read lazily
    curves: list[list[float]] = [[] for _ in seeds]

    def report(epoch: int) -> None:
        vals = curves_dev[epoch].tolist()  # syncs on an epoch already issued, not the current
        check_finite(curves_dev[epoch], epoch, seeds)  # a pass late: no stall on the newest
        for s, v in enumerate(vals):
            curves[s].append(v)
        if progress is not None:
            progress(
                ProgressEvent(
                    "train",
                    (epoch + 1) * s_count,
                    total,
                    sum(vals) / len(vals),
                    f"seeds {', '.join(map(str, seeds))} (fast, stacked)",
                    metrics={"epoch": epoch + 1, "seeds": list(seeds), "loss": vals},
                )
            )

    def live_models() -> list[nn.Module]:
        _unstack_into(models, params, buffers)
        return models

    reported = [0]

    def flush(upto: int) -> None:  # report every pass up to `upto` not reported yet
        while reported[0] <= upto:
            report(reported[0])
            reported[0] += 1

    first = 0
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        tensors, meta = saved
        with torch.no_grad():
            for name, t in params.items():
                t.copy_(tensors[f"p.{name}"])
            for name, t in buffers.items():
                t.copy_(tensors[f"b.{name}"])
        end.restore("", tensors, meta, meta["pass"])
        for i, gen in enumerate(gens):
            gen.set_state(tensors[f"rng.{i}"].cpu())
        first = reported[0] = meta["pass"]
        for s_i, c in enumerate(meta["curves"]):
            curves[s_i].extend(c)
        curves_dev.extend([torch.zeros(s_count, device=dev)] * first)  # already reported

    for epoch in range(first, passes):
        order = epochs.order()
        running = torch.zeros(s_count, device=dev)
        for b in range(epochs.steps):
            if stop is not None and stop.is_set():
                raise TrainingStopped(f"stopped at epoch {epoch} (seeds {list(seeds)})")
            idx = order[:, b * bsz : (b + 1) * bsz]  # (S, B') B' = B unless the last, unpadded
            weight = None
            if epochs.weight is not None:
                weight = epochs.weight[b * bsz : (b + 1) * bsz].expand(s_count, -1)
            n_real = min(bsz, t_count - b * bsz)
            op = u = None
            if use_dsa:
                op, u = draw_dsa_params(s_count, idx.shape[1], dsa_cfg, gens, dev)
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()
            opt.zero_grad(set_to_none=True)
            try:
                loss, per_seed = compiled(idx, weight, op, u)
                (loss * weight_scale if weight_scale != 1.0 else loss).backward()
            except Exception as err:
                if mode == "off" or compiled is step_loss:
                    raise
                warnings.warn(
                    f"compiled step failed ({type(err).__name__}: {err}); continuing eager",
                    stacklevel=2,
                )
                compiled, graphs = step_loss, False
                opt.zero_grad(set_to_none=True)
                loss, per_seed = compiled(idx, weight, op, u)
                (loss * weight_scale if weight_scale != 1.0 else loss).backward()
            opt.step()
            running += per_seed * n_real
        curves_dev.append(running / t_count)
        end(epoch, None, live_models)  # the finite check runs in report(), a pass late
        flush(epoch - 1)
        if checkpoint is not None and checkpoint.due(epoch + 1 == passes):
            flush(epoch)  # the state at this pass boundary, curves included
            state, extra = end.state("")
            state.update({f"p.{k}": v for k, v in params.items()})
            state.update({f"b.{k}": v for k, v in buffers.items()})
            state.update({f"rng.{i}": gen.get_state() for i, gen in enumerate(gens)})
            checkpoint.save(state, {"pass": epoch + 1, "curves": curves, **extra})
    flush(passes - 1)
    _unstack_into(models, params, buffers)
    return [m.eval() for m in end.final(models)], curves


def train_fast(
    data: TrainingData,
    spec: ModelSpec,
    cfg: TrainConfig,
    *,
    device: str | torch.device,
    lr: float | None = None,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    monitor: Monitor | None = None,
    monitor_every: int = 0,
    checkpoint: TrainCheckpoint | None = None,
    options: FastOptions | None = None,
) -> TrainedModels:
    """Train one model per seed of cfg.seeds with the reference protocol, faster (see module doc).

    Drop-in for `ladd.trainers.reference.train_reference` (same arguments, same TrainedModels):
    the models start from the same weights per seed; the results agree in distribution, not bit
    for bit (different random streams for DSA, grouped kernels, optional bf16).
    """
    opts = options or FastOptions()
    dev = resolve_device(device)
    cfg = cfg.resolved(int(data.inputs.shape[-1]))
    lr = base_lr(cfg, spec) if lr is None else float(lr)
    if len(data) == 0:
        raise ValueError("the training set is empty")
    data = data.to(dev)
    engine, mode, pad = _resolve(opts, dev, init_model(spec, 0))
    if engine == "sequential":
        # The reference math per seed, NHWC on CUDA (measured slower on the CPU).
        return train_reference(
            data,
            spec,
            cfg,
            lr=lr,
            device=dev,
            progress=progress,
            stop=stop,
            monitor=monitor,
            monitor_every=monitor_every,
            checkpoint=checkpoint,
            channels_last=dev.type == "cuda",
        )
    t0 = time.perf_counter()
    models, curves = _train_stacked(
        data, spec, cfg, lr, dev, mode, pad, progress, stop, monitor, monitor_every, checkpoint
    )
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return TrainedModels(models, curves, time.perf_counter() - t0)
