"""Deployment: executing a planned training run, and evaluating the models it trains.

`execute(plan, dataset, test_set)` builds the mode's training set (ladd.training), trains the
plan's seeds with the engine the plan names (ladd.trainers) and tests them once, at the end, on
the source's real test split in the set's own input space (its mean/std, then its ZCA). It runs
anywhere: one process, a torchrun rank, a sweep's worker. `evaluate_architectures` executes
one plan per architecture (paper Table 2). Planning is ladd.plan's; recording ladd.pipeline's.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ladd.data.imageset import ImageSet
from ladd.device import resolve_precision
from ladd.models import small_variant, supported_options
from ladd.plan import TrainPlan, plan_training
from ladd.progress import ProgressEvent, ProgressFn
from ladd.results import CrossArchResult, DeployResult
from ladd.sets.augmented import TrainableSet
from ladd.trainers import TrainHooks, train_models
from ladd.training import Monitor, TrainCheckpoint, TrainConfig, TrainingData, build_training_data

__all__ = [
    "CrossArchResult",
    "DeployResult",
    "ModelScores",
    "NormalisedImages",
    "eval_inputs",
    "evaluate_architectures",
    "evaluate_models",
    "evaluate_sharded",
    "execute",
    "paper_archs",
    "plan_architectures",
    "scores_from_confusion",
]


def paper_archs(image_size: int) -> tuple[str, ...]:
    """The paper's five evaluation architectures (GLaD's set) at an image size."""
    conv = "convnet_d3" if small_variant(image_size) else "convnet_d5"
    return (conv, "alexnet", "vgg11", "resnet18", "vit")


# ---------------------------------------------------------------------------------------------
# Evaluation


EAGER_EVAL_BYTES = 1 << 30  # a test split whose float copy is larger is normalised per batch


@dataclass(frozen=True)
class NormalisedImages:
    """A test split kept as its uint8 pixels and normalised (then whitened) per batch when
    sliced: what eval_inputs returns for a split whose float copy would be large (ImageNet-1K
    val: 50,000 images, 30 GB as float32 at 224 px, 7.5 GB as uint8). Answers what
    evaluate_models asks of its inputs: shape, device, len and slicing or index tensors."""

    images: torch.Tensor  # uint8 (N, C, H, W), on the evaluation device
    mean: tuple[float, ...]
    std: tuple[float, ...]
    zca: Any = None  # a fitted ladd.data.zca.ZCA on the same device, or None

    @property
    def shape(self) -> torch.Size:
        return self.images.shape

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, idx: Any) -> torch.Tensor:
        from ladd.data.imageset import normalise

        x = normalise(self.images[idx], self.mean, self.std)
        return self.zca.apply(x) if self.zca is not None else x


def eval_inputs(
    dataset: TrainableSet, test_set: ImageSet, device: torch.device, *, lazy: bool | None = None
) -> torch.Tensor | NormalisedImages:
    """The real test images in the input space the set's own code tests in: its mean/std (or
    `test_mean`/`test_std` where that code normalises its test split otherwise, e.g. GLaD's
    ImageNet statistics on ImageNet subsets), then its ZCA.

    A float tensor on `device`; or, with `lazy` (None: when the float copy would exceed
    EAGER_EVAL_BYTES), NormalisedImages, which normalises each batch as it is sliced."""
    from ladd.data.imageset import normalise

    size = int(dataset.image_size)
    if int(test_set.images.shape[-1]) != size:
        raise ValueError(f"test images are {test_set.images.shape[-1]} px but the set is {size} px")
    if dataset.test_mean is not None:
        mean, std = dataset.test_mean, dataset.test_std
    else:
        mean, std = dataset.mean, dataset.std
    zca = dataset.zca
    if isinstance(zca, bool):  # a set read for description only names its ZCA, never fits it
        if zca:
            raise ValueError(
                "the set is in ZCA space but carries no fitted ZCA to whiten the test split"
            )
        zca = None
    if lazy is None:
        lazy = test_set.images.numel() * 4 > EAGER_EVAL_BYTES
    zca = zca.to(device) if zca is not None else None
    if lazy:
        return NormalisedImages(test_set.images.to(device), tuple(mean), tuple(std), zca)
    x = normalise(test_set.images.to(device), mean, std)
    return zca.apply(x) if zca is not None else x


@dataclass
class ModelScores:
    accuracy: float
    per_class: list[float]
    confusion: list[list[int]]  # [true][predicted]


def _stackable(models: list[nn.Module]) -> bool:
    """Same architecture and parameter shapes: one vmapped forward can run them all."""
    if len(models) < 2:
        return False
    first = [(n, p.shape) for n, p in models[0].named_parameters()]
    first += [(n, b.shape) for n, b in models[0].named_buffers()]
    for m in models[1:]:
        if type(m) is not type(models[0]):
            return False
        other = [(n, p.shape) for n, p in m.named_parameters()]
        other += [(n, b.shape) for n, b in m.named_buffers()]
        if other != first:
            return False
    return True


def _predict_stacked(
    models: list[nn.Module], inputs: torch.Tensor, batch_size: int, bf16: bool
) -> torch.Tensor:
    """Top-1 predictions (S, N) of S same-architecture models, all seeds in one vmapped forward
    per chunk of `batch_size` images (halved on a CUDA out-of-memory error)."""
    import copy

    from torch.func import functional_call, stack_module_state, vmap

    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def one(p, b, x):
        return functional_call(base, (p, b), (x,))

    run = vmap(one, in_dims=(0, 0, None))
    preds, i, bs = [], 0, max(1, batch_size)
    while i < inputs.shape[0]:
        x = inputs[i : i + bs]
        try:
            with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = run(params, buffers, x)  # (S, b, K)
        except torch.cuda.OutOfMemoryError:
            if bs == 1:
                raise
            bs = max(1, bs // 2)
            torch.cuda.empty_cache()
            continue
        preds.append(logits.argmax(-1))
        i += x.shape[0]
    return torch.cat(preds, dim=1)


@torch.no_grad()
def evaluate_models(
    models: list[nn.Module],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    batch_size: int = 1024,
    *,
    precision: str = "fp32",
    stacked: bool = False,
) -> list[ModelScores]:
    """Top-1 accuracy, per-class accuracy and confusion matrix of each model on (inputs, labels).

    precision "bf16" (or "auto" on CUDA): bf16 autocast on CUDA (fp32 on the CPU). stacked: all
    models in one vmapped forward per batch of images; the default is per model, the faster
    one where measured (H200, 2026-11-26, 5 ConvNet-D3 on the 10,000 test images: stacked bf16
    149k img/s vs per-model fp32 212k, docs/benchmarks.md; on a CPU grouped convolutions are
    slower than separate ones too). The predictions are the per-model ones (tested), only the
    launches differ.
    """
    labels = labels.to(inputs.device)
    bf16 = inputs.device.type == "cuda" and resolve_precision(precision, inputs.device) == "bf16"
    for model in models:
        model.eval()
    if stacked and models and not _stackable(models):
        raise ValueError("stacked evaluation needs models of one architecture")
    if stacked and models:
        all_preds = _predict_stacked(models, inputs, batch_size, bf16)  # (S, N)
    else:
        rows = []
        for model in models:
            with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=bf16):
                rows.append(
                    torch.cat(
                        [
                            model(inputs[i : i + batch_size]).argmax(1)
                            for i in range(0, inputs.shape[0], batch_size)
                        ]
                    )
                )
        all_preds = torch.stack(rows) if rows else torch.zeros(0, inputs.shape[0])
    return [
        scores_from_confusion(
            torch.bincount(
                labels * num_classes + preds, minlength=num_classes * num_classes
            ).reshape(num_classes, num_classes)
        )
        for preds in all_preds
    ]


def scores_from_confusion(conf: torch.Tensor) -> ModelScores:
    """Accuracy, per-class accuracy and the matrix itself from a [true][predicted] count matrix
    (a whole split's, or the sum of shards')."""
    support = conf.sum(1).clamp_min(1)
    total = int(conf.sum())
    return ModelScores(  # float32 quotients, as the mean of a float32 hit vector gives them
        accuracy=float(conf.diag().sum().float() / max(1, total)),
        per_class=(conf.diag().float() / support).tolist(),
        confusion=conf.cpu().tolist(),
    )


def evaluate_sharded(
    models: list[nn.Module],
    inputs: torch.Tensor | NormalisedImages,
    labels: torch.Tensor,
    num_classes: int,
    batch_size: int = 1024,
    *,
    precision: str = "fp32",
) -> list[ModelScores]:
    """evaluate_models over a torchrun job's ranks: each rank predicts its contiguous shard of
    the split (ladd.device.Ranks.shard) and the count matrices are summed over the ranks, so
    every rank returns the whole split's scores (the same numbers as one process: counts add
    exactly). One process: evaluate_models."""
    import torch.distributed as dist

    from ladd.device import ranks

    rk = ranks()
    if rk.world < 2:
        return evaluate_models(models, inputs, labels, num_classes, batch_size, precision=precision)
    mine = rk.shard(int(inputs.shape[0]))
    part = evaluate_models(
        models, inputs[mine], labels[mine], num_classes, batch_size, precision=precision
    )
    dev = inputs.device if inputs.device.type == "cuda" else torch.device("cpu")
    conf = torch.stack([torch.tensor(s.confusion, dtype=torch.int64) for s in part]).to(dev)
    dist.all_reduce(conf)
    return [scores_from_confusion(c) for c in conf]


MONITOR_IMAGES = 500  # real test images the live view scores every monitor_every epochs


def monitor_subset(test_set: ImageSet, count: int = MONITOR_IMAGES) -> torch.Tensor:
    """Indices of a fixed, class-balanced subset of the test split for the live accuracy view.

    Shown while training only; never used to choose anything (the reported accuracy is the
    whole split, once, at the end).
    """
    from ladd.data import class_balanced_indices

    k = test_set.info.num_classes
    per_class = max(1, count // max(1, k))
    return class_balanced_indices(test_set.labels, per_class, k, seed=0, strict=False)


def make_monitor(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    progress: ProgressFn | None,
    history: dict[int, dict[int, float]] | None = None,
) -> Monitor:
    """A trainer monitor: per-seed accuracy of the models on (x, y), sent as a progress event
    and, when `history` is given, kept there as {epoch: {seed: accuracy}}."""

    def monitor(p: int, seeds: tuple[int, ...], models: list[nn.Module]) -> None:
        modes = [m.training for m in models]
        accs = [s.accuracy for s in evaluate_models(models, x, y, num_classes)]
        for m, was in zip(models, modes, strict=True):
            m.train(was)
        if history is not None:
            history.setdefault(p + 1, {}).update(zip(seeds, accs, strict=True))
        if progress is not None:
            progress(
                ProgressEvent(
                    "monitor",
                    p + 1,
                    0,
                    None,
                    "accuracy on the monitor subset: " + ", ".join(f"{100 * a:.1f}%" for a in accs),
                    note=True,
                    metrics={"epoch": p + 1, "seeds": list(seeds), "accuracy": accs},
                )
            )

    return monitor


def execute(
    plan: TrainPlan,
    dataset: TrainableSet,
    test_set: ImageSet,
    *,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    monitor_every: int = 0,
    checkpoint: TrainCheckpoint | None = None,
    compile_cache: str | Path | None = None,
    data: TrainingData | None = None,
) -> DeployResult:
    """Train the plan's seeds on `dataset` (the set it was planned for) and test them once on
    `test_set`. monitor_every > 0: every so many epochs, per-seed accuracy on a fixed subset of
    the test split goes to `progress` (shown only; nothing is chosen on it). `checkpoint`: save
    and resume the exact training state (a TrainCheckpoint named by plan.key).
    `compile_cache`: the folder of compiled kernels to use (ladd.trainers.train_models).
    `data`: the training samples when they were built elsewhere (the plan was made for them,
    e.g. ladd.fkd_store.store_training_data); `dataset` then only gives the test space."""
    cfg = plan.config
    dev = plan.torch_device
    if data is None:  # else: built elsewhere (a stored-crops store, ladd.fkd_store)
        data = build_training_data(
            dataset, cfg.mode, n=cfg.n, r=cfg.r, full_labels=cfg.full_labels, sampler=cfg.sampler
        )
    x_test = eval_inputs(dataset, test_set, dev)  # checks sizes before the long part
    monitor = None
    history: dict[int, dict[int, float]] = {}
    if checkpoint is not None:  # a resumed run keeps the points measured before its crash

        def restore(rows: list[list[Any]]) -> None:
            for e, s, a in rows:
                history.setdefault(int(e), {})[int(s)] = float(a)

        checkpoint.attach(
            "monitor",
            lambda: [[e, s, a] for e, row in sorted(history.items()) for s, a in row.items()],
            restore,
        )
    saved = checkpoint.saved_meta() if checkpoint is not None else None
    if saved is not None and progress is not None:
        where = f"pass {saved.get('pass', '?')} of {cfg.passes}"
        if "seed_index" in saved:  # the sequential loop saves per seed
            where += f" of seed {cfg.seeds[int(saved['seed_index'])]}"
        progress(
            ProgressEvent("train", 0, 0, None, f"resuming the saved state: {where}", note=True)
        )
    if monitor_every > 0:
        pick = monitor_subset(test_set).to(dev)
        monitor = make_monitor(
            x_test[pick], test_set.labels.to(dev)[pick], data.num_classes, progress, history
        )
    hooks = TrainHooks(progress, stop, monitor, monitor_every, checkpoint)
    trained = train_models(data, plan, hooks, compile_cache=compile_cache)
    if progress is not None:
        progress(ProgressEvent("evaluate", 0, 0, None, "testing on the real test split", note=True))
    scores = evaluate_sharded(  # over the ranks of a torchrun job, else evaluate_models
        trained.models,
        x_test,
        test_set.labels,
        data.num_classes,
        cfg.eval_batch_size,
        precision=cfg.precision,  # the models are tested in the precision they trained in
    )
    accs = [s.accuracy for s in scores]
    confusion = torch.tensor([s.confusion for s in scores]).sum(0).tolist() if scores else []
    names = list(dataset.class_names or test_set.info.class_names)
    return DeployResult(
        plan=plan,
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
        engine=trained.engine,
        monitor=[
            {"epoch": e, "accuracy": [history[e].get(s) for s in cfg.seeds]}
            for e in sorted(history)
        ],
        models=trained.models,
        strategy=trained.strategy,
    )


def plan_architectures(
    dataset: TrainableSet,
    cfg: TrainConfig,
    archs: list[str] | tuple[str, ...] | None = None,
    device: str | torch.device = "auto",
) -> list[TrainPlan]:
    """One plan per architecture of `archs` (default: the paper's five) for cfg: each gets
    those of cfg.model_options it takes (ladd.models.supported_options: a ConvNet width reaches
    the ConvNets only) and its own lr unless cfg.lr is set."""
    archs = tuple(archs) if archs else paper_archs(int(dataset.images.shape[-1]))
    return [
        plan_training(
            dataset,
            replace(cfg, arch=arch, model_options=supported_options(arch, cfg.model_options)),
            device,
        )
        for arch in archs
    ]


def evaluate_architectures(
    plans: list[TrainPlan],
    dataset: TrainableSet,
    test_set: ImageSet,
    *,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    on_result: Callable[[str, DeployResult], None] | None = None,
    compile_cache: str | Path | None = None,
) -> CrossArchResult:
    """Execute every plan of `plans` (plan_architectures) in turn; `on_result(arch, result)` is
    called as each finishes."""
    results: dict[str, DeployResult] = {}
    for plan in plans:
        arch = plan.config.arch

        def relay(ev: ProgressEvent, arch: str = arch) -> None:
            if progress is not None:
                progress(replace(ev, message=f"{arch} {ev.message}".strip()))

        res = execute(
            plan, dataset, test_set, progress=relay, stop=stop, compile_cache=compile_cache
        )
        results[arch] = res
        if on_result is not None:
            on_result(arch, res)
    return CrossArchResult(results)
