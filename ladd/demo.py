"""The one-click demo: every artifact the dashboard's pages need, built with the pipeline itself.

`build_demo(workspace, source=..., size=...)` runs the real LADD pipeline on real CIFAR-10
(`default_source()` picks it whenever it needs no download) or on the offline `shapes` source:

1. a labeler trained on part of the real training split, with checkpoints at several epochs;
2. a random-real distilled set (the fair baseline of the field), saved in the MTT layout;
3. its dense labels from one early labeler checkpoint (a label-augmented set file);
4. a baseline and a LADD deployment run, recorded in the workspace's runs database with weights;
5. real test images (20 per class) to pick class activation map images from.

It is idempotent: a step whose artifact already exists (same settings) is skipped, so a second
call returns at once and an interrupted build continues where it stopped.

Sizes (DEMO_SIZES): "small" for the tests; "quick", the CPU default; "full", three times its
training; "gpu", the paper's protocol. Measured on this project's 2-core CPU (2 torch threads, one
seed, 1,000 real test images, `build_demo(ws, source=SOURCE, size=SIZE, device="cpu")`, fresh
workspace), deployment under the `mtt` protocol (ladd.training):

    size   source    labeler (epoch 2)   baseline   LADD     build time (machine load)
    quick  cifar10   46.0 %              26.9 %     35.7 %   110 s (load 1.6-1.9), 2026-12-03
    quick  shapes    98.3 %              28.7 %     62.1 %   104 s (load 0-1.5), 2026-12-03
    full   cifar10   46.4 %              28.0 %     42.2 %   22 min (load 5-7), 2026-11-26
    full   shapes    98.2 %              31.4 %     83.1 %   15 min (load 5-7), 2026-11-26

Chance is 10 %. `quick` trains 20 LADD epochs (baseline 220, as many SGD steps), `full` 60
(baseline 660). Progress events end with the time left, from the build's own pace.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ladd.progress import ProgressEvent, ProgressFn
from ladd.training import TrainingStopped


@dataclass(frozen=True)
class DemoSize:
    """How big each demo step is. The CPU sizes were measured on a shared 2-core CPU (see
    DEMO_SIZES); the baseline and LADD runs use the same epochs, as the protocol does."""

    name: str
    train_per_class: int | None  # labeler training images per class (None: the whole split)
    test_per_class: int | None  # real test images per class that score the runs (None: all)
    labeler_epochs: int
    labeler_batch: int  # small batches: more steps from few images in few epochs
    labeler_lr: float
    save_at: tuple[int, ...]
    dense_epoch: int  # the checkpoint that labels the set (an early one, as in the paper)
    ipc: int
    n: int
    r: float
    train_epochs: int  # LADD's epochs (and the baseline's, unless baseline_same_steps)
    seeds: tuple[int, ...]
    width: int | None  # ConvNet width for the labeler and the deployed models (None: 128)
    cam_per_class: int  # real test images per class to pick CAM images from
    labeler_momentum: float = 0.9
    labeler_weight_decay: float = 5e-4
    labeler_augment: str = "none"  # few epochs on few images: plain images learn faster
    # Train the baseline for as many SGD steps as LADD (not as many epochs). A baseline epoch
    # of 100 images is one batch of 256, a LADD epoch of 2,600 samples eleven; on a short CPU
    # budget equal epochs would starve the baseline (the protocol's 1000 epochs give it 1000
    # steps), so equal steps is the fair comparison there.
    baseline_same_steps: bool = False
    description: str = ""

    def epochs_for(self, mode: str, images: int, batch_size: int = 256) -> int:
        """Training epochs of a mode's demo run on a set of `images` full images."""
        if mode != "baseline" or not self.baseline_same_steps:
            return self.train_epochs
        ladd_steps = math.ceil(images * (1 + self.n * self.n) / batch_size)
        base_steps = math.ceil(images / batch_size)
        return self.train_epochs * ladd_steps // base_steps

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["save_at"], d["seeds"] = list(self.save_at), list(self.seeds)
        return d


_FULL = DemoSize(
    name="full",
    train_per_class=500,
    test_per_class=100,
    labeler_epochs=4,
    labeler_batch=32,
    labeler_lr=0.02,
    save_at=(1, 2, 4),
    dense_epoch=2,
    ipc=10,
    n=5,
    r=0.625,
    train_epochs=60,
    seeds=(0,),
    width=32,
    cam_per_class=20,
    baseline_same_steps=True,
    description="a narrow ConvNet, 60 LADD epochs, one seed: tens of minutes on a CPU",
)

DEMO_SIZES: dict[str, DemoSize] = {
    # The tests' size: every artifact, seconds on a CPU; its models are barely trained.
    "small": DemoSize(
        name="small",
        train_per_class=30,
        test_per_class=10,
        labeler_epochs=3,
        labeler_batch=32,
        labeler_lr=0.02,
        save_at=(1, 2, 3),
        dense_epoch=2,
        ipc=2,
        n=3,
        r=0.625,
        train_epochs=2,
        seeds=(0,),
        width=8,
        cam_per_class=10,
        description="a smoke build: every artifact, models barely trained",
    ),
    # The default on a CPU: the `full` recipe with a third of its training (LADD 20 epochs,
    # the baseline as many SGD steps), so the whole build takes a few minutes on a laptop-class
    # CPU and LADD still wins by a wide margin (measured, see the module docstring).
    "quick": replace(
        _FULL,
        name="quick",
        train_epochs=20,
        description="the CPU default: a narrow ConvNet, 20 LADD epochs, one seed, minutes",
    ),
    # The longer CPU demo: three times `quick`'s training, a few points more for each
    # (tens of minutes on a shared 2-core CPU; see the module docstring).
    "full": _FULL,
    # The paper's protocol (REFERENCE.md section 3) for a GPU: the whole train split for the
    # labeler (50 epochs, momentum 0, augmentation, the epoch-10 checkpoint labels), IPC 10,
    # full-width ConvNet, 1000 epochs, 5 seeds, the whole test split.
    "gpu": DemoSize(
        name="gpu",
        train_per_class=None,
        test_per_class=None,
        labeler_epochs=50,
        labeler_batch=256,
        labeler_lr=0.01,
        save_at=(10, 20, 30, 40, 50),
        dense_epoch=10,
        ipc=10,
        n=5,
        r=0.625,
        train_epochs=1000,
        seeds=(0, 1, 2, 3, 4),
        width=None,
        cam_per_class=20,
        labeler_momentum=0.0,  # the paper's labeler: MTT's buffer.py recipe (ladd.labeler)
        labeler_weight_decay=0.0,
        labeler_augment="dsa",
        description="the paper's protocol: full width, 1000 epochs, 5 seeds (for a GPU)",
    ),
}


def default_size(device: str | torch.device = "auto") -> str:
    """The demo size for a device: the paper's protocol on a GPU, `quick` otherwise."""
    from ladd.device import resolve_device

    return "gpu" if resolve_device(device).type == "cuda" else "quick"


def cifar10_available(data_root: str | Path | None = None) -> bool:
    """True when CIFAR-10 can be read without a download: the shared archive named by
    LADD_SHARED_DATA, or torchvision's files under `data_root` (default LADD_DATA_ROOT/./data)."""
    from ladd.data.base import default_data_root
    from ladd.data.cifar import shared_cifar10_archive

    if shared_cifar10_archive() is not None:
        return True
    root = Path(data_root).expanduser() if data_root else default_data_root()
    return (root / "cifar-10-batches-py" / "test_batch").is_file()


def default_source(data_root: str | Path | None = None) -> str:
    """Real CIFAR-10 when it is at hand (no download needed), else the offline `shapes`."""
    return "cifar10" if cifar10_available(data_root) else "shapes"


@dataclass(frozen=True)
class DemoArtifacts:
    """Where the demo put everything (paths inside the workspace), what it trained, what it
    scored and what it cost."""

    workspace: Path
    source: str
    size: str
    labeler_dir: Path
    checkpoints: tuple[Path, ...]
    distilled_dir: Path  # random-real set, MTT layout (images_best.pt, labels_best.pt)
    set_path: Path  # label-augmented set (.safetensors)
    baseline_run: int
    ladd_run: int
    cam_inputs: Path
    seconds: float
    skipped: tuple[str, ...] = field(default_factory=tuple)  # steps reused from an earlier build
    baseline_accuracy: float | None = None  # mean over seeds, on the real test images
    ladd_accuracy: float | None = None
    labeler_accuracy: float | None = None  # of the checkpoint that labelled the set
    num_classes: int = 0
    test_images: int = 0
    spec: dict[str, Any] = field(default_factory=dict)  # the DemoSize it was built with
    epochs: dict[str, int] = field(default_factory=dict)  # training epochs of each mode
    device: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return json.loads(json.dumps(d, default=str))


def _epochs_text(summary: dict[str, Any]) -> str:
    spec, epochs = summary.get("spec") or {}, summary.get("epochs") or {}
    ladd = epochs.get("ladd", spec.get("train_epochs", "?"))
    base = epochs.get("baseline", ladd)
    if base == ladd:
        return f"Baseline and LADD models trained {ladd} epochs"
    return f"LADD models trained {ladd} epochs, baseline models {base} (as many SGD steps)"


def describe(summary: dict[str, Any]) -> str:
    """One paragraph saying what a demo (its summary JSON, see load_demo) trained and scored."""
    spec = summary.get("spec") or {}
    k = summary.get("num_classes") or 10
    per_class = spec.get("train_per_class")
    lab = f"{per_class} training images per class" if per_class else "the whole training split"
    width = spec.get("width") or 128
    seeds = len(spec.get("seeds") or [0])
    parts = [
        f"**{summary['source']}, {summary['size']}**: a labeler (ConvNet, width {width}) on {lab} "
        f"for {spec.get('labeler_epochs', '?')} epochs; its epoch-{spec.get('dense_epoch', '?')} "
        f"checkpoint labelled the {spec.get('n', '?')} x {spec.get('n', '?')} crops of a random-real "
        f"set of {spec.get('ipc', '?')} images per class. {_epochs_text(summary)}, {seeds} "
        f"seed{'s' if seeds != 1 else ''} each, tested on {summary.get('test_images') or 0:,} "
        "real test images."
    ]
    base, ladd = summary.get("baseline_accuracy"), summary.get("ladd_accuracy")
    if base is not None and ladd is not None:
        parts.append(
            f"Baseline **{base:.1%}**, LADD **{ladd:.1%}** ({100 * (ladd - base):+.1f} points; "
            f"chance {1 / k:.0%})."
        )
    secs = summary.get("seconds")
    if secs is not None:
        where = f" on {summary['device']}" if summary.get("device") else ""
        reused = [s.removeprefix("run:") for s in summary.get("skipped") or []]
        also = f" (reusing an earlier build's {', '.join(reused)})" if reused else ""
        parts.append(f"Built in {secs / 60:.1f} min{where}{also}.")
    return " ".join(parts)


def demo_tag(source: str, size: str) -> str:
    from ladd.pipeline import slug

    return f"demo_{slug(source)}_{size}"


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
        augment=spec.labeler_augment,
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


# ---------------------------------------------------------------------------------------------
# Real test images for class activation maps


def _cam_file(ws: Any, source: str, image_size: int, per_class: int) -> Path:
    from ladd.pipeline import slug

    name = slug(source)
    return ws.root / "cam" / f"{name}_{image_size}px_{per_class}pc.safetensors"


def save_cam_inputs(images: Any, path: str | Path) -> Path:
    """Write an ImageSet (uint8 images, labels, its SourceInfo) to one safetensors file."""
    from ladd.files import save_tensors

    info = images.info
    meta = {
        "name": info.name,
        "class_names": list(info.class_names),
        "image_size": int(info.image_size),
        "mean": list(info.mean),
        "std": list(info.std),
        "channels": int(getattr(info, "channels", 3)),
        "split": images.split,
    }
    return save_tensors(
        path,
        {"images": images.images.to(torch.uint8), "labels": images.labels.long()},
        {"ladd_cam_inputs": json.dumps(meta)},
    )


def load_cam_inputs(path: str | Path) -> Any:
    """Read a file written by save_cam_inputs back as an ImageSet."""
    from safetensors import safe_open

    from ladd.data import ImageSet, SourceInfo

    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
        if "ladd_cam_inputs" not in raw:
            raise ValueError(f"{path}: not a CAM inputs file")
        images, labels = f.get_tensor("images"), f.get_tensor("labels")
    meta = json.loads(raw["ladd_cam_inputs"])
    info = SourceInfo(
        name=meta["name"],
        class_names=tuple(meta["class_names"]),
        image_size=int(meta["image_size"]),
        mean=tuple(meta["mean"]),
        std=tuple(meta["std"]),
        channels=int(meta.get("channels", 3)),
    )
    return ImageSet(images, labels, info, meta.get("split", "test"))


CAM_IMAGES = 4000  # real test images drawn for CAMs at most: ImageNet-1K's 1000 classes get 4


def cam_per_class(num_classes: int, most: int) -> int:
    """Test images a class drawn for CAMs: `most`, fewer where the classes are many (at most
    CAM_IMAGES in all, at least one a class). At 224 px 4,000 images are 600 MB of uint8, where
    20 a class of ImageNet-1K would be 3 GB to decode and keep."""
    return max(1, min(most, CAM_IMAGES // max(1, num_classes)))


def cam_inputs(
    workspace: Any, source: str, image_size: int | None = None, per_class: int = 4
) -> Any:
    """Real test images of a source for CAMs: the demo's file when there is one, else loaded
    from the source (and saved for next time): `per_class` a class, fewer for many classes
    (cam_per_class). A streamed source (imagenet1k) decodes only the images drawn."""
    from ladd.data import load_source, source_info
    from ladd.pipeline import slug
    from ladd.store import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    name = slug(source)
    found = (
        sorted((ws.root / "cam").glob(f"{name}_*px_*pc.safetensors"))
        if (ws.root / "cam").is_dir()
        else []
    )
    if image_size is not None:
        found = [p for p in found if f"_{image_size}px_" in p.name]
    if found:  # the biggest pool there is: more images to pick from for a CAM grid
        return load_cam_inputs(max(found, key=_per_class_of))
    classes = source_info(source, image_size, cache_dir=ws.cache_dir).num_classes
    per_class = cam_per_class(classes, per_class)
    images = load_source(
        source,
        "test",
        image_size=image_size,
        cache_dir=ws.cache_dir,
        limit_per_class=per_class,
        seed=1,
    )
    save_cam_inputs(images, _cam_file(ws, source, int(images.images.shape[-1]), per_class))
    return images


def _per_class_of(path: Path) -> int:
    """The images per class in a CAM inputs file's name (`..._20pc.safetensors` -> 20)."""
    m = re.search(r"_(\d+)pc\.safetensors$", path.name)
    return int(m.group(1)) if m else 0
