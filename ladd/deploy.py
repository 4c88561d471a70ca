"""Deployment: training fresh models on a (label-augmented) distilled set, and evaluating them.

The training set is a flat list of samples (REFERENCE.md sections 1.4 and 3): the M full images
with their hard (or the set's soft) targets, plus the M*N*N crops, resized back to full size,
with their dense targets -- "100 full images + 2,500 crops = 2,600 samples per epoch" for
IPC 10, N 5. Per epoch the samples are shuffled with a seeded generator and fed in batches of
256; each batch gets one DSA op and the soft-target cross-entropy averaged over the batch. Since
every sample carries the weight 1/B, this is the paper's CE(h(x), y) + sum_j CE(h(S_j(x)), y^d_j)
up to a constant factor.

Protocol: SGD momentum 0.9, weight decay 5e-4, batch 256, lr x 0.1 at the half, 1000 epochs,
evaluated once at the end on the source's real test split (nothing is chosen on the test set).

Modes (paper Table 6):
  baseline     full images, hard labels (or the set's own soft labels, e.g. DATM's)
  ladd         full images with those labels + crops with dense labels
  full_soft    full images with the labeler's soft label of the full image
  crops_hard   crops only, each with its image's hard label
  crops_dense  crops only, with dense labels
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ladd.device import resolve_device
from ladd.dsa import DSAConfig, dsa
from ladd.flops import train_flops_per_sample
from ladd.models import ModelSpec, create_model, default_lr, model_family
from ladd.progress import ProgressEvent, ProgressFn
from ladd.subsample import sub_sample

__all__ = [
    "MODES",
    "PAPER_ARCHS",
    "CrossArchResult",
    "DeployResult",
    "ProgressEvent",
    "ProgressFn",
    "TrainConfig",
    "TrainedModels",
    "TrainingData",
    "TrainingStopped",
    "build_training_data",
    "evaluate_architectures",
    "evaluate_models",
    "soft_cross_entropy",
    "train_and_evaluate",
    "train_models",
    "train_reference",
]

MODES: tuple[str, ...] = ("baseline", "ladd", "full_soft", "crops_hard", "crops_dense")
TRAINERS: tuple[str, ...] = ("reference", "fast")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")


def PAPER_ARCHS(image_size: int) -> tuple[str, ...]:  # noqa: N802 (a constant by intent)
    """The paper's five evaluation architectures (GLaD's set) at an image size."""
    conv = "convnet_d3" if image_size <= 64 else "convnet_d5"
    return (conv, "alexnet", "vgg11", "resnet18", "vit")


class TrainingStopped(RuntimeError):
    """Training ended early because the caller's stop event was set."""


@dataclass(frozen=True)
class TrainConfig:
    """How models are trained on a distilled set (saved with every run)."""

    arch: str = "convnet_d3"
    mode: str = "ladd"
    epochs: int = 1000
    lr: float | None = None  # None: the set's own lr (DATM), else default_lr(arch, size)
    batch_size: int = 256
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_at: float = 0.5  # lr x 0.1 after this fraction of the epochs
    trainer: str = "fast"  # ladd.fast.train_fast; "reference" is the field-style loop
    precision: str = "fp32"  # "bf16": autocast on CUDA
    dsa: bool = True
    dsa_strategy: str = DSAConfig().strategy
    n: int = 5  # crop grid for crops_hard on a plain distilled set (else the set's n, r)
    r: float = 0.625
    eval_batch_size: int = 1024
    model_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"width": 32}

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.trainer not in TRAINERS:
            raise ValueError(f"unknown trainer {self.trainer!r}; use one of {', '.join(TRAINERS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use fp32 or bf16")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))

    @property
    def dsa_config(self) -> DSAConfig:
        return DSAConfig(strategy=self.dsa_strategy)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        return d


# ---------------------------------------------------------------------------------------------
# The training set


@dataclass
class TrainingData:
    """A flat deployment training set: inputs and probability targets."""

    inputs: torch.Tensor  # float (T, C, H, W), normalised
    targets: torch.Tensor  # float (T, K), rows are probability vectors
    num_full: int  # how many of the T samples are full images (they come first)
    num_crops: int  # how many are crops
    num_classes: int

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def to(self, device: str | torch.device) -> TrainingData:
        return replace(self, inputs=self.inputs.to(device), targets=self.targets.to(device))


def _as_probs(t: torch.Tensor) -> torch.Tensor:
    """Soft labels as probabilities: kept when rows already are, else softmax (DATM's logits)."""
    t = t.float()
    if bool((t >= 0).all()) and bool(((t.sum(1) - 1).abs() < 1e-3).all()):
        return t
    return torch.softmax(t, dim=1)


def _num_classes(dataset: Any) -> int:
    if getattr(dataset, "dense", None) is not None:
        return int(dataset.dense.shape[-1])
    if getattr(dataset, "class_names", None):
        return len(dataset.class_names)
    return int(dataset.labels.max()) + 1


def build_training_data(dataset: Any, mode: str, *, n: int = 5, r: float = 0.625) -> TrainingData:
    """The flat sample list of a mode from a DistilledSet or LabelAugmentedSet (on CPU).

    `n`, `r` only matter for crops_hard on a plain distilled set (a label-augmented set brings
    its own). Modes that need dense or labeler labels refuse a plain distilled set.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    images = dataset.images.float().cpu()  # (M, C, H, W)
    m = images.shape[0]
    k = _num_classes(dataset)
    hard = F.one_hot(dataset.labels.cpu().long(), k).float()  # (M, K)
    soft = getattr(dataset, "soft_labels", None)
    base = _as_probs(soft.cpu()) if soft is not None else hard  # the set's own labels
    dense = getattr(dataset, "dense", None)
    if dense is not None:
        n, r = int(dataset.n), float(dataset.r)
    needs_dense = mode in ("ladd", "crops_dense")
    if needs_dense and dense is None:
        raise ValueError(
            f"mode {mode!r} needs dense labels: label-augment the set first (ladd augment)"
        )
    if mode == "full_soft" and getattr(dataset, "full_soft", None) is None:
        raise ValueError("mode 'full_soft' needs a label-augmented set (the labeler's soft labels)")

    parts_x: list[torch.Tensor] = []
    parts_y: list[torch.Tensor] = []
    num_full = num_crops = 0
    if mode in ("baseline", "ladd"):
        parts_x.append(images)
        parts_y.append(base)
        num_full = m
    elif mode == "full_soft":
        parts_x.append(images)
        parts_y.append(dataset.full_soft.float().cpu())
        num_full = m
    if mode in ("ladd", "crops_hard", "crops_dense"):
        crops = sub_sample(images, n, r).flatten(0, 1)  # (M*n*n, C, H, W), raster order per image
        if mode == "crops_hard":
            targets = hard.repeat_interleave(n * n, dim=0)  # (M*n*n, K)
        else:
            targets = dense.float().cpu().reshape(m * n * n, k)
        parts_x.append(crops)
        parts_y.append(targets)
        num_crops = crops.shape[0]
    return TrainingData(
        inputs=torch.cat(parts_x).contiguous(),
        targets=torch.cat(parts_y).contiguous(),
        num_full=num_full,
        num_crops=num_crops,
        num_classes=k,
    )


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with probability targets, averaged over the batch: (B, K), (B, K) -> ()."""
    return -(target_probs * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


# ---------------------------------------------------------------------------------------------
# Training several seeds


@dataclass
class TrainedModels:
    """What a trainer returns: one model per seed (eval mode, on the device)."""

    models: list[nn.Module]
    loss_curves: list[list[float]]  # per seed, the mean training loss of each epoch
    seconds: float
    flops: int


def resolve_lr(cfg: TrainConfig, dataset: Any, arch: str, image_size: int) -> float:
    """--lr when given, else the set's own (DATM lr_best), else the architecture's default."""
    if cfg.lr is not None:
        return float(cfg.lr)
    lr = getattr(dataset, "lr", None)
    if lr is not None:
        return float(lr)
    return default_lr(arch, image_size)


def model_spec(cfg: TrainConfig, num_classes: int, image_size: int, channels: int = 3) -> ModelSpec:
    """The ModelSpec of a config's architecture (model_options applied)."""
    return ModelSpec(cfg.arch, num_classes, image_size, channels, dict(cfg.model_options))


def init_model(spec: ModelSpec, seed: int) -> nn.Module:
    """A freshly initialised model, weights drawn under a forked RNG seeded with `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(
            spec.name, spec.num_classes, spec.image_size, spec.channels, **spec.options
        )


def step_flops(data: TrainingData, spec: ModelSpec, batch_size: int, device: torch.device) -> float:
    """FLOPs of one forward + backward per sample, measured once on a small batch."""
    probe = init_model(spec, 0).to(device)
    x = data.inputs[: min(batch_size, 8, len(data))].to(device)
    return train_flops_per_sample(probe, x, data.num_classes)


def train_reference(
    data: TrainingData,
    spec: ModelSpec,
    cfg: TrainConfig,
    *,
    device: str | torch.device,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    lr: float | None = None,
    channels_last: bool = False,
) -> TrainedModels:
    """The field's evaluation loop, one model per seed in sequence (eager, batch 256, DSA).

    `lr` overrides cfg.lr (train_and_evaluate passes the resolved rate). `channels_last` stores
    inputs and weights in NHWC (faster convolutions on CUDA; the fast trainer's sequential engine).
    """
    dev = resolve_device(device)
    lr = float(lr if lr is not None else (cfg.lr or default_lr(spec.name, spec.image_size)))
    data = data.to(dev)
    t_count = len(data)
    if t_count == 0:
        raise ValueError("the training set is empty")
    inputs = data.inputs  # (T, C, H, W)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(t_count / cfg.batch_size)
    decay_epoch = int(cfg.epochs * cfg.lr_decay_at)
    per_sample = step_flops(data, spec, cfg.batch_size, dev)
    use_bf16 = cfg.precision == "bf16" and dev.type == "cuda"
    dsa_cfg = cfg.dsa_config
    total = len(cfg.seeds) * cfg.epochs
    t0 = time.perf_counter()
    models: list[nn.Module] = []
    curves: list[list[float]] = []
    for si, seed in enumerate(cfg.seeds):
        model = init_model(spec, seed).to(dev).train()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        g = torch.Generator(device=dev).manual_seed(int(seed))
        curve: list[float] = []
        for epoch in range(cfg.epochs):
            if epoch == decay_epoch and epoch > 0:
                for group in opt.param_groups:
                    group["lr"] = lr * 0.1
            perm = torch.randperm(t_count, generator=g, device=dev)
            running = torch.zeros((), device=dev)
            for b in range(steps_per_epoch):
                if stop is not None and stop.is_set():
                    raise TrainingStopped(f"stopped at seed {seed}, epoch {epoch}")
                idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                x, y = inputs[idx], data.targets[idx]
                if cfg.dsa:
                    x = dsa(x, g, dsa_cfg)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits = model(x)
                loss = soft_cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                running += loss.detach() * idx.shape[0]
            mean_loss = float(running) / t_count
            curve.append(mean_loss)
            if progress is not None:
                progress(
                    ProgressEvent(
                        "train", si * cfg.epochs + epoch + 1, total, mean_loss, f"seed {seed}"
                    )
                )
        models.append(model.to(memory_format=torch.contiguous_format).eval())
        curves.append(curve)
    seconds = time.perf_counter() - t0
    flops = int(per_sample * t_count * cfg.epochs * len(cfg.seeds))
    return TrainedModels(models, curves, seconds, flops)


def train_models(
    data: TrainingData,
    spec: ModelSpec,
    cfg: TrainConfig,
    *,
    device: str | torch.device,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> TrainedModels:
    """Train one model per seed of cfg.seeds with the configured trainer.

    cfg.trainer == "fast" uses ladd.fast.train_fast (same arguments), "reference" the field's
    loop. cfg.lr must be resolved (not None) here or the architecture's default is used.
    """
    if cfg.trainer == "fast":
        from ladd.fast import train_fast  # here, not at the top: ladd.fast imports this module

        return train_fast(data, spec, cfg, device=device, progress=progress, stop=stop)
    return train_reference(data, spec, cfg, device=device, progress=progress, stop=stop)


# ---------------------------------------------------------------------------------------------
# Evaluation


def eval_inputs(dataset: Any, test_set: Any, device: torch.device) -> torch.Tensor:
    """The real test images in the distilled set's input space (its mean/std, then its ZCA)."""
    from ladd.data.imageset import normalise

    size = int(dataset.images.shape[-1])
    if int(test_set.images.shape[-1]) != size:
        raise ValueError(f"test images are {test_set.images.shape[-1]} px but the set is {size} px")
    x = normalise(test_set.images.to(device), dataset.mean, dataset.std)
    zca = getattr(dataset, "zca", None)
    if zca is not None and not isinstance(zca, bool):
        x = zca.to(device).apply(x)
    elif zca:
        raise ValueError(
            "the set is in ZCA space but carries no fitted ZCA to whiten the test split"
        )
    return x


@dataclass
class ModelScores:
    accuracy: float
    per_class: list[float]
    confusion: list[list[int]]  # [true][predicted]


@torch.no_grad()
def evaluate_models(
    models: list[nn.Module],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    batch_size: int = 1024,
) -> list[ModelScores]:
    """Top-1 accuracy, per-class accuracy and confusion matrix of each model on (inputs, labels)."""
    labels = labels.to(inputs.device)
    out = []
    for model in models:
        model.eval()
        preds = torch.cat(
            [
                model(inputs[i : i + batch_size]).argmax(1)
                for i in range(0, inputs.shape[0], batch_size)
            ]
        )
        conf = torch.bincount(
            labels * num_classes + preds, minlength=num_classes * num_classes
        ).reshape(num_classes, num_classes)
        support = conf.sum(1).clamp_min(1)
        out.append(
            ModelScores(
                accuracy=float((preds == labels).float().mean()),
                per_class=(conf.diag().float() / support).tolist(),
                confusion=conf.cpu().tolist(),
            )
        )
    return out


@dataclass
class DeployResult:
    """Accuracy of models trained on a set, mean +- std over seeds, and what it cost."""

    config: TrainConfig
    lr: float
    accuracy_mean: float
    accuracy_std: float
    per_seed: list[float]
    per_class: list[list[float]]  # (S, K)
    confusion: list[list[int]]  # (K, K), summed over seeds, [true][predicted]
    loss_curves: list[list[float]]
    seconds: float
    flops: int
    num_samples: int  # training samples per epoch
    class_names: list[str]
    models: list[nn.Module] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (models left out)."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("models", "config")}
        d["config"] = self.config.to_dict()
        d["per_class_mean"] = [statistics.fmean(c) for c in zip(*self.per_class, strict=True)]
        return d


def train_and_evaluate(
    dataset: Any,
    test_set: Any,
    cfg: TrainConfig,
    *,
    device: str | torch.device = "auto",
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> DeployResult:
    """Train cfg.seeds fresh models on `dataset` in cfg.mode; test once on `test_set` (ImageSet)."""
    dev = resolve_device(device)
    data = build_training_data(dataset, cfg.mode, n=cfg.n, r=cfg.r)
    size = int(dataset.images.shape[-1])
    spec = model_spec(cfg, data.num_classes, size, int(dataset.images.shape[1]))
    lr = resolve_lr(cfg, dataset, cfg.arch, size)
    x_test = eval_inputs(dataset, test_set, dev)  # checks sizes before the long part
    trained = train_models(
        data, spec, replace(cfg, lr=lr), device=dev, progress=progress, stop=stop
    )
    if progress is not None:
        progress(ProgressEvent("evaluate", 0, 1, None, "testing on the real test split"))
    scores = evaluate_models(
        trained.models, x_test, test_set.labels, data.num_classes, cfg.eval_batch_size
    )
    accs = [s.accuracy for s in scores]
    k = data.num_classes
    confusion = [[sum(s.confusion[i][j] for s in scores) for j in range(k)] for i in range(k)]
    names = list(getattr(dataset, "class_names", None) or test_set.info.class_names)
    return DeployResult(
        config=cfg,
        lr=lr,
        accuracy_mean=statistics.fmean(accs),
        accuracy_std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
        per_seed=accs,
        per_class=[s.per_class for s in scores],
        confusion=confusion,
        loss_curves=trained.loss_curves,
        seconds=trained.seconds,
        flops=trained.flops,
        num_samples=len(data),
        class_names=names,
        models=trained.models,
    )


@dataclass
class CrossArchResult:
    """Accuracy of one set across architectures (paper Table 2)."""

    results: dict[str, DeployResult]

    def table(self) -> list[dict[str, Any]]:
        rows = [
            {
                "arch": a,
                "accuracy_mean": r.accuracy_mean,
                "accuracy_std": r.accuracy_std,
                "seconds": r.seconds,
                "flops": r.flops,
            }
            for a, r in self.results.items()
        ]
        return rows

    @property
    def average(self) -> float:
        return statistics.fmean(r.accuracy_mean for r in self.results.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table(),
            "average": self.average,
            "results": {a: r.to_dict() for a, r in self.results.items()},
        }


def evaluate_architectures(
    dataset: Any,
    test_set: Any,
    cfg: TrainConfig,
    archs: list[str] | tuple[str, ...] | None = None,
    *,
    device: str | torch.device = "auto",
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    on_result: Callable[[str, DeployResult], None] | None = None,
) -> CrossArchResult:
    """Train and test every architecture of `archs` (default: the paper's five) with cfg.

    cfg.model_options apply to ConvNets only (e.g. a narrow width); the lr is resolved per
    architecture unless cfg.lr is set. `on_result(arch, result)` is called as each finishes.
    """
    archs = tuple(archs) if archs else PAPER_ARCHS(int(dataset.images.shape[-1]))
    results: dict[str, DeployResult] = {}
    for arch in archs:
        options = cfg.model_options if model_family(arch) == "convnet" else {}
        acfg = replace(cfg, arch=arch, model_options=dict(options))

        def relay(ev: ProgressEvent, arch: str = arch) -> None:
            if progress is not None:
                progress(replace(ev, message=f"{arch} {ev.message}".strip()))

        res = train_and_evaluate(dataset, test_set, acfg, device=device, progress=relay, stop=stop)
        results[arch] = res
        if on_result is not None:
            on_result(arch, res)
    return CrossArchResult(results)


# ---------------------------------------------------------------------------------------------
# Recorded runs (the CLI and the dashboard share these)


def train_recorded(
    workspace: Any,
    dataset: Any,
    test_set: Any,
    cfg: TrainConfig,
    *,
    device: str | torch.device = "auto",
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[int, DeployResult]:
    """train_and_evaluate inside a run of the workspace's database; keeps the models' weights."""
    config = {"train": cfg.to_dict(), **(extra or {})}
    with workspace.db.run("train", config) as run:
        res = train_and_evaluate(
            dataset, test_set, cfg, device=device, progress=progress, stop=stop
        )
        for seed, model in zip(cfg.seeds, res.models, strict=True):
            run.save_model(model, f"model_seed{seed}", {"seed": seed, "mode": cfg.mode})
        metrics = _metrics(res)
        metrics["run_id"] = run.id
        run.write_json("result.json", res.to_dict())
        run.log_metrics(**metrics)
    return run.id, res


def evaluate_recorded(
    workspace: Any,
    dataset: Any,
    test_set: Any,
    cfg: TrainConfig,
    archs: list[str] | tuple[str, ...] | None = None,
    *,
    device: str | torch.device = "auto",
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[int, CrossArchResult]:
    """evaluate_architectures inside a run; each architecture's models are saved as it finishes."""
    config = {"train": cfg.to_dict(), "archs": list(archs or []), **(extra or {})}
    with workspace.db.run("evaluate", config) as run:

        def keep(arch: str, res: DeployResult) -> None:
            for seed, model in zip(res.config.seeds, res.models, strict=True):
                run.save_model(model, f"{arch}_model_seed{seed}", {"seed": seed, "arch": arch})
            run.log_metrics(
                **{
                    f"{arch}_accuracy_mean": res.accuracy_mean,
                    f"{arch}_accuracy_std": res.accuracy_std,
                }
            )
            run.write_json(f"result_{arch}.json", res.to_dict())

        out = evaluate_architectures(
            dataset,
            test_set,
            cfg,
            archs,
            device=device,
            progress=progress,
            stop=stop,
            on_result=keep,
        )
        run.log_metrics(
            average=out.average,
            seconds=sum(r.seconds for r in out.results.values()),
            flops=sum(r.flops for r in out.results.values()),
            table=out.table(),
            run_id=run.id,
        )
    return run.id, out


def _metrics(res: DeployResult) -> dict[str, Any]:
    return {
        "accuracy_mean": res.accuracy_mean,
        "accuracy_std": res.accuracy_std,
        "per_seed": res.per_seed,
        "per_class_mean": res.to_dict()["per_class_mean"],
        "seconds": res.seconds,
        "flops": res.flops,
        "lr": res.lr,
        "final_loss": [c[-1] for c in res.loss_curves],
    }


def save_models(models: list[nn.Module], folder: str | Path, seeds: tuple[int, ...]) -> list[Path]:
    """Write model_seed<k>.safetensors files (weights + spec) into `folder`."""
    from ladd.store import save_model

    return [
        save_model(Path(folder) / f"model_seed{s}.safetensors", m)
        for s, m in zip(seeds, models, strict=True)
    ]
