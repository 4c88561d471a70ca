"""The long pieces of work pages start, each one ladd call run as a background job.

Each `submit_*` captures plain values (paths, names, numbers), never Streamlit objects, and
hands a closure to the shared JobRegistry. What the work produces lands in the workspace
(checkpoints, sets, runs database) through ladd itself; a job's result is a small summary.
"""

from __future__ import annotations

from typing import Any

from app.jobs import Job, registry


def submit_demo(root: str, source: str, size: str) -> Job:
    """Build (or reuse) the demo artifacts in workspace `root`."""

    def work(job: Job) -> dict[str, Any]:
        from ladd.demo import build_demo

        arts = build_demo(
            root, source=source, size=size, progress=job.progress, stop=job.stop, device="auto"
        )
        return arts.to_dict()

    return registry().submit(
        "demo", f"Demo ({source}, {size})", work, {"source": source, "size": size}
    )


def submit_random_real(root: str, source: str, ipc: int, seed: int) -> Job:
    """Draw a random-real distilled set and save it (MTT layout) under sets/."""

    def work(job: Job) -> str:
        from ladd.data import load_source
        from ladd.sets import random_real
        from ladd.store import Workspace

        ws = Workspace(root)
        job.progress(stage="load", step=0, total=2, message=f"loading {source}")
        train = load_source(source, "train", cache_dir=ws.cache_dir)
        job.progress(stage="draw", step=1, total=2, message=f"drawing {ipc} images per class")
        ds = random_real(train, ipc, seed=seed)
        tag = source.replace(":", "_").replace("/", "_")
        out = ws.sets_dir / f"random_{tag}_ipc{ipc}_seed{seed}"
        ds.save_mtt(out)
        job.progress(stage="done", step=2, total=2, message=f"saved {out.name}")
        return str(out)

    return registry().submit(
        "random_real", f"Random-real set ({source}, IPC {ipc})", work, {"source": source}
    )


def submit_labeler(
    root: str, source: str, epochs: int, every: int, width: int, limit_per_class: int | None
) -> Job:
    """Train a labeler with checkpoints every `every` epochs, recorded as a "labeler" run."""

    def work(job: Job) -> list[str]:
        from ladd.labeler import LabelerConfig, train_labeler
        from ladd.store import Workspace

        ws = Workspace(root)
        cfg = LabelerConfig(
            epochs=epochs,
            save_at=tuple(range(every, epochs + 1, every)) or (epochs,),
            limit_per_class=limit_per_class,
            model_options={"width": width} if width else {},
        )
        tag = source.replace(":", "_").replace("/", "_")
        limit = f"_l{limit_per_class}" if limit_per_class else ""
        out = ws.labelers_dir / f"{tag}_w{width}{limit}_seed{cfg.seed}"
        with ws.db.run(
            "labeler", {"source": source, "labeler": cfg.to_dict(), "out": str(out)}
        ) as run:
            paths = train_labeler(
                source,
                cfg,
                out,
                device="auto",
                progress=job.progress,
                stop=job.stop,
                cache_dir=ws.cache_dir,
            )
            run.log_metrics(checkpoints=[str(p) for p in paths])
        return [str(p) for p in paths]

    return registry().submit(
        "labeler", f"Labeler on {source} ({epochs} epochs)", work, {"source": source}
    )


def submit_training(root: str, set_path: str, cfg_kwargs: dict[str, Any], label: str) -> Job:
    """Train and test models on a set; the run (metrics, weights) lands in the runs database."""

    def work(job: Job) -> int:
        from ladd.data import load_source
        from ladd.deploy import TrainConfig, train_recorded
        from ladd.sets import load_set
        from ladd.store import Workspace

        ws = Workspace(root)
        cfg = TrainConfig(**cfg_kwargs)
        job.progress(
            stage="load", step=0, total=cfg.epochs * len(cfg.seeds), message="loading the set"
        )
        ds = load_set(set_path)
        source = getattr(ds, "source", None)
        if not source:
            raise ValueError("the set does not name its source dataset, so there is no test split")
        test = load_source(
            source, "test", image_size=int(ds.images.shape[-1]), cache_dir=ws.cache_dir
        )
        run_id, _ = train_recorded(
            ws,
            ds,
            test,
            cfg,
            device="auto",
            progress=job.progress,
            stop=job.stop,
            extra={"set": set_path, "source": source, "label": label},
        )
        return run_id

    return registry().submit("train", f"Training: {label}", work, {"set": set_path, **cfg_kwargs})
