"""The one training loop: `fit` trains a model per seed with any engine under ladd.training's rules.

`fit` owns what every run does, whatever issues the work:
- the random streams: per seed one torch.Generator on the device, seeded with the seed, that
  shuffles the seed's samples every pass (`Shuffle`: torch.randperm) and that the engine draws
  the seed's DSA from, in the order the engine draws it;
- the stop check before every step, the pass end (ladd.training.PassEnd: the lr schedule, the
  EMA, the monitor), the loss curves, the finite-loss check and one progress event per pass of
  a seed group (the losses are read a pass late, so that no step waits on the device);
- the checkpoint, in one format (`SavedState`: the engine's state, the seed group, the pass, the
  curves, the random streams, plus the optimiser, the EMA and the finished seeds' models), in
  the file ladd.training.TrainCheckpoint keeps. The two layouts earlier versions wrote (the
  reference loop's and the stacked engine's) are read too; a state that cannot be resumed, or
  a file that cannot be read, is reported (a warning and a progress note saying why) and the
  run starts over.

An engine (`Engine`) only says how the work is issued: which seeds train together (`groups`)
and, for a group it starts (`Group`): one step on a batch of sample indices, its tensors for a
checkpoint, the trained models. ladd.trainers.reference trains one seed per group (the field's
loop); ladd.trainers.stacked trains all seeds as one group (one vmapped step).
What a caller hooks in (progress, stop, monitor, checkpoint) travels as one `TrainHooks`.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import nn

from ladd.plan import TrainPlan
from ladd.progress import ProgressEvent, ProgressFn
from ladd.training import (
    Monitor,
    PassEnd,
    SavedState,
    TrainCheckpoint,
    TrainedModels,
    TrainingData,
    TrainingStopped,
    check_finite,
    check_finite_weights,
    init_model,
)

__all__ = ["Engine", "Group", "Shuffle", "TrainHooks", "fit"]


# ---------------------------------------------------------------------------------------------
# Hooks


@dataclass(frozen=True)
class TrainHooks:
    """What a caller hooks into a training run, in one object.

    progress: a ProgressEvent per pass of each seed group, and notes (compiling, a saved state
      refused). stop: when set, the run ends with TrainingStopped before its next step.
    monitor(pass, seeds, models): every `monitor_every` passes (and after the last) with the
      models as they would be tested then. checkpoint: the run's TrainCheckpoint: the state is
      saved at pass boundaries and a run of the same key resumes from it.
    """

    progress: ProgressFn | None = None
    stop: threading.Event | None = None
    monitor: Monitor | None = None
    monitor_every: int = 0
    checkpoint: TrainCheckpoint | None = None


# ---------------------------------------------------------------------------------------------
# The shuffle


class Shuffle:
    """The seeds' orders of the samples for one pass: (S, steps * B) indices, one
    torch.randperm per seed from its own generator (on the device). With `pad` the last partial
    batch is filled up with sample 0 (the engine weighs those samples 0: static shapes for a
    compiled step)."""

    def __init__(
        self, t: int, batch: int, gens: list[torch.Generator], dev: torch.device, pad: bool
    ) -> None:
        self.t, self.batch, self.gens, self.dev = t, batch, gens, dev
        self.steps = math.ceil(t / batch)
        self.padded = self.steps * batch
        self.padding = pad and self.padded > t

    def begin(self, p: int) -> _Shuffled:
        """Pass p's batches: a fresh shuffle per seed (p itself does not matter)."""
        return _Shuffled(self.order(), self.steps, self.batch, self.t)

    def order(self) -> torch.Tensor:
        perms = torch.stack(
            [torch.randperm(self.t, generator=g, device=self.dev) for g in self.gens]
        )  # (S, T)
        if self.padding:
            fill = torch.zeros(
                len(self.gens), self.padded - self.t, dtype=perms.dtype, device=self.dev
            )
            perms = torch.cat([perms, fill], dim=1)  # (S, steps * B); padding reads sample 0
        return perms


class _Shuffled:
    """One pass of a Shuffle: batch b is columns b*B..(b+1)*B of the order (S, steps * B)."""

    def __init__(self, order: torch.Tensor, steps: int, batch: int, t: int) -> None:
        self.order, self.steps, self.bsz, self.samples = order, steps, batch, t

    def batch(self, b: int) -> tuple[torch.Tensor, int]:
        """(idx (S, B'), n_real): B' = B unless an unpadded tail; the first n_real are real."""
        idx = self.order[:, b * self.bsz : (b + 1) * self.bsz]
        return idx, min(self.bsz, self.samples - b * self.bsz)


# ---------------------------------------------------------------------------------------------
# The engine interface


class Group(ABC):
    """One group of seeds in training, as an engine issues its work (made by Engine.start).

    An engine's group sets: `seeds`; `optimizer` (the protocol's SGD, ladd.training
    make_optimizer); `tensors`, what it trains plus its float buffers (ladd.training float_state:
    the EMA follows them), stacked (S, ...) over the seeds when `stacked`; `pad`: whether the
    shuffle pads the last partial batch.
    """

    seeds: tuple[int, ...]
    optimizer: torch.optim.Optimizer
    tensors: list[torch.Tensor]
    stacked: bool = False
    pad: bool = False
    # tensors the optimiser trains beside the model's (a label strategy's learned weights):
    # their optimiser state is checkpointed, no EMA follows them
    extras: tuple[torch.Tensor, ...] = ()

    def begin_pass(self) -> None:  # noqa: B027 (an optional hook: most groups need nothing)
        """Called before each pass's steps, after its shuffle (e.g. draw a pass's DSA at once)."""

    @abstractmethod
    def step(self, b: int, idx: torch.Tensor, n_real: int) -> torch.Tensor:
        """Forward and backward of step b of the pass on the batch idx (S, B') of sample
        indices, each seed's own row (the first n_real of the B' are real samples, the rest
        padding); leaves the gradients for the optimiser and returns each seed's loss (S,)."""

    @abstractmethod
    def live(self) -> list[nn.Module]:
        """The group's models as they are now, one per seed (what the monitor scores)."""

    @abstractmethod
    def state(self) -> dict[str, torch.Tensor]:
        """The model tensors a checkpoint needs to continue this group exactly."""

    @abstractmethod
    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Continue from `state()`'s tensors (same keys and shapes, checked by fit)."""

    def trained(self) -> list[nn.Module]:
        """The models after the last pass (fit copies the EMA's weights in under GLaD)."""
        return self.live()

    def summary(self) -> dict | None:
        """A label strategy's end state for the run's record (None: LADD's default)."""
        return None


class Engine(ABC):
    """How the work of training is issued: which seeds train together and how (see Group).

    `name` is written into every checkpoint: only this engine resumes it. `tag` is shown after
    the seeds in progress messages. It reads the settled plan only (`cfg` is plan.config,
    `lr` the plan's lr); `device` is the plan's unless a rank's own is given.
    """

    name: str = ""
    tag: str = ""

    def __init__(self, plan: TrainPlan, device: torch.device | None = None) -> None:
        self.plan, self.spec, self.cfg, self.lr = plan, plan.spec, plan.config, plan.lr
        self.device = device if device is not None else plan.torch_device

    @abstractmethod
    def groups(self, seeds: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The seeds in the groups they train in, in order (their concatenation is `seeds`)."""

    @abstractmethod
    def start(
        self, seeds: tuple[int, ...], gens: list[torch.Generator], data: TrainingData
    ) -> Group:
        """A group of fresh models (init_model(spec, seed)) for `seeds`; gens[i] is seed i's
        generator (DSA draws come from it, after the pass's shuffle)."""

    def finished(self, seed: int, state: dict[str, torch.Tensor]) -> nn.Module:
        """A finished seed's model from its saved state dict (resuming a later group)."""
        model = init_model(self.spec, seed)
        model.load_state_dict(state)
        return model.to(self.device).eval()


def _merged(summaries: list[dict]) -> dict | None:
    """The groups' strategy summaries as one: per-seed lists joined in seed order."""
    if not summaries:
        return None
    out: dict = {}
    for s in summaries:
        for k, v in s.items():
            if isinstance(v, list):
                out.setdefault(k, []).extend(v)
            else:
                out[k] = v
    return out


def _shape_problem(want: dict[str, torch.Tensor], have: dict[str, torch.Tensor], what: str) -> str:
    missing = sorted(set(want) - set(have))
    if missing:
        return f"it lacks the {what} tensor {missing[0]!r}"
    extra = sorted(set(have) - set(want))
    if extra:
        return f"it holds a {what} tensor this model does not have ({extra[0]!r})"
    for k, t in want.items():
        if tuple(have[k].shape) != tuple(t.shape):
            got, want_shape = tuple(have[k].shape), tuple(t.shape)
            return f"its {what} tensor {k!r} is {got}, this model's is {want_shape}"
    return ""


# ---------------------------------------------------------------------------------------------
# The loop


def fit(engine: Engine, data: TrainingData, hooks: TrainHooks | None = None) -> TrainedModels:
    """Train one model per seed of the plan's seeds (data on the engine's device) with
    `engine`, resuming from hooks.checkpoint when it holds this run's state (module doc). The
    models come back in eval mode, with the protocol's tested weights (the EMA's under GLaD),
    in the seeds' order; a model whose weights are not finite ends the run (NonFiniteWeights)."""
    return _Fit(engine, data, hooks or TrainHooks()).run()


class _Fit:
    def __init__(self, engine: Engine, data: TrainingData, hooks: TrainHooks) -> None:
        if len(data) == 0:
            raise ValueError("the training set is empty")
        cfg = engine.cfg
        self.engine, self.data, self.cfg, self.hooks = engine, data, cfg, hooks
        self.passes = cfg.passes
        self.groups = [tuple(int(s) for s in g) for g in engine.groups(cfg.seeds)]
        if tuple(s for g in self.groups for s in g) != cfg.seeds:
            raise ValueError(f"the {engine.name} engine's groups {self.groups} are not the seeds")
        self.total = len(cfg.seeds) * self.passes
        self.models: list[nn.Module] = []  # finished seeds' models, in cfg.seeds order
        self.curves: list[list[float]] = []  # per seed started, its mean loss per pass
        self.summaries: list[dict] = []  # per group trained here: its strategy's end state

    def run(self) -> TrainedModels:
        t0 = time.perf_counter()
        saved, ready = self._resume()
        first = saved.group if saved is not None else 0
        for gi in range(first, len(self.groups)):
            if ready is not None and ready[0] == gi:
                _, group, gens = ready
            else:
                gens = self._generators(self.groups[gi])
                group = self.engine.start(self.groups[gi], gens, self.data)
            self._train(gi, group, gens, saved if saved is not None and saved.group == gi else None)
            summary = group.summary()
            if summary is not None:
                self.summaries.append(summary)
        out = TrainedModels(self.models, self.curves, time.perf_counter() - t0)
        out.strategy = _merged(self.summaries)
        return out

    def _generators(self, seeds: tuple[int, ...]) -> list[torch.Generator]:
        dev = self.engine.device
        return [torch.Generator(device=dev).manual_seed(int(s)) for s in seeds]

    def _before(self, gi: int) -> int:
        return sum(len(g) for g in self.groups[:gi])

    # -- one group ---------------------------------------------------------------------------

    def _train(
        self, gi: int, group: Group, gens: list[torch.Generator], saved: SavedState | None
    ) -> None:
        cfg, hooks, dev = self.cfg, self.hooks, self.engine.device
        seeds, bsz, t = group.seeds, cfg.batch_size, len(self.data)
        before, passes = self._before(gi), self.passes
        end = PassEnd(
            cfg,
            group.optimizer,
            group.tensors,
            seeds,
            stacked=group.stacked,
            monitor=hooks.monitor,
            monitor_every=hooks.monitor_every,
            extras=group.extras,
        )
        # the passes' batches: shuffled, or in the order the data fixes (a store's replay)
        passes_of = self.data.schedule if self.data.schedule is not None else Shuffle
        shuffle = passes_of(t, bsz, gens, dev, group.pad)
        del self.curves[before:]
        self.curves.extend([] for _ in seeds)
        first = 0
        if saved is not None:
            group.load(saved.engine_state)
            end.restore("", saved.pass_end, saved.pass_end_meta, saved.passes)
            for g, st in zip(gens, saved.rng, strict=True):
                g.set_state(st.cpu())
            for j in range(len(seeds)):
                self.curves[before + j] = list(saved.curves[before + j])
            first = saved.passes
        pending: dict[int, torch.Tensor] = {}  # per pass not read yet: its mean losses (S,)
        reported = first

        def flush(upto: int) -> None:  # read (one sync) and report every pass up to `upto`
            nonlocal reported
            while reported <= upto:
                mean = pending.pop(reported)
                check_finite(mean, reported, seeds)
                vals = mean.tolist()
                for j, v in enumerate(vals):
                    self.curves[before + j].append(v)
                self._progress(before, seeds, reported, vals)
                reported += 1

        opt, stop, ckpt = group.optimizer, hooks.stop, hooks.checkpoint
        for p in range(first, passes):
            order = shuffle.begin(p)  # this pass's batches: .steps, .samples, .batch(b)
            group.begin_pass()
            running = torch.zeros(len(seeds), device=dev)
            for b in range(order.steps):
                if stop is not None and stop.is_set():
                    raise TrainingStopped(f"stopped at epoch {p} (seeds {list(seeds)})")
                idx, n_real = order.batch(b)  # (S, B'), the first n_real real
                opt.zero_grad(set_to_none=True)
                running += group.step(b, idx, n_real) * n_real
                opt.step()
            pending[p] = running / order.samples
            end(p, group.live)  # the finite check runs in flush, a pass late
            flush(p - 1)
            if ckpt is not None and ckpt.due(p + 1 == passes):
                flush(p)  # the state at this pass boundary, curves included
                self._save(gi, group, end, gens, p + 1)
        flush(passes - 1)
        trained = [m.eval() for m in end.final(group.trained())]
        check_finite_weights(trained, seeds)
        self.models.extend(trained)

    def _progress(self, before: int, seeds: tuple[int, ...], p: int, vals: list[float]) -> None:
        if self.hooks.progress is None:
            return
        label = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
        if self.engine.tag:
            label += f" ({self.engine.tag})"
        self.hooks.progress(
            ProgressEvent(
                "train",
                before * self.passes + (p + 1) * len(seeds),
                self.total,
                sum(vals) / len(vals),
                label,
                metrics={"epoch": p + 1, "seeds": list(seeds), "loss": vals},
            )
        )

    # -- the checkpoint ------------------------------------------------------------------------

    def _save(
        self, gi: int, group: Group, end: PassEnd, gens: list[torch.Generator], passes_done: int
    ) -> None:
        pass_end, pass_end_meta = end.state("")
        state = SavedState(
            engine=self.engine.name,
            group=gi,
            seeds=group.seeds,
            passes=passes_done,
            curves=self.curves,
            rng=[g.get_state() for g in gens],
            engine_state=group.state(),
            pass_end=pass_end,
            pass_end_meta=pass_end_meta,
            done={i: m.state_dict() for i, m in enumerate(self.models)},
        )
        assert self.hooks.checkpoint is not None
        self.hooks.checkpoint.save(state.tensors(), state.meta())

    def _resume(self) -> tuple[SavedState | None, tuple[int, Group, list[torch.Generator]] | None]:
        """The saved state to continue from (None: start over) and the group it continues,
        already started (also kept, untouched, when a refused state was of the first group)."""
        ckpt = self.hooks.checkpoint
        if ckpt is None:
            return None, None
        raw = ckpt.read()
        if raw is None:
            if ckpt.problem:
                self._refuse(ckpt.problem)
            return None, None
        try:
            saved = SavedState.from_file(*raw)
        except ValueError as err:
            self._refuse(self._cannot(str(err)))
            return None, None
        why = self._check(saved)
        if why:
            self._refuse(self._cannot(why))
            return None, None
        seeds = self.groups[saved.group]
        gens = self._generators(seeds)
        group = self.engine.start(seeds, gens, self.data)
        ready = (saved.group, group, gens)
        why = _shape_problem(group.state(), saved.engine_state, "model")
        why = why or self._pass_end_problem(group, saved)
        done: list[nn.Module] = []
        if not why:
            try:
                for i in range(self._before(saved.group)):
                    done.append(self.engine.finished(self.cfg.seeds[i], saved.done[i]))
            except (KeyError, RuntimeError) as err:
                why = f"a finished seed's model does not load ({type(err).__name__}: {err})"
        if why:
            self._refuse(self._cannot(why))
            return None, (ready if saved.group == 0 else None)
        ckpt.hand_back(raw[1])
        self.models = done
        self.curves = [list(c) for c in saved.curves[: self._before(saved.group)]]
        return saved, ready

    def _check(self, saved: SavedState) -> str:
        """Why `saved` cannot continue this run ("" when it can), before any model is built."""
        if saved.engine != self.engine.name:
            return (
                f"the {saved.engine} engine wrote it and this run trains with the "
                f"{self.engine.name} engine"
            )
        if not 0 <= saved.group < len(self.groups):
            return f"its seed group {saved.group} is not one of this run's {len(self.groups)}"
        seeds = self.groups[saved.group]
        if saved.seeds is not None and tuple(saved.seeds) != seeds:
            return f"its seeds {list(saved.seeds)} are not this run's group {list(seeds)}"
        if not 0 <= saved.passes <= self.passes:
            return f"it is at pass {saved.passes} of a run of {self.passes}"
        if len(saved.rng) != len(seeds):
            return f"it holds {len(saved.rng)} random streams for a group of {len(seeds)} seeds"
        before = self._before(saved.group)
        lengths = [len(c) for c in saved.curves]
        if lengths != [self.passes] * before + [saved.passes] * len(seeds):
            return f"its loss curves ({lengths} passes) do not match its pass {saved.passes}"
        missing = [i for i in range(before) if i not in saved.done]
        if missing:
            return f"it lacks the model of finished seed {self.cfg.seeds[missing[0]]}"
        return ""

    def _pass_end_problem(self, group: Group, saved: SavedState) -> str:
        for i, t in enumerate(group.tensors):
            for name in ("opt", "ema"):
                have = saved.pass_end.get(f"{name}.{i}")
                if have is None:
                    if name == "ema" and self.cfg.protocol_spec.ema_beta:
                        protocol = self.cfg.protocol
                        return f"it lacks the EMA tensor 'ema.{i}' the {protocol} protocol needs"
                    continue
                if tuple(have.shape) != tuple(t.shape):
                    return (
                        f"its {name}.{i} is {tuple(have.shape)}, this model's is {tuple(t.shape)}"
                    )
            for key in (f"opt.{i}.exp_avg", f"opt.{i}.exp_avg_sq"):  # AdamW's moments
                have = saved.pass_end.get(key)
                if have is not None and tuple(have.shape) != tuple(t.shape):
                    return f"its {key} is {tuple(have.shape)}, this model's is {tuple(t.shape)}"
        return ""

    def _cannot(self, why: str) -> str:
        ckpt = self.hooks.checkpoint
        where = ckpt.path if ckpt is not None else "?"
        return f"the saved training state {where} cannot be resumed: {why}; training starts over"

    def _refuse(self, message: str) -> None:
        """Report a saved state that is not used (it is replaced at the next save)."""
        warnings.warn(message, stacklevel=4)
        if self.hooks.progress is not None:
            self.hooks.progress(ProgressEvent("train", 0, 0, None, message, note=True))
