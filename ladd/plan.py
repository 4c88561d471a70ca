"""A training run as one object: planned once, executed anywhere, recorded once.

    plan = plan_training(dataset, TrainConfig(mode="ladd", epochs=300), device="cuda")
    result = ladd.deploy.execute(plan, dataset, test_set)          # any engine, any rank
    run_id = ladd.pipeline.record_train(ws, plan, result, ...)     # the only "train" writer

`plan_training` is the one function that settles a TrainConfig: the protocol (by the set's image
size), the lr (--lr, a set's learned lr under mtt for its own architecture, the architecture's
rate), the precision, the engine the fast trainer runs and its compile mode, the crop grid (a
label-augmented set's own N and R), the model spec (built once on the meta device, so a bad
option fails here), the label strategy (ladd.strategies: loss, schedule and balance in their
full spellings, checked together) and the crops' sampler (ladd.samplers: a set's own, else the
config's, a grid said as n and r). Nothing below the plan reads an unsettled option. The plan also holds what
it knows of the set (`SetFacts`: size, classes, grid, codec, input space, a digest of its
tensors) and the run's `key`, a digest of both: the key names the run everywhere (its training
state in the workspace's checkpoints, a sweep's skip list, the demo's reuse check).

`TrainPlan.record()` is what a run records as its configuration: only the fields the protocol
uses, every one taken from the plan or the set (never from an unused default).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ladd.device import ranks, resolve_device, resolve_precision
from ladd.models import ModelSpec, check_model_options, create_from_spec, default_lr
from ladd.models.registry import adamw_lr
from ladd.samplers import Sampler, SamplerError, grid_sampler, parse_sampler
from ladd.sets.augmented import LabelAugmentedSet, TrainableSet
from ladd.strategies import LabelStrategy, StrategyError, strategy_of
from ladd.training import (
    PROTOCOLS,
    LabelMode,
    TrainConfig,
    TrainingData,
    checkpoint_path,
    default_protocol,
    distillation_arch,
    label_mode,
    model_spec,
)

__all__ = ["ENGINES", "SetFacts", "TrainPlan", "crop_sampler_of", "plan_training", "set_digest"]

# How the work is issued: the field's loop ("reference": fp32, one seed after another), the fast
# trainer's "sequential" (the same loop per seed, the run's precision, NHWC on CUDA), its
# "stacked" engine (all seeds in one step), and "ddp" (one training over torchrun's ranks).
ENGINES: tuple[str, ...] = ("reference", "sequential", "stacked", "ddp")

# When the fast trainer would run a 128 px and larger model eager, the stacked (grouped) step
# measured 0.73x the field's loop at 128 px (ConvNet-D5) but 1.07x at 32 px (H200, 2026-11-26,
# docs/benchmarks.md): from this size such a run trains on the sequential engine.
SEQUENTIAL_WHEN_EAGER_FROM_PX = 128


@dataclass(frozen=True)
class SetFacts:
    """What a plan knows of the set it trains on (recorded with the run)."""

    digest: str  # sha256 of the set's tensors (images, labels, labels' payload), 20 hex
    images: int
    num_classes: int
    image_size: int
    channels: int
    label_augmented: bool
    n: int | None  # the set's own crop grid (a label-augmented set), else None
    r: float | None
    codec: str | None  # the dense labels' codec spec (a label-augmented set)
    sampler: str | None  # the set's own crop sampler when not the N x R grid (ladd.samplers)
    own_lr: float | None  # a learned lr the set carries (MTT/DATM lr_best.pt)
    distill_arch: str  # the set's distillation model (its reader's, else the field's at its size)
    format: str | None
    source: str | None
    input_space: dict[str, Any]  # how the set's images are normalised (mean, std, zca)
    test_space: dict[str, Any]  # how the real test split is normalised to match it
    soft_labels: dict[str, Any] | None = None  # the store a "store" run replays (ladd.stores)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class TrainPlan:
    """A settled training run (module doc). Frozen; `record()` is its JSON form in a run."""

    config: TrainConfig  # settled: no "auto" protocol or precision, an lr, the grid used
    spec: ModelSpec
    device: str  # "cpu", "cuda", "cuda:1"
    engine: str  # one of ENGINES
    compile: str  # "off", a torch.compile mode, or "policy" (the stacked step times itself)
    set: SetFacts
    key: str
    notes: tuple[str, ...] = field(default_factory=tuple)  # why the engine, the lr, the grid

    def __post_init__(self) -> None:
        if not self.config.settled:
            raise ValueError(f"a plan holds a settled config, not {self.config}")
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; use one of {', '.join(ENGINES)}")

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def lr(self) -> float:
        return float(self.config.lr)  # type: ignore[arg-type]  (settled: never None)

    def checkpoint(self, folder: str | Path) -> Path:
        """Where this run's training state is kept in a checkpoint folder."""
        return checkpoint_path(folder, self.key)

    def train_record(self) -> dict[str, Any]:
        """The settled config as a run records it: only what the protocol and mode use."""
        cfg = self.config
        d = cfg.to_dict()
        spec = cfg.protocol_spec
        if spec.optimizer != "sgd":  # AdamW: RDED's betas and weight decay, not the config's
            d.pop("momentum")
            d.pop("weight_decay")
            d["optimizer"] = "adamw (RDED: betas 0.9/0.999, weight decay 0.01 on weights)"
        else:
            d["optimizer"] = "sgd"
        if cfg.augmentation != "dsa":
            d.pop("dsa_strategy")
        d["augmentation"] = cfg.augmentation or "none"
        mode = label_mode(cfg.mode)
        if mode.replay:  # the store's stored crops, flips and mixes
            d["augmentation"] = "the soft-label store's crops, flips and mixes (replayed)"
        if not mode.crops:
            d.pop("n")
            d.pop("r")
        if not mode.full:
            d.pop("full_labels")
        # the label strategy, always said (to_dict leaves its defaults out, for the run keys)
        d.update(strategy_of(cfg).to_dict())
        if mode.crops:
            d["sampler"] = crop_sampler_of(cfg).spec
        else:
            d.pop("sampler", None)
        return d

    def record(self) -> dict[str, Any]:
        """What a "train" run records as its plan."""
        return {
            "key": self.key,
            "engine": self.engine,
            "compile": self.compile,
            "device": self.device,
            "model": self.spec.to_dict(),
            "set": self.set.to_dict(),
            "notes": list(self.notes),
        }


def set_digest(dataset: TrainableSet) -> str:
    """A digest of a set's tensors: its images, labels, soft labels and dense labels (their
    codec's spec and payload when held encoded). Two reads of one file with the same reading
    options give one digest; a set read in another input space does not."""
    h = hashlib.sha256()
    for name in ("images", "labels", "dense", "soft_labels", "full_soft"):
        t = getattr(dataset, name, None)
        if isinstance(t, torch.Tensor):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    encoded = getattr(dataset, "encoded", None)
    if encoded is not None:
        h.update(f"codec {encoded.spec}".encode())
        for key in sorted(encoded.payload):
            h.update(key.encode())
            h.update(
                encoded.payload[key].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()
            )
    return h.hexdigest()[:20]


def _tensors_digest(tensors: list[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:20]


def _data_facts(data: TrainingData) -> SetFacts:
    """What a plan knows of a training set given as its flat sample list (tests, benchmarks,
    a researcher's own tensors): no set around it, so no grid, lr or input space of its own."""
    inputs, targets = data.inputs, data.targets
    parts = [getattr(inputs, "images", inputs), getattr(targets, "head", targets)]
    parts += list(getattr(targets, "payload", {}).values())
    shape = tuple(inputs.shape)
    size = int(shape[-1])
    return SetFacts(
        digest=_tensors_digest(parts),
        images=int(data.num_images or data.num_full or len(data)),
        num_classes=int(data.num_classes),
        image_size=size,
        channels=int(shape[1]),
        label_augmented=False,
        n=None,
        r=None,
        codec=None,
        sampler=None,
        own_lr=None,
        distill_arch=distillation_arch(size),
        format="training data",
        source=None,
        input_space={},
        test_space={},
    )


def _facts(dataset: TrainableSet | TrainingData) -> SetFacts:
    if isinstance(dataset, TrainingData):
        return _data_facts(dataset)
    images = dataset.images
    augmented = isinstance(dataset, LabelAugmentedSet)
    size = int(images.shape[-1])
    zca, mean, std = dataset.zca is not None, dataset.mean, dataset.std
    input_space: dict[str, Any] = {
        "mean": list(mean) if mean is not None else None,
        "std": list(std) if std is not None else None,
        "zca": zca,
    }
    if zca:
        input_space["zca_source"] = dataset.zca_source or dataset.source
    test_mean, test_std = dataset.test_mean or mean, dataset.test_std or std
    test_space = {  # the real test split is put in the set's space: its statistics, its ZCA
        "mean": list(test_mean) if test_mean is not None else None,
        "std": list(test_std) if test_std is not None else None,
        "zca": zca,
    }
    return SetFacts(
        digest=set_digest(dataset),
        images=int(images.shape[0]),
        num_classes=int(dataset.num_classes),
        image_size=size,
        channels=int(images.shape[1]),
        label_augmented=augmented,
        n=int(dataset.n) if augmented and not dataset.sampler else None,
        r=float(dataset.r) if augmented and not dataset.sampler else None,
        codec=dataset.codec.spec if augmented else None,
        sampler=dataset.sampler if augmented else None,
        own_lr=dataset.lr,
        # a reader that knows the set's distillation model says so; else the field's at its size
        distill_arch=getattr(dataset, "distill_arch", None) or distillation_arch(size),
        format=dataset.format,
        source=dataset.source,
        input_space=input_space,
        test_space=test_space,
    )


def _lr(cfg: TrainConfig, facts: SetFacts, protocol: str) -> tuple[float, str]:
    """The deployment lr and why: --lr when given; under rded RDED's per-student AdamW rate;
    under mtt a set's learned lr (MTT/DATM lr_best.pt) for the architecture it was distilled
    with; else the architecture's own rate (GLaD's get_eval_lrs).

    MTT/DATM evaluate the distillation model with the learned lr (args.lr_net = syn_lr). GLaD's
    eval_loop (glad_utils.py) sets args.lr_net = eval_pool_dict[model_eval] for every model,
    the distillation model included, so under "glad" a set's lr is unused.
    """
    if cfg.lr is not None:
        return float(cfg.lr), "lr as asked"
    if protocol == "rded":
        return adamw_lr(cfg.arch), f"RDED's AdamW rate for {cfg.arch}"
    if facts.own_lr is not None and protocol == "mtt" and cfg.arch == facts.distill_arch:
        return float(facts.own_lr), "the set's learned lr (its distillation architecture)"
    return default_lr(cfg.arch, facts.image_size), f"{cfg.arch}'s rate at {facts.image_size} px"


def _has_batchnorm(spec: ModelSpec) -> bool:
    with torch.device("meta"):
        model = create_from_spec(spec)
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _engine(
    cfg: TrainConfig, spec: ModelSpec, dev: torch.device, facts: SetFacts, asked: str | None
) -> tuple[str, str, str]:
    """(engine, compile mode, why) for a settled cfg on `dev`."""
    if asked is not None:
        if asked not in ENGINES:
            raise ValueError(f"unknown engine {asked!r}; use one of {', '.join(ENGINES)}")
        if asked == "stacked" and _has_batchnorm(spec):
            raise ValueError("the stacked engine cannot train BatchNorm models; use sequential")
        mode = "policy" if asked == "stacked" and dev.type == "cuda" else "off"
        return asked, mode, f"engine {asked} asked for"
    if cfg.trainer == "ddp" or ranks().world > 1:
        return "ddp", "off", f"one training over torchrun's {ranks().world} rank(s)"
    if cfg.trainer == "reference":
        return "reference", "off", "the field's loop asked for (--trainer reference)"
    if dev.type != "cuda":
        return "sequential", "off", "fast trainer on a CPU: one seed after another"
    if _has_batchnorm(spec):
        return "sequential", "off", "batch norm: seeds cannot share one stacked step"
    if facts.image_size < SEQUENTIAL_WHEN_EAGER_FROM_PX:
        return "stacked", "policy", "all seeds in one step; compiled when the work repays it"
    return (
        "stacked",
        "default",
        f"all seeds in one compiled step (at >= {SEQUENTIAL_WHEN_EAGER_FROM_PX} px an eager "
        "stacked step loses to the field's loop; --trainer reference runs that instead)",
    )


def _replay_settings(
    dataset: Any, cfg: TrainConfig, facts: SetFacts, protocol: str
) -> tuple[TrainConfig, SetFacts, list[str]]:
    """Label mode "store": the store's batch size, no augmentation of our own (the store's crops,
    flips and mixes are the augmentation), at most as many passes as the store has epochs, and
    the store in the set's facts (its digest and temperatures name the run)."""
    if not hasattr(dataset, "store_facts"):
        raise ValueError(f"mode {cfg.mode!r} needs a soft-label store (--soft-labels STORE)")
    store = dataset.store_facts()
    notes = [
        "augmentation: the store's crops, flips and mixes, epoch by epoch in the stored order "
        "(the protocol's own augmentation is off)",
        f"KL at T = {store['label_temperature']:g} on the labels, student T = "
        f"{store['student_temperature']:g}",
    ]
    if int(cfg.batch_size) != int(store["batch_size"]):
        notes.append(
            f"batch {store['batch_size']}: the store's (its mixes pair rows within a batch; "
            f"asked {cfg.batch_size})"
        )
    cfg = replace(cfg, batch_size=int(store["batch_size"]), dsa=False)
    passes = cfg.epochs + (1 if PROTOCOLS[protocol].extra_pass else 0)
    if passes > int(store["epochs"]):
        raise ValueError(
            f"the soft-label store holds {store['epochs']} epochs; training {cfg.epochs} epochs "
            f"under {protocol} replays {passes} (SRe2L refuses the same, utils_fkd.py:124-125)"
        )
    digest = hashlib.sha256(
        f"{facts.digest} {store['digest']} {store['label_temperature']} "
        f"{store['student_temperature']}".encode()
    ).hexdigest()[:20]
    return cfg, replace(facts, soft_labels=store, digest=digest), notes


def _sampler_spec(spec: str) -> str:
    try:
        return parse_sampler(spec).spec
    except SamplerError as err:
        raise ValueError(str(err)) from None


def _grid(n: int | None, r: float | None) -> str | None:
    return grid_sampler(n, r).spec if n is not None and r is not None else None


def crop_sampler_of(cfg: TrainConfig) -> Sampler:
    """The crops a settled config's crop mode trains on: its sampler, or the grid of n, r."""
    return parse_sampler(cfg.sampler) if cfg.sampler else grid_sampler(cfg.n, cfg.r)


def _settle_strategy(cfg: TrainConfig, mode: LabelMode, notes: list[str]) -> LabelStrategy:
    """The label strategy in full spellings, checked together (ValueError, one line). A mode
    with no labeler's labels has no dense term: its loss is said to be unused."""
    try:
        strategy = strategy_of(cfg)
    except StrategyError as err:
        raise ValueError(str(err)) from None
    soft = mode.needs_dense or mode.needs_labeler
    if mode.replay and not strategy.default:
        raise ValueError(
            f"label strategy {strategy.to_dict()} on mode {cfg.mode!r}: a soft-label store replays "
            "its own loss (KL at its temperatures); train it with LADD's default strategy"
        )
    if not soft and strategy.loss.spec != "soft_ce":
        notes.append(f"loss {strategy.loss.spec} not used: mode {cfg.mode} has no labeler's labels")
    if strategy.balance == "learned" and not (soft and "hard" in (*mode.full, *mode.crops)):
        raise ValueError(
            f"a learned balance weighs the hard and the dense terms: mode {cfg.mode!r} "
            "does not have both"
        )
    return strategy


def _key(cfg: TrainConfig, facts: SetFacts) -> str:
    text = json.dumps({"train": cfg.to_dict(), "set": facts.digest}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def plan_training(
    dataset: TrainableSet | TrainingData,
    cfg: TrainConfig,
    device: str | torch.device = "auto",
    *,
    engine: str | None = None,
) -> TrainPlan:
    """Settle `cfg` for `dataset` on `device` into a TrainPlan (module doc). `engine` forces one
    of ENGINES (tests and benchmarks; the front ends leave it to the plan). Raises ValueError,
    one line, for any option that cannot be trained: the front ends call this at the click.
    `dataset` may also be a flat TrainingData (a researcher's own tensors, tests)."""
    if not isinstance(dataset, TrainingData):
        dataset.require_trainable()  # a set read for description only has no input space
    check_model_options(cfg.arch, cfg.model_options)
    dev = resolve_device(device)
    facts = _facts(dataset)
    notes: list[str] = []
    protocol = cfg.protocol if cfg.protocol != "auto" else default_protocol(facts.image_size)
    if cfg.protocol == "auto" and label_mode(cfg.mode).replay:
        protocol = "rded"  # the validation recipe the FKD family pairs its stores with
        notes.append(
            "protocol rded (auto for a soft-label store: RDED's AdamW recipe, as SRe2L's "
            "train_FKD.py trains students with AdamW; SRe2L's own schedule is the full cosine)"
        )
    elif cfg.protocol == "auto":
        notes.append(f"protocol {protocol} (auto: by the image size, {facts.image_size} px)")
    lr, why_lr = _lr(cfg, facts, protocol)
    notes.append(f"lr {lr:g}: {why_lr}")
    mode = label_mode(cfg.mode)
    if mode.replay:
        cfg, facts, why = _replay_settings(dataset, cfg, facts, protocol)
        notes += why
    n, r, sampler = cfg.n, cfg.r, cfg.sampler
    if facts.label_augmented:  # the labels were made on the set's own crops
        n, r, sampler = facts.n, facts.r, facts.sampler
        if sampler is not None:
            n = r = None
        if cfg.sampler is not None and _sampler_spec(cfg.sampler) != (sampler or _grid(n, r)):
            notes.append(f"sampler {cfg.sampler} not used: the set's labels are of its own crops")
    elif mode.crops and sampler is None and (n is None or r is None):
        raise ValueError(f"mode {cfg.mode!r} on a plain set needs a crop grid (n and r)")
    if sampler is not None:
        spec = _sampler_spec(sampler)
        grid = parse_sampler(spec).grid
        if grid is not None:  # a grid given as a sampler: said as n and r
            (n, r), sampler = grid, None
        else:
            sampler, n, r = spec, None, None
    if not mode.crops:
        n = r = sampler = None  # nothing is cut: no grid is used
    strategy = _settle_strategy(cfg, mode, notes)
    if isinstance(dataset, TrainingData) and dataset.soft is None and not strategy.default:
        notes.append(
            "the training data marks no sample as trained on the labeler's labels (soft): "
            f"{strategy.loss.spec} applies to none of them"
        )
    settled = replace(
        cfg,
        protocol=protocol,
        lr=lr,
        n=n,
        r=r,
        sampler=sampler,
        precision="fp32",
        **strategy.to_dict(),
    )
    spec = model_spec(settled, facts.num_classes, facts.image_size, facts.channels)
    with torch.device("meta"):  # the model is built here once: a bad option fails at planning
        create_from_spec(spec)
    chosen, compile_mode, why = _engine(settled, spec, dev, facts, engine)
    if mode.replay and chosen == "stacked":
        if engine is None:  # every seed replays the same stored batches, read per step
            chosen, why = "sequential", "a soft-label store's batches: one seed after another"
        compile_mode = "off"  # the stored batches vary in size and come from disk
    notes.append(f"engine {chosen}: {why}")
    precision = cfg.precision
    if precision == "auto":  # bf16 autocast for the stacked step on CUDA, the field's fp32 else
        precision = "bf16" if chosen == "stacked" and dev.type == "cuda" else "fp32"
    precision = resolve_precision(precision, dev)
    settled = replace(settled, precision=precision)
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr}")
    return TrainPlan(
        config=settled,
        spec=spec,
        device=str(dev),
        engine=chosen,
        compile=compile_mode,
        set=facts,
        key=_key(settled, facts),
        notes=tuple(notes),
    )
