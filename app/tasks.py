"""The long pieces of work pages start, each one ladd call run as a background job.

Each `submit_*` captures plain values (paths, names, numbers), never Streamlit objects, and
hands a closure to the shared JobRegistry. What the work produces lands in the workspace
(checkpoints, sets, runs database) through ladd itself; a job's result is a small summary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from app.jobs import WARNING_PREFIX, Job, registry
from app.paths import check_path, check_source
from ladd.plan import TrainPlan
from ladd.sets.inputs import SetReading, TrainingInputs
from ladd.training import TrainConfig


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


@dataclass(frozen=True)
class PlannedTraining:
    """What the training page's click settles before any work starts: the set and its test
    split as `ladd train` loads them, how they were read, their warnings, and the plan."""

    root: str
    set_path: str
    inputs: TrainingInputs
    reading: SetReading
    plan: TrainPlan


def plan_training_job(
    root: str,
    set_path: str,
    cfg: TrainConfig,
    *,
    data_root: str | None = None,
    allow_unwhitened: bool = False,
    source: str | None = None,
    soft_labels: str | None = None,
    device: str = "auto",
) -> PlannedTraining:
    """Load the set (ladd.sets.inputs, as `ladd train` loads it, from `data_root` where the
    source's files live; `source`: the real test split and normalisation, as --source, for a
    set that does not name its own) and plan the run (ladd.plan.plan_training) now, at the
    click: a bad option or an untrainable set is an error on the page, never in a worker thread.
    `soft_labels`: a soft-label store beside the image folder (as --soft-labels; label mode
    "store" replays it), checked against the allow-list and paired with the folder here."""
    from ladd.plan import plan_training
    from ladd.sets.inputs import load_training_inputs
    from ladd.store import Workspace

    reading = SetReading(source=source or None, allow_unwhitened=allow_unwhitened)
    inputs = load_training_inputs(
        set_path,
        reading,
        data_root=data_root,
        cache_dir=Workspace(root).cache_dir,
        check_source=check_source,  # a set's metadata must not lead outside the allow-list
    )
    if soft_labels:
        from ladd.stores.pairing import open_soft_label_set

        store = check_path(soft_labels)  # the page checked it; a caller may not have
        paired = open_soft_label_set(set_path, store, dataset=inputs.dataset)
        inputs = replace(inputs, dataset=paired)
    return PlannedTraining(
        root, set_path, inputs, reading, plan_training(inputs.dataset, cfg, device)
    )


def submit_training(planned: PlannedTraining, label: str, *, monitor_every: int = 0) -> Job:
    """Execute a planned run in the background and record it (ladd.pipeline.run_train); the
    set's warnings go to the job's log as notes. monitor_every > 0: every so many epochs the
    models are scored on a fixed test subset and the job keeps those figures (the training
    page's live accuracy curve)."""
    plan = planned.plan

    def work(job: Job) -> int:
        from ladd.pipeline import run_train
        from ladd.progress import ProgressEvent
        from ladd.store import Workspace

        total = plan.config.passes * len(plan.config.seeds)
        for warning in planned.inputs.warnings:
            job.progress(
                ProgressEvent("load", 0, total, None, f"{WARNING_PREFIX}{warning}", note=True)
            )
        run_id, _ = run_train(
            Workspace(planned.root),
            plan,
            planned.inputs.dataset,
            planned.inputs.test,
            set_path=planned.set_path,
            source=planned.inputs.source,
            label=label,
            progress=job.progress,
            stop=job.stop,
            monitor_every=monitor_every,
            reading=planned.reading,
        )
        return run_id

    info = {"set": planned.set_path, **plan.config.to_dict()}
    return registry().submit("train", f"Training: {label}", work, info)
