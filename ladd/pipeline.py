"""The recorded pipeline: one function per LADD step that runs it and records it in a workspace.

    labeler     run_labeler           train the labeler g, checkpoints at chosen epochs
    distill     run_distill           random real, DM or MTT (random real = `ladd random-real`)
    experts     run_experts           MTT expert trajectories
    augment     run_label_augment     dense labels for a distilled set -> a label-augmented file
    train       run_train             execute a plan (ladd.plan) and record it (weights kept)
    evaluate    run_evaluate          the same per architecture (paper Table 2)

The command line, the dashboard's background tasks, the demo and the sweep all call these, so
one kind of step lands in the runs database with one config and metrics schema, and its
artifacts get one kind of name (`slug`). `record_train` is the only writer of "train" runs (the
sweep records its workers' results with it). ladd.summaries is the typed view of a run record
that pages and `ladd runs` read. Nothing here parses arguments or draws anything.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ladd.data.imageset import ImageSet
from ladd.plan import TrainPlan
from ladd.progress import ProgressFn
from ladd.results import CrossArchResult, DeployResult
from ladd.sets.augmented import TrainableSet
from ladd.sets.inputs import SetReading
from ladd.store import Workspace
from ladd.training import TrainCheckpoint

if TYPE_CHECKING:  # types only: the steps import their modules when they run
    from torch.utils.data import DataLoader

    from ladd.data.imageset import SourceInfo
    from ladd.distill import DMConfig, ExpertConfig, MTTConfig, RandomConfig
    from ladd.labeler import LabelerConfig
    from ladd.sets.base import DistilledSet

__all__ = [
    "CheckpointInfo",
    "LabelerRun",
    "SetRun",
    "checkpoint_info",
    "default_labeler_dir",
    "default_set_dir",
    "find_train_run",
    "is_streamed",
    "run_distill",
    "run_evaluate",
    "run_experts",
    "run_label_augment",
    "run_labeler",
    "record_train",
    "run_train",
    "streamed_labeler_loaders",
    "slug",
]


def slug(text: str) -> str:
    """A file-name-safe form of a source or set name: `imagefolder:/a/b` -> `imagefolder_a_b`."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return out or "unnamed"


def _check_out(path: Path, inputs: tuple[Path | None, ...], force: bool) -> None:
    """Refuse at once to write over an existing artifact without force, one of this step's
    inputs, or a workspace's own files (ladd.files.check_output); the writer then holds the
    output with ladd.files.claim_output while it writes."""
    from ladd.files import SET_FOLDER_FILES, check_output

    check_output(path, inputs=inputs, force=force, members=SET_FOLDER_FILES)


# ---------------------------------------------------------------------------------------------
# Labeler


@dataclass(frozen=True)
class CheckpointInfo:
    """One labeler checkpoint as a run record lists it."""

    epoch: int
    test_accuracy: float
    path: str
    train_flops: float
    seconds: float


@dataclass(frozen=True)
class LabelerRun:
    run_id: int
    out_dir: Path
    checkpoints: tuple[CheckpointInfo, ...]


def checkpoint_info(path: str | Path) -> CheckpointInfo:
    """The record of a labeler checkpoint, read from its metadata."""
    from ladd.labeler import read_meta

    m = read_meta(path)
    return CheckpointInfo(m.epoch, m.test_accuracy, str(path), m.train_flops, m.seconds)


def default_labeler_dir(ws: Workspace, source: str, cfg: LabelerConfig) -> Path:
    """labelers/<source>_<arch>[_w<width>][_l<limit>][_zca]_seed<seed>"""
    parts = [slug(source), cfg.arch or "default"]
    if cfg.model_options.get("width"):
        parts.append(f"w{cfg.model_options['width']}")
    if cfg.limit_per_class:
        parts.append(f"l{cfg.limit_per_class}")
    if cfg.zca:
        parts.append("zca")
    parts.append(f"seed{cfg.seed}")
    return ws.labelers_dir / "_".join(parts)


def run_labeler(
    ws: Workspace,
    source: str,
    cfg: LabelerConfig,
    *,
    out_dir: str | Path | None = None,
    device: str | torch.device = "auto",
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    resume: bool = True,
    data_root: str | Path | None = None,
    train_set: ImageSet | None = None,
    test_set: ImageSet | None = None,
    state_seconds: float = 60.0,
    extra: dict[str, Any] | None = None,
    workers: int = 0,
    start_method: str | None = None,
) -> LabelerRun:
    """Train (or resume) a labeler on `source`; a "labeler" run lists its checkpoints.

    `train_set`/`test_set` (ImageSets) replace loading the source's splits (the demo's subsets).
    A streamed source (imagenet1k) is read through DataLoaders with `workers` decoding
    processes started by `start_method` (streamed_labeler_loaders; "forkserver" from a thread
    of a server); the others are loaded whole.
    """
    from ladd.labeler import train_labeler

    out = Path(out_dir) if out_dir is not None else default_labeler_dir(ws, source, cfg)
    config = {"source": source, "labeler": cfg.to_dict(), "out": str(out), **(extra or {})}
    streamed = train_set is None and is_streamed(source)
    if streamed:
        config["loader"] = {
            "workers": int(workers),
            "start_method": start_method,
            "train_transform": "eval",
        }
    with ws.db.run("labeler", config) as run:
        what: Any = train_set if train_set is not None else source
        loaders: dict[str, Any] = {}
        if streamed:
            what, loaders["loader"], loaders["test_loader"] = streamed_labeler_loaders(
                source, cfg, device=device, data_root=data_root, cache_dir=ws.cache_dir,
                workers=workers, start_method=start_method,
            )  # fmt: skip
        paths = train_labeler(
            what,
            cfg,
            out,
            device=device,
            progress=progress,
            resume=resume,
            stop=stop,
            test_set=test_set,
            data_root=data_root,
            cache_dir=ws.cache_dir,
            state_seconds=state_seconds,
            **loaders,
        )
        rows = tuple(checkpoint_info(p) for p in paths)
        for r in rows:
            run.add_artifact(f"epoch_{r.epoch:03d}", r.path)
        run.log_metrics(checkpoints=[asdict(r) for r in rows], run_id=run.id)
    return LabelerRun(run.id, out, rows)


def is_streamed(source: str) -> bool:
    """Whether `source` is read by streaming (too large to load whole: imagenet1k)."""
    from ladd.data import get_source
    from ladd.data.imagenet1k import ImageNet1kSource

    try:
        return isinstance(get_source(source), ImageNet1kSource)
    except (KeyError, ValueError):
        return False


def streamed_labeler_loaders(
    source: str,
    cfg: LabelerConfig,
    *,
    device: str | torch.device = "auto",
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 0,
    start_method: str | None = None,
) -> tuple[SourceInfo, DataLoader, DataLoader]:
    """(SourceInfo, train loader, test loader) for training a labeler on a streamed source.

    The train split is shuffled from cfg.seed and read with the evaluation transform (resize,
    centre crop: fixed images, as the ImageNet subsets are decoded and as MTT's buffer.py reads
    its ImageNet subsets); the recipe's own augmentation (DSA for `mtt`) runs on top, as on
    every other source. The size is cfg.image_size, else the source's (224 px for imagenet1k).
    """
    from ladd.data import LoaderConfig, imagenet1k_loader, source_info
    from ladd.device import resolve_device

    info = source_info(source, cfg.image_size, cache_dir=cache_dir, data_root=data_root)
    dev = resolve_device(device)
    size = info.image_size

    def loader(split: str, shuffle: bool) -> DataLoader:
        opts = LoaderConfig(
            batch_size=cfg.batch_size,
            workers=workers,
            shuffle=shuffle,
            seed=cfg.seed,
            start_method=start_method,
        )
        return imagenet1k_loader(
            split, size, opts, device=dev, data_root=data_root, cache_dir=cache_dir,
            transform="eval",
        )  # fmt: skip

    return info, loader("train", True), loader("val", False)


# ---------------------------------------------------------------------------------------------
# Sets: distillation and label augmentation


@dataclass(frozen=True)
class SetRun:
    """A step that wrote a set: its run, where the set is, and the set itself."""

    run_id: int
    path: Path
    dataset: TrainableSet = field(repr=False)
    metrics: dict[str, Any] = field(default_factory=dict)


def default_set_dir(ws: Workspace, method: str, source: str, ipc: int, seed: int) -> Path:
    """sets/<method>_<source>_ipc<ipc>_seed<seed> (random real: method "random_real")."""
    name = "random_real" if method == "random" else method
    return ws.sets_dir / f"{name}_{slug(source)}_ipc{ipc}_seed{seed}"


def run_distill(
    ws: Workspace,
    source: str,
    method: str,
    cfg: RandomConfig | DMConfig | MTTConfig,
    *,
    out_dir: str | Path | None = None,
    train_set: ImageSet | None = None,
    experts: list[Path] | None = None,
    image_size: int | None = None,
    limit_per_class: int | None = None,
    data_root: str | Path | None = None,
    device: str | torch.device = "auto",
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    force: bool = False,
    extra: dict[str, Any] | None = None,
) -> SetRun:
    """Distil `source` with a built-in method and save the set (MTT layout) in a "distill" run.

    `cfg`: a RandomConfig ("random": the random-real baseline), DMConfig ("dm") or MTTConfig
    ("mtt", with `experts`: trajectory files of `run_experts`).
    """
    from ladd.data import load_source
    from ladd.distill import METHODS, distill_dm, distill_mtt, distill_random

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    ipc, seed = int(cfg.ipc), int(cfg.seed)
    out = Path(out_dir) if out_dir is not None else default_set_dir(ws, method, source, ipc, seed)
    resuming = method == "mtt" and out.is_dir() and not (out / "images_best.pt").exists()
    if not resuming:  # an unfinished MTT folder holds its own checkpoint: continue it
        _check_out(out, (), force)
    if train_set is None:
        kw: dict[str, Any] = {"cache_dir": ws.cache_dir, "limit_per_class": limit_per_class}
        if image_size:
            kw["image_size"] = image_size
        if data_root:
            kw["data_root"] = data_root
        train_set = load_source(
            source, "train", device=device if method != "random" else None, **kw
        )
    config = {
        "source": source,
        "method": method,
        "ipc": ipc,
        "seed": seed,
        "out": str(out),
        "config": asdict(cfg),
        **(extra or {}),
    }
    from ladd.files import SET_FOLDER_FILES, claim_output

    claim = claim_output(
        out, force=force, exist_ok=resuming, members=SET_FOLDER_FILES, workspace=ws.root
    )
    with claim, ws.db.run("distill", config) as run:
        if method == "random":
            res = distill_random(train_set, ipc, seed=seed)
        elif method == "dm":
            res = distill_dm(train_set, cfg, device=device, progress=progress, stop=stop)
        else:
            if not experts:
                raise ValueError("MTT needs expert trajectories: run `ladd experts` first")
            if not resuming:  # --force over a finished folder: its resume state is not this run's
                (out / "mtt_checkpoint.safetensors").unlink(missing_ok=True)
            res = distill_mtt(
                train_set,
                experts,
                cfg,
                device=device,
                checkpoint_dir=out,
                progress=progress,
                stop=stop,
            )
        res.save(out)
        run.add_artifact("set", out)
        metrics = {
            "images": len(res.distilled),
            "ipc": ipc,
            "seconds": res.seconds,
            "peak_memory_bytes": res.peak_memory_bytes,
            "final_loss": res.losses[-1] if res.losses else None,
            "run_id": run.id,
        }
        run.log_metrics(**metrics)
    return SetRun(run.id, out, res.distilled, metrics)


def run_experts(
    ws: Workspace,
    source: str,
    cfg: ExpertConfig,
    *,
    out_dir: str | Path | None = None,
    train_set: ImageSet | None = None,
    limit_per_class: int | None = None,
    data_root: str | Path | None = None,
    device: str | torch.device = "auto",
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> tuple[int, Path, list[Path]]:
    """Train MTT expert trajectories in an "experts" run; (run id, folder, trajectory files)."""
    from ladd.data import load_source
    from ladd.distill import train_experts

    out = (
        Path(out_dir)
        if out_dir is not None
        else ws.root / "experts" / (f"{slug(source)}_{cfg.arch}")
    )
    if train_set is None:
        kw: dict[str, Any] = {"cache_dir": ws.cache_dir, "limit_per_class": limit_per_class}
        if data_root:
            kw["data_root"] = data_root
        train_set = load_source(source, "train", device=device, **kw)
    with ws.db.run("experts", {"source": source, "out": str(out), **asdict(cfg)}) as run:
        paths = train_experts(train_set, cfg, out, device=device, progress=progress, stop=stop)
        for p in paths:
            run.add_artifact(p.stem, p)
        run.log_metrics(experts=len(paths), run_id=run.id)
    return run.id, out, paths


def run_label_augment(
    ws: Workspace,
    distilled: DistilledSet,
    labeler: str | Path,
    *,
    n: int = 5,
    r: float = 0.625,
    distilled_path: str | Path | None = None,
    out: str | Path | None = None,
    temperature: float = 1.0,
    codec: str | None = None,
    allow_mismatch: bool = False,
    device: str | torch.device = "auto",
    force: bool = False,
    extra: dict[str, Any] | None = None,
    sampler: str | None = None,
) -> SetRun:
    """Dense labels for a distilled set from a labeler checkpoint, saved in an "augment" run.

    `codec`: how the file stores them (ladd.codecs spec, default ladd.codecs.DEFAULT_CODEC).
    `sampler`: crops other than the N x R grid (ladd.samplers spec; recorded in the run)."""
    from ladd.codecs import DEFAULT_CODEC, parse_codec
    from ladd.dense import augment, set_storage_report
    from ladd.labeler import load_labeler

    spec = parse_codec(codec or DEFAULT_CODEC).spec

    if hasattr(distilled, "dense"):
        raise ValueError(f"{distilled_path or 'the set'} is already label-augmented")
    lab = load_labeler(labeler, device=device)
    if out is None:
        stem = Path(distilled_path).stem if distilled_path else "set"
        out = ws.sets_dir / f"{stem}_n{n}_r{r:g}_e{lab.meta.epoch}.safetensors"
    out = Path(out)
    _check_out(out, (Path(distilled_path) if distilled_path else None, lab.path), force)
    config = {
        "distilled": str(distilled_path) if distilled_path else None,
        "labeler": str(lab.path),
        "n": n,
        "r": r,
        "temperature": temperature,
        "codec": spec,
        **({"sampler": sampler} if sampler else {}),
        **(extra or {}),
    }
    from ladd.device import ranks

    if not ranks().leader:  # a torchrun job's other ranks label their shares; rank 0 records
        la = augment(
            distilled, lab, n, r, temperature=temperature, device=device,
            allow_mismatch=allow_mismatch, codec=spec, compile="auto", sampler=sampler,
        )  # fmt: skip
        return SetRun(-1, out, la, {})
    from ladd.files import claim_output

    inputs = (Path(distilled_path) if distilled_path else None, lab.path)
    claim = claim_output(out, inputs=inputs, force=force, workspace=ws.root)
    with claim, ws.db.run("augment", config) as run:
        la = augment(
            distilled,
            lab,
            n,
            r,
            temperature=temperature,
            device=device,
            allow_mismatch=allow_mismatch,
            codec=spec,
            compile="auto",  # a recorded step at ImageNet scale compiles on CUDA (1M crops on)
            sampler=sampler,
        )
        path = la.save(out)
        rep = set_storage_report(la)
        run.add_artifact("set", path)
        metrics = {
            "overhead": rep.overhead,
            "label_bytes_per_image": la.label_bytes() / max(1, len(la)),
            "generation_flops": la.generation_flops,
            "labeler_epoch": lab.meta.epoch,
            "labeler_accuracy": lab.meta.test_accuracy,
            "run_id": run.id,
        }
        run.log_metrics(**metrics)
    return SetRun(run.id, path, la, metrics)


# ---------------------------------------------------------------------------------------------
# Deployment: plan -> execute -> record


def _train_metrics(res: DeployResult, d: dict[str, Any]) -> dict[str, Any]:
    """The metrics a train run records, from the DeployResult and its `to_dict()` form."""
    engine = res.engine or {}
    return {
        "seconds_compile": engine.get("seconds_compile", 0.0),
        "precision": res.config.precision,
        "accuracy_mean": res.accuracy_mean,
        "accuracy_std": res.accuracy_std,
        "per_seed": res.per_seed,
        "per_class_mean": d["per_class_mean"],
        "seconds": res.seconds,
        "flops": res.flops,
        "lr": res.lr,
        "final_loss": [c[-1] for c in res.loss_curves],
        **({"compile_failure": engine["compile_failure"]} if engine.get("compile_failure") else {}),
    }


def _train_record(
    plan: TrainPlan,
    *,
    set_path: str | Path | None,
    source: str | None,
    label: str | None,
    reading: SetReading | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    """A "train" run's configuration: the plan's settled config (only the fields its protocol
    uses), the plan (key, engine, model, the set's facts and input space), where the set is,
    how it was read."""
    return {
        "train": plan.train_record(),
        "plan": plan.record(),
        "set": str(set_path) if set_path is not None else None,
        "source": source or plan.set.source,
        "label": label,
        "reading": _reading_record(reading),
        **(extra or {}),
    }


def find_train_run(ws: Workspace, key: str) -> int | None:
    """The newest finished "train" run of the plan `key` whose weights are still on disk."""
    for run in ws.db.list_runs("train"):
        plan = run.config.get("plan") if isinstance(run.config, dict) else None
        if run.status != "done" or not isinstance(plan, dict) or plan.get("key") != key:
            continue
        paths = [Path(v) for k, v in run.artifacts.items() if k.startswith("model_seed")]
        if paths and all(p.is_file() for p in paths):
            return run.id
    return None


def record_train(
    ws: Workspace,
    plan: TrainPlan,
    result: DeployResult | None = None,
    *,
    set_path: str | Path | None = None,
    source: str | None = None,
    label: str | None = None,
    reading: SetReading | None = None,
    extra: dict[str, Any] | None = None,
    work: Callable[[], DeployResult] | None = None,
    resumed: bool = False,
) -> int:
    """The one writer of "train" runs: records the plan, and its result with the models.

    Either `result` (computed elsewhere: a sweep's workers) or `work`, called inside the run
    so that the record says "running" while it trains and "failed" with the error if it
    raises. Returns the run id."""
    config = _train_record(
        plan, set_path=set_path, source=source, label=label, reading=reading, extra=extra
    )
    with ws.db.run("train", config) as run:
        res = result if result is not None else work()  # type: ignore[misc]
        cfg = res.config
        for seed, model in zip(cfg.seeds, res.models, strict=True):
            run.save_model(model, f"model_seed{seed}", {"seed": seed, "mode": cfg.mode})
        d = res.to_dict()
        run.write_json("result.json", d)
        run.log_metrics(**_train_metrics(res, d), resumed=resumed, run_id=run.id)
    return run.id


def run_train(
    ws: Workspace,
    plan: TrainPlan,
    dataset: TrainableSet,
    test_set: ImageSet,
    *,
    set_path: str | Path | None = None,
    source: str | None = None,
    label: str | None = None,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    monitor_every: int = 0,
    checkpoint_seconds: float = 60.0,
    reading: SetReading | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[int, DeployResult]:
    """Execute a plan inside a recorded "train" run; keeps each seed's weights. (run id, result)

    The record keeps the set's warnings (ladd.sets.inputs.set_warnings). The training state is
    checkpointed in the workspace every `checkpoint_seconds` (at an epoch boundary) under the
    plan's key; the same plan run again after a crash or kill resumes from
    it and ends with the weights an uninterrupted run would have. The checkpoint is removed once
    the run is recorded. In a torchrun job (engine "ddp") every rank executes and only rank 0
    records the run and removes the checkpoint; the other ranks return run id -1.
    """
    from ladd.deploy import execute
    from ladd.device import ranks
    from ladd.sets.inputs import set_warnings

    found = set_warnings(dataset)  # recorded with the run, as the set was read
    extra = {**({"set_warnings": list(found)} if found else {}), **(extra or {})}
    ckpt = TrainCheckpoint(plan.checkpoint(ws.root / "checkpoints"), plan.key, checkpoint_seconds)
    resumed = ckpt.saved_meta() is not None

    def work(
        progress: ProgressFn | None = progress, monitor_every: int = monitor_every
    ) -> DeployResult:
        return execute(
            plan,
            dataset,
            test_set,
            progress=progress,
            stop=stop,
            monitor_every=monitor_every,
            checkpoint=ckpt,
            compile_cache=_compile_cache(ws),
        )

    if not ranks().leader:  # a torchrun job's other ranks train beside rank 0; it records
        return -1, work(None, 0)
    results: list[DeployResult] = []

    def keep() -> DeployResult:
        results.append(work())
        return results[0]

    run_id = record_train(
        ws,
        plan,
        set_path=set_path,
        source=source,
        label=label,
        reading=reading,
        extra=extra,
        work=keep,
        resumed=resumed,
    )
    ckpt.remove()
    return run_id, results[0]


def _reading_record(reading: SetReading | None) -> dict[str, Any]:
    """How the set was read (ladd.sets.inputs.SetReading; None: the defaults, as the demo and
    tests read their own sets): every train/evaluate record carries it, so a later reload
    (compare, report) reads the set the same way."""
    from ladd.sets.inputs import SetReading

    return (reading if reading is not None else SetReading()).to_dict()


def _compile_cache(ws: Workspace) -> Path:
    """Compiled kernels live in the workspace's cache (one warm-up serves every later run)."""
    return Path(ws.cache_dir) / "compile"


def run_evaluate(
    ws: Workspace,
    plans: list[TrainPlan],
    dataset: TrainableSet,
    test_set: ImageSet,
    *,
    set_path: str | Path | None = None,
    source: str | None = None,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
    reading: SetReading | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[int, CrossArchResult]:
    """Execute one plan per architecture (ladd.deploy.plan_architectures) inside an "evaluate"
    run; each architecture's models are saved as it finishes. (run id, CrossArchResult)"""
    from ladd.deploy import evaluate_architectures

    config = {
        "plans": {p.config.arch: {"train": p.train_record(), "plan": p.record()} for p in plans},
        "archs": [p.config.arch for p in plans],
        "set": str(set_path) if set_path is not None else None,
        "source": source or (plans[0].set.source if plans else None),
        "reading": _reading_record(reading),
        **(extra or {}),
    }
    if plans:  # the first plan's config as "train" (what summaries read), minus the arch's own
        config["train"] = plans[0].train_record()
    with ws.db.run("evaluate", config) as run:

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
            plans,
            dataset,
            test_set,
            progress=progress,
            stop=stop,
            on_result=keep,
            compile_cache=_compile_cache(ws),
        )
        run.log_metrics(
            average=out.average,
            seconds=sum(r.seconds for r in out.results.values()),
            flops=sum(r.flops for r in out.results.values()),
            table=out.table(),
            run_id=run.id,
        )
    return run.id, out
