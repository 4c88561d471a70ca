"""The long pieces of work pages start, each one ladd call run as a background job.

Each `submit_*` captures plain values (paths, names, numbers), never Streamlit objects, and
hands a closure to the shared JobRegistry. What the work produces lands in the workspace
(checkpoints, sets, runs database) through ladd itself; a job's result is a small summary.
"""

from __future__ import annotations

from typing import Any

from app.jobs import WARNING_PREFIX, Job, registry
from app.paths import check_source


def submit_demo(root: str, source: str, size: str, data_root: str | None = None) -> Job:
    """Build (or reuse) the demo artifacts in workspace `root` (CIFAR files in `data_root`)."""

    def work(job: Job) -> dict[str, Any]:
        from ladd.demo import build_demo

        arts = build_demo(
            root,
            source=source,
            size=size,
            progress=job.progress,
            stop=job.stop,
            device="auto",
            data_root=data_root,
        )
        return arts.to_dict()

    return registry().submit(
        "demo", f"Demo ({source}, {size})", work, {"source": source, "size": size}
    )


def submit_random_real(root: str, source: str, ipc: int, seed: int) -> Job:
    """Draw a random-real distilled set and save it (MTT layout) under sets/ (a recorded step)."""

    source = check_source(source)

    def work(job: Job) -> str:
        from ladd.distill import RandomConfig
        from ladd.pipeline import run_distill
        from ladd.store import Workspace

        job.progress(stage="random_real", step=0, total=1, message=f"drawing from {source}")
        res = run_distill(Workspace(root), source, "random", RandomConfig(ipc=ipc, seed=seed))
        job.progress(stage="random_real", step=1, total=1, message=f"saved {res.path.name}")
        return str(res.path)

    return registry().submit(
        "random_real", f"Random-real set ({source}, IPC {ipc})", work, {"source": source}
    )


def submit_labeler(
    root: str, source: str, epochs: int, every: int, width: int, limit_per_class: int | None
) -> Job:
    """Train a labeler with checkpoints every `every` epochs (a recorded "labeler" step)."""
    source = check_source(source)

    def work(job: Job) -> list[str]:
        from ladd.labeler import LabelerConfig
        from ladd.pipeline import run_labeler
        from ladd.store import Workspace

        cfg = LabelerConfig(
            epochs=epochs,
            save_at=tuple(range(every, epochs + 1, every)) or (epochs,),
            limit_per_class=limit_per_class,
            model_options={"width": width} if width else {},
        )
        res = run_labeler(
            Workspace(root),
            source,
            cfg,
            device="auto",
            progress=job.progress,
            stop=job.stop,
            **streamed_loading(source),
        )
        return [c.path for c in res.checkpoints]

    return registry().submit(
        "labeler", f"Labeler on {source} ({epochs} epochs)", work, {"source": source}
    )


def streamed_loading(source: str) -> dict[str, Any]:
    """run_labeler's loader options for a job: a streamed source (imagenet1k) decodes in
    worker processes started by a fork server (a job runs in a thread of the Streamlit server,
    where forking is unsafe); a source loaded whole needs none."""
    from ladd.data.streaming import thread_safe_workers
    from ladd.pipeline import is_streamed

    if not is_streamed(source):
        return {}
    return {"workers": thread_safe_workers(), "start_method": "forkserver"}


def submit_training(
    root: str,
    set_path: str,
    cfg_kwargs: dict[str, Any],
    label: str,
    *,
    monitor_every: int = 0,
    data_root: str | None = None,
    allow_unwhitened: bool = False,
) -> Job:
    """Train and test models on a set; the run (metrics, weights) lands in the runs database.

    The set and its test split load as `ladd train` loads them (ladd.sets.inputs), from
    `data_root` where the source's files live; the set's warnings go to the job's log as
    notes. monitor_every > 0: every so many epochs the models are scored on a fixed test subset
    and the job keeps those figures (the training page's live accuracy curve)."""

    def work(job: Job) -> int:
        from ladd.pipeline import run_train
        from ladd.progress import ProgressEvent
        from ladd.sets.inputs import SetReading, load_training_inputs
        from ladd.store import Workspace
        from ladd.training import TrainConfig

        ws = Workspace(root)
        cfg = TrainConfig(**cfg_kwargs)
        total = cfg.epochs * len(cfg.seeds)
        job.progress(stage="load", step=0, total=total, message="loading the set")
        reading = SetReading(allow_unwhitened=allow_unwhitened)
        inputs = load_training_inputs(
            set_path,
            reading,
            data_root=data_root,
            cache_dir=ws.cache_dir,
            check_source=check_source,  # a set's metadata must not lead outside the allow-list
        )
        for warning in inputs.warnings:
            job.progress(
                ProgressEvent("load", 0, total, None, f"{WARNING_PREFIX}{warning}", note=True)
            )
        run_id, _ = run_train(
            ws,
            inputs.dataset,
            inputs.test,
            cfg,
            set_path=set_path,
            source=inputs.source,
            label=label,
            device="auto",
            progress=job.progress,
            stop=job.stop,
            monitor_every=monitor_every,
            reading=reading,
        )
        return run_id

    return registry().submit("train", f"Training: {label}", work, {"set": set_path, **cfg_kwargs})
