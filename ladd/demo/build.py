"""The demo's build: small named steps, each reusing what an earlier build made (one rule,
`_Build.step`); `build_demo` runs them, `load_demo` / `list_demos` read what they wrote."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ladd.demo.cams import _cam_file, save_cam_inputs
from ladd.demo.sizes import DEMO_SIZES, DemoSize
from ladd.demo.summary import DemoArtifacts, demo_tag
from ladd.progress import ProgressEvent, ProgressFn
from ladd.training import TrainingStopped

# ---------------------------------------------------------------------------------------------
# The build: small named steps, each reusing what an earlier build made (one rule, `_Build.step`)


@dataclass(frozen=True)
class _Build:
    """One build's context: where it writes, its size, how it reports, what it reused."""

    ws: Any  # ladd.store.Workspace
    source: str
    size: str
    spec: DemoSize
    device: str | torch.device
    data_root: str | Path | None
    progress: ProgressFn | None
    stop: Any | None
    t0: float = field(default_factory=time.perf_counter)
    skipped: list[str] = field(default_factory=list)
    plan: dict[str, tuple[float, float]] = field(default_factory=dict)  # step -> (start, span) %
    clock: list[float] = field(default_factory=list)  # (time, percent) where building began

    @property
    def tag(self) -> str:
        return demo_tag(self.source, self.size)

    @property
    def extra(self) -> dict[str, Any]:
        return {"demo": self.tag}

    def step(self, name: str, found: Any, make: Any, message: str = "") -> Any:
        """The one reuse rule: an artifact an earlier build made with the same settings (`found`,
        not None) is used as it is and the step is listed as skipped; else `make()` builds it."""
        if found is not None:
            self.skipped.append(name)
            return found
        self.check_stop()
        start = self.plan.get(name, (0.0, 0.0))[0]
        if not self.clock:
            self.clock.extend((time.perf_counter(), start))
        if message:
            self.say(start, message)
        return make()

    def check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise TrainingStopped("demo build stopped on request")

    def say(self, percent: float, message: str, loss: float | None = None) -> None:
        if self.progress is not None:
            eta = self.eta(percent)
            text = f"{message} · {eta}" if eta else message
            self.progress(ProgressEvent("demo", int(round(percent)), 100, loss, text))

    def eta(self, percent: float) -> str:
        """ "about N min left": the pace of this build's own work so far (reused steps excluded),
        applied to what is left. The plan's spans are cost-weighted (_plan), so a percent of
        the bar is about a percent of the time."""
        if not self.clock or percent >= 100:
            return ""
        began, at = self.clock
        done, spent = percent - at, time.perf_counter() - began
        if done < 2.0 or spent < 3.0:
            return ""
        left = spent * (100.0 - percent) / done
        return f"about {left / 60:.0f} min left" if left >= 90 else f"about {left:.0f} s left"

    def relay(self, name: str, label: str) -> ProgressFn:
        """A step's own events mapped onto its span of the demo's 0..100 bar (never going back:
        a later stage of the step, e.g. evaluation, restarts its own count)."""
        start, span = self.plan.get(name, (0.0, 0.0))
        best = [0.0]

        def cb(ev: Any) -> None:
            # A note or a monitor report (metrics) counts its own way: it does not move the bar.
            if not getattr(ev, "note", False) and getattr(ev, "metrics", None) is None:
                total = max(1, int(getattr(ev, "total", 1) or 1))
                best[0] = max(best[0], min(1.0, float(getattr(ev, "step", 0) or 0) / total))
            msg = getattr(ev, "message", "") or ""
            self.say(
                start + span * best[0],
                f"{label}: {msg}" if msg else label,
                getattr(ev, "loss", None),
            )

        return cb


def _plan(
    spec: DemoSize, num_classes: int, train_images: int, test_images: int
) -> dict[str, tuple[float, float]]:
    """Each step's (start, span) on the 0..100 bar, in proportion to its estimated compute
    (image passes through a model; a forward-only pass counts a third of a training one; the
    labeler's batches of 32 run at about half the per-image rate of 256). Loading takes 0-2."""
    images = num_classes * spec.ipc
    views = 1 + spec.n * spec.n
    evals = (20 * min(test_images, 500) + len(spec.seeds) * test_images) / 3
    cost = {
        "labeler": train_images * spec.labeler_epochs * (2.0 if spec.labeler_batch < 128 else 1.0)
        + len(spec.save_at) * test_images / 3,
        "distilled": 1.0,
        "dense": images * spec.n * spec.n / 3,
        "run:baseline": len(spec.seeds) * spec.epochs_for("baseline", images) * images + evals,
        "run:ladd": len(spec.seeds) * spec.train_epochs * images * views + evals,
        "cam": 1.0,
    }
    total, at, plan = sum(cost.values()), 2.0, {}
    for name, c in cost.items():
        plan[name] = (at, 97.0 * c / total)
        at += plan[name][1]
    return plan


def build_demo(
    workspace: Any,
    *,
    source: str = "shapes",
    size: str = "small",
    progress: ProgressFn | None = None,
    device: str | torch.device = "cpu",
    stop: Any | None = None,
    data_root: str | Path | None = None,
) -> DemoArtifacts:
    """Build (or reuse) the demo artifacts in `workspace` (a ladd.store.Workspace or a folder).

    `data_root`: where torchvision's CIFAR files are (or go, when downloading is possible);
    the shared CIFAR-10 archive of LADD_SHARED_DATA is preferred when there is one. Progress
    events carry an estimate of the time left once the build has measured its own pace.
    """
    from ladd.device import resolve_device
    from ladd.labeler import read_meta
    from ladd.store import Workspace

    if size not in DEMO_SIZES:
        raise ValueError(f"unknown demo size {size!r}; use one of {', '.join(DEMO_SIZES)}")
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    b = _Build(ws, source, size, DEMO_SIZES[size], device, data_root, progress, stop)

    train, test = _load_splits(b)
    b.plan.update(
        _plan(
            b.spec, len(train.info.class_names), int(train.labels.numel()), int(test.labels.numel())
        )
    )
    lab_cfg = _labeler_config(b, int(train.images.shape[-1]))
    lab_dir, checkpoints = _labeler_step(b, lab_cfg, train, test)
    distilled_dir, distilled = _distilled_step(b, train)
    dense_ckpt = _checkpoint_for(checkpoints, b.spec.dense_epoch)
    variant = lab_dir.name[len(b.tag) :]  # "" or "-<digest>": names the sets made from it
    set_path, la = _dense_step(b, distilled, distilled_dir, dense_ckpt, variant)
    runs, epochs = {}, {}
    for mode in ("baseline", "ladd"):
        runs[mode], epochs[mode] = _train_step(b, mode, lab_cfg, la, test, set_path)
    cam_path = _cam_step(b, int(train.images.shape[-1]))

    arts = DemoArtifacts(
        workspace=ws.root,
        source=source,
        size=size,
        labeler_dir=lab_dir,
        checkpoints=tuple(checkpoints),
        distilled_dir=distilled_dir,
        set_path=set_path,
        baseline_run=runs["baseline"],
        ladd_run=runs["ladd"],
        cam_inputs=cam_path,
        seconds=time.perf_counter() - b.t0,
        skipped=tuple(b.skipped),
        baseline_accuracy=_accuracy(ws, runs["baseline"]),
        ladd_accuracy=_accuracy(ws, runs["ladd"]),
        labeler_accuracy=float(read_meta(dense_ckpt).test_accuracy),
        num_classes=len(train.info.class_names),
        test_images=int(test.labels.numel()),
        spec=b.spec.to_dict(),
        epochs=epochs,
        device=_device_label(resolve_device(device)),
    )
    _write_summary(b, arts)
    b.say(100, f"demo ready in {arts.seconds:.0f} s")
    return arts


def _load_splits(b: _Build) -> tuple[Any, Any]:
    """The source's train and test subsets of this size (decoded once into the workspace cache)."""
    from ladd.data import load_source

    b.say(0, f"loading the {b.source} source")
    where = {"cache_dir": b.ws.cache_dir, "data_root": b.data_root, "seed": 0}
    train = load_source(b.source, "train", limit_per_class=b.spec.train_per_class, **where)
    test = load_source(b.source, "test", limit_per_class=b.spec.test_per_class, **where)
    b.check_stop()
    return train, test


def _model_options(spec: DemoSize) -> dict[str, Any]:
    return {"width": spec.width} if spec.width else {}


def _labeler_config(b: _Build, image_size: int) -> Any:
    from ladd.labeler import LabelerConfig
    from ladd.training import distillation_arch

    spec = b.spec
    return LabelerConfig(
        arch=distillation_arch(image_size),
        epochs=spec.labeler_epochs,
        save_at=spec.save_at,
        batch_size=spec.labeler_batch,
        lr=spec.labeler_lr,
        momentum=spec.labeler_momentum,
        weight_decay=spec.labeler_weight_decay,
        image_augmentation=spec.labeler_augment,
        seed=0,
        limit_per_class=spec.train_per_class,
        model_options=_model_options(spec),
    )


def _labeler_step(b: _Build, cfg: Any, train: Any, test: Any) -> tuple[Path, list[Path]]:
    """Labeler checkpoints at the size's epochs (train_labeler itself resumes a partial run).
    A folder holding another version's demo labeler (other settings) is left alone: this one
    is built beside it, in a folder named after its settings."""
    from ladd.labeler import list_checkpoints
    from ladd.pipeline import run_labeler

    lab_dir = b.ws.labelers_dir / b.tag
    if list_checkpoints(lab_dir) and not _matching_checkpoints(lab_dir, cfg):
        lab_dir = b.ws.labelers_dir / f"{b.tag}-{_digest(cfg.resume_key())}"
    have = _matching_checkpoints(lab_dir, cfg)
    complete = set(cfg.checkpoint_epochs()) <= set(have)

    def make() -> list[Path]:
        lab = run_labeler(
            b.ws,
            b.source,
            cfg,
            out_dir=lab_dir,
            device=b.device,
            progress=b.relay("labeler", "labeler"),
            stop=b.stop,
            train_set=train,
            test_set=test,
            extra=b.extra,
        )
        return [Path(c.path) for c in lab.checkpoints]

    found = sorted(have.values()) if complete else None
    checkpoints = b.step("labeler", found, make, "training the labeler")
    return lab_dir, checkpoints


def _distilled_step(b: _Build, train: Any) -> tuple[Path, Any]:
    """A random-real distilled set, in the MTT layout other tools read."""
    from ladd.distill import RandomConfig
    from ladd.pipeline import run_distill
    from ladd.sets import load_distilled

    out = b.ws.sets_dir / f"{b.tag}_random_ipc{b.spec.ipc}"
    found = None
    if (out / "images_best.pt").is_file():
        try:
            found = load_distilled(out, source=b.source)
        except ValueError:
            found = None  # an unreadable left-over of an interrupted build: drawn again

    def make() -> Any:
        return run_distill(
            b.ws,
            b.source,
            "random",
            RandomConfig(ipc=b.spec.ipc, seed=0),
            out_dir=out,
            train_set=train,
            force=True,
            extra=b.extra,
        ).dataset

    message = f"drawing a random-real set, {b.spec.ipc} images per class"
    return out, b.step("distilled", found, make, message)


def _dense_step(
    b: _Build, distilled: Any, distilled_dir: Path, checkpoint: Path, variant: str
) -> tuple[Path, Any]:
    """Dense labels of every crop from an early labeler checkpoint (a label-augmented set)."""
    from ladd.labeler import read_meta
    from ladd.pipeline import run_label_augment
    from ladd.sets import LabelAugmentedSet

    spec = b.spec
    epoch = read_meta(checkpoint).epoch
    out = b.ws.sets_dir / f"{b.tag}_random_ipc{spec.ipc}_n{spec.n}_e{epoch}{variant}.safetensors"
    found = None
    if out.is_file():
        try:
            found = LabelAugmentedSet.load(out)
        except ValueError:
            found = None  # an unreadable left-over of an interrupted build
        if found is not None and (found.labeler or {}).get("path") != str(checkpoint):
            found = None  # labelled by another labeler: made again

    def make() -> Any:
        return run_label_augment(
            b.ws,
            distilled,
            checkpoint,
            n=spec.n,
            r=spec.r,
            distilled_path=distilled_dir,
            out=out,
            device=b.device,
            force=True,
            extra=b.extra,
            # The demo's figures (README) were measured with float32 labels: its recipe keeps
            # them, so they stay what the home page says (the files' default is top-3 now).
            codec="float32",
        ).dataset

    return out, b.step("dense", found, make, f"dense labels: {spec.n}x{spec.n} crops per image")


def _train_step(
    b: _Build, mode: str, lab_cfg: Any, la: Any, test: Any, set_path: Path
) -> tuple[int, int]:
    """A baseline or LADD deployment run, recorded with its weights: (run id, epochs). A done
    run of the same plan (its key: the settled config and the set's digest) is reused."""
    from ladd.pipeline import find_train_run, run_train
    from ladd.plan import plan_training
    from ladd.training import TrainConfig

    cfg = TrainConfig(
        arch=lab_cfg.arch or "convnet_d3",
        mode=mode,
        epochs=b.spec.epochs_for(mode, int(la.images.shape[0])),
        seeds=b.spec.seeds,
        model_options=_model_options(b.spec),
    )
    plan = plan_training(la, cfg, b.device)

    def make() -> int:
        run_id, _ = run_train(
            b.ws,
            plan,
            la,
            test,
            set_path=set_path,
            source=b.source,
            label=f"demo {mode}",
            progress=b.relay(f"run:{mode}", f"{mode} training"),
            monitor_every=max(1, cfg.epochs // 20),  # the accuracy curve the pages draw
            stop=b.stop,
            extra=b.extra,
        )
        return run_id

    found = find_train_run(b.ws, plan.key)
    return b.step(f"run:{mode}", found, make, f"training the {mode} model"), cfg.epochs


def _cam_step(b: _Build, image_size: int) -> Path:
    """Real test images (another draw than the scoring ones) to pick CAM images from."""
    from ladd.data import load_source

    per_class = b.spec.cam_per_class
    path = _cam_file(b.ws, b.source, image_size, per_class)

    def make() -> Path:
        where = {"cache_dir": b.ws.cache_dir, "data_root": b.data_root, "seed": 1}
        return save_cam_inputs(
            load_source(b.source, "test", limit_per_class=per_class, **where), path
        )

    b.step("cam", path if path.is_file() else None, make, "saving real test images for CAMs")
    return path


def _write_summary(b: _Build, arts: DemoArtifacts) -> None:
    """The summary the pages read (load_demo); a build that reused everything keeps the first
    build's (its time is the one worth showing)."""
    from ladd.files import write_json

    summary = b.ws.root / f"{b.tag}.json"
    if len(b.skipped) < len(DEMO_STEPS) or not summary.is_file():
        write_json(summary, arts.to_dict())


DEMO_STEPS = ("labeler", "distilled", "dense", "run:baseline", "run:ladd", "cam")


def _accuracy(ws: Any, run_id: int) -> float | None:
    """A train run's mean test accuracy over seeds, from the runs database."""
    value = ws.db.get_run(run_id).metrics.get("accuracy_mean")
    return float(value) if isinstance(value, (int, float)) else None


def _device_label(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(dev)})"
    return f"CPU ({torch.get_num_threads()} threads)"


def load_demo(workspace: Any, source: str = "shapes", size: str = "small") -> dict[str, Any] | None:
    """The summary an earlier build_demo wrote, or None."""
    root = _root(workspace)
    path = root / f"{demo_tag(source, size)}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def list_demos(workspace: Any) -> list[dict[str, Any]]:
    """Every demo summary in the workspace, newest first."""
    root = _root(workspace)
    found = sorted(root.glob("demo_*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [json.loads(p.read_text(encoding="utf-8")) for p in found]


def _root(workspace: Any) -> Path:
    """The folder of a Workspace or of a path (a Path's own `.root` is "/", not this)."""
    from ladd.store import Workspace

    return Path(workspace.root if isinstance(workspace, Workspace) else workspace)


def _digest(obj: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _matching_checkpoints(lab_dir: Path, cfg: Any) -> dict[int, Path]:
    """epoch -> checkpoint in `lab_dir` trained with `cfg`'s settings (unreadable ones skipped)."""
    from ladd.labeler import LabelerConfig, list_checkpoints, read_meta

    found: dict[int, Path] = {}
    for p in list_checkpoints(lab_dir):
        try:
            meta = read_meta(p)
        except ValueError:
            continue
        if LabelerConfig.from_dict(meta.config).resume_key() == cfg.resume_key():
            found[int(meta.epoch)] = p
    return found


def _checkpoint_for(checkpoints: list[Path], epoch: int) -> Path:
    """The checkpoint of `epoch`, else the earliest one."""
    from ladd.labeler import read_meta

    if not checkpoints:
        raise RuntimeError("the labeler produced no checkpoints")
    for p in checkpoints:
        if read_meta(p).epoch == epoch:
            return p
    return checkpoints[0]
