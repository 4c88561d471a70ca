"""Training the labeler g (paper section 3.2; REFERENCE.md section 1.2) and its checkpoints.

A labeler is a small classifier of the distillation architecture (ConvNet-D3 at 32 px, ConvNet-D5
at 128 px) trained from scratch on the real training split "following [2]", i.e. as MTT's
`buffer.py` trains its experts (the "mtt" recipe, the default): SGD lr 0.01 (the paper's Sec. 4.1;
Sec. 3.2 says 0.015), momentum 0, weight decay 0, batch 256, shuffled, DSA augmentation (one op
per batch, the deployment strategy), constant lr (buffer.py's --decay is off). Checkpoints at
10, 20, 30, 40, 50 of 50 epochs; the epoch-10 one is the default labeler (later ones are more
accurate but over-confident, paper Fig. 5). The "strong" recipe (momentum 0.9, weight decay
5e-4, flips and padded crops) is this project's earlier default, kept by name.

A checkpoint `epoch_010.safetensors` holds the model weights under their usual names, the SGD
momentum buffers under `_optim.<name>`, the shuffling generator's state under `_rng.train`, and
its metadata key "ladd_labeler" is the JSON of a LabelerMeta (architecture, source, epoch,
normalisation, class names, seed, test accuracy, the training config). Files are written to a
temporary name and renamed, so a crash never leaves a half-written checkpoint; training resumes
from the last checkpoint whose config matches, with the same optimizer and shuffling state, so a
resumed run computes the same numbers as an uninterrupted one on the same device.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from ladd.data.imageset import SourceInfo, normalise
from ladd.data.streaming import evaluate_loader
from ladd.device import resolve_device
from ladd.dsa import DSAConfig, dsa
from ladd.files import save_tensors
from ladd.flops import train_flops_per_sample
from ladd.models import create_from_spec, create_model
from ladd.numbers import require_finite
from ladd.progress import ProgressEvent, ProgressFn
from ladd.training import TrainingStopped, distillation_arch

LABELER_FORMAT = "ladd.labeler/1"
_OPTIM_PREFIX = "_optim."
_RNG_KEY = "_rng.train"
_LOADER_RNG_KEY = "_rng.loader"  # a training DataLoader's generator (training from a loader)
RESUME_FILE = ".resume.safetensors"  # the latest epoch's state between checkpoints (hidden)
_CKPT_RE = re.compile(r"^epoch_(\d+)\.safetensors$")


def default_labeler_arch(image_size: int) -> str:
    """The labeler is the distillation architecture of the field (ladd.training)."""
    return distillation_arch(image_size)


AUGMENTS = ("dsa", "flip_crop", "none")
LABELER_RECIPES: dict[str, dict[str, Any]] = {
    "mtt": {
        "lr": 0.01,
        "momentum": 0.0,
        "weight_decay": 0.0,
        "image_augmentation": "dsa",
        "batch_size": 256,
    },
    "strong": {"momentum": 0.9, "weight_decay": 5e-4, "image_augmentation": "flip_crop"},
}


@dataclass(frozen=True)
class LabelerConfig:
    """How a labeler is trained (saved inside each of its checkpoints)."""

    arch: str | None = None  # None: default_labeler_arch(image size)
    epochs: int = 50
    save_at: tuple[int, ...] = (10, 20, 30, 40, 50)
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 256
    seed: int = 0
    # How the labeler's training *images* are augmented (not its labels): "dsa" | "flip_crop"
    # (random flip + crop after padding `pad`) | "none"
    image_augmentation: str = "dsa"
    pad: int = 4
    limit_per_class: int | None = None  # quick runs on a class-balanced subset of the train split
    image_size: int | None = None  # None: the source's native size
    model_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"width": 32}
    zca: bool = False  # train in ZCA space (for MTT/DATM sets on CIFAR)
    zca_eps: float = 0.1

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if any(int(e) < 1 for e in self.save_at):
            raise ValueError(f"save_at epochs must be >= 1, got {self.save_at}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        require_finite("lr", self.lr, positive=True)
        require_finite("momentum", self.momentum)
        require_finite("weight decay", self.weight_decay)
        require_finite("zca eps", self.zca_eps, positive=True)
        if self.image_augmentation not in AUGMENTS:
            raise ValueError(
                f"unknown image augmentation {self.image_augmentation!r}; "
                f"use one of {', '.join(AUGMENTS)}"
            )
        object.__setattr__(self, "save_at", tuple(sorted({int(e) for e in self.save_at})))

    @classmethod
    def recipe(cls, name: str, **overrides: Any) -> LabelerConfig:
        """A named recipe ("mtt": MTT buffer.py, the default; "strong": momentum 0.9, weight
        decay 5e-4, flips and crops) with any field overridden."""
        if name not in LABELER_RECIPES:
            raise ValueError(
                f"unknown labeler recipe {name!r}; use one of {', '.join(LABELER_RECIPES)}"
            )
        return cls(**{**LABELER_RECIPES[name], **overrides})

    @property
    def recipe_name(self) -> str:
        """The recipe these optimiser/augmentation settings are, or "custom"."""
        for name, fields_ in LABELER_RECIPES.items():
            ref = {**LABELER_RECIPES["mtt"], **fields_}
            if all(getattr(self, k) == v for k, v in ref.items()):
                return name
        return "custom"

    def checkpoint_epochs(self) -> tuple[int, ...]:
        """Epochs that get a checkpoint: save_at up to `epochs`, or the last epoch if none."""
        eps = tuple(e for e in self.save_at if e <= self.epochs)
        return eps or (self.epochs,)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["save_at"] = list(self.save_at)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelerConfig:
        """A config from a checkpoint's metadata. Checkpoints written before the field was
        renamed say "augment" (a bool in the first wave: True = flip + crop): read with a
        DeprecationWarning naming the new field."""
        d = dict(d)
        if "augment" in d:
            old = d.pop("augment")
            warnings.warn(
                "this labeler checkpoint's config says 'augment' (the name before "
                "'image_augmentation'); it is read as image_augmentation",
                DeprecationWarning,
                stacklevel=2,
            )
            if isinstance(old, bool):
                old = "flip_crop" if old else "none"
            d.setdefault("image_augmentation", old)
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["save_at"] = tuple(d.get("save_at", ()))
        return cls(**d)

    def resume_key(self) -> dict[str, Any]:
        """What must match for a checkpoint to be continued (epochs / save_at may grow)."""
        d = self.to_dict()
        d.pop("epochs")
        d.pop("save_at")
        # under the field's first name, so that folders named by a digest of this key (the
        # demo's labelers) stay valid across the rename
        d["augment"] = d.pop("image_augmentation")
        return d


@dataclass(frozen=True)
class LabelerMeta:
    """What a labeler checkpoint says about itself."""

    arch: str
    spec: dict[str, Any]  # ModelSpec.to_dict()
    source: str
    epoch: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    seed: int
    test_accuracy: float
    image_size: int
    zca_space: bool = False  # trained on ZCA-whitened images (a set's `zca` is the ZCA itself)
    train_accuracy: float | None = None
    train_flops: float = 0.0  # cumulative training FLOPs up to this epoch
    seconds: float = 0.0  # cumulative training wall time up to this epoch
    config: dict[str, Any] = field(default_factory=dict)
    format: str = LABELER_FORMAT

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["class_names"] = list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelerMeta:
        d = dict(d)
        if "zca" in d and "zca_space" not in d:  # checkpoints written before the rename
            d["zca_space"] = bool(d.pop("zca"))
        for k in ("mean", "std", "class_names"):
            d[k] = tuple(d[k])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def name(self) -> str:
        return f"{self.arch}@{self.source}/epoch{self.epoch}"


@dataclass
class Labeler:
    """A loaded labeler: the model (eval mode) and what its checkpoint says."""

    model: nn.Module
    meta: LabelerMeta
    path: Path | None = None


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:03d}.safetensors"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Labeler checkpoints of a folder, by epoch."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def read_meta(path: str | Path) -> LabelerMeta:
    """The LabelerMeta of a checkpoint, without loading weights."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises several types for a bad file
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    if "ladd_labeler" not in meta:
        raise ValueError(f"{path}: not a LADD labeler checkpoint (no 'ladd_labeler' metadata)")
    return LabelerMeta.from_dict(json.loads(meta["ladd_labeler"]))


def load_labeler(path: str | Path, device: str | torch.device = "cpu") -> Labeler:
    """Load a labeler checkpoint (a file, or a folder: its epoch-10 checkpoint, else the first)."""
    path = Path(path)
    if path.is_dir():
        ckpts = list_checkpoints(path)
        if not ckpts:
            raise ValueError(f"{path}: no labeler checkpoints (epoch_NNN.safetensors) in it")
        ten = [p for p in ckpts if p.name == checkpoint_name(10)]
        path = ten[0] if ten else ckpts[0]
    if not path.is_file():
        raise FileNotFoundError(f"labeler checkpoint {path} does not exist")
    meta = read_meta(path)
    with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("_")}  # noqa: SIM118
    model = create_from_spec(meta.spec)
    model.load_state_dict(state)
    return Labeler(model.to(resolve_device(device)).eval(), meta, path)


def import_labeler(
    arch: str,
    checkpoint: str | Path,
    info: SourceInfo,
    out: str | Path,
    *,
    image_size: int | None = None,
) -> Path:
    """A user's own trained torchvision network as a LADD labeler checkpoint at `out`, so that
    a user with a trained network labels with it instead of training a labeler.

    `checkpoint` is read by ladd.models.tv.load_torchvision_checkpoint (torch.load with
    weights_only=True; a bare state_dict or one under "state_dict"/"model", "module." removed)
    into torchvision model `arch` ("tv_resnet18", ...) with the classes of `info`, the source
    whose images it was trained on (its normalisation and class names go into the labeler's
    metadata). The labeler records epoch 0, source `info.name` and an unmeasured test accuracy
    (NaN): it was not trained here.
    """
    from ladd.models.tv import load_torchvision_checkpoint

    size = int(image_size or info.image_size)
    model = load_torchvision_checkpoint(arch, checkpoint, info.num_classes, size)
    meta = LabelerMeta(
        arch=arch,
        spec=model.spec.to_dict(),
        source=info.name,
        epoch=0,
        mean=tuple(info.mean),
        std=tuple(info.std),
        class_names=tuple(info.class_names),
        seed=0,
        test_accuracy=float("nan"),
        image_size=size,
        config={"imported_from": str(Path(checkpoint).resolve())},
    )
    tensors = dict(model.state_dict())
    return save_tensors(
        out, tensors, {"ladd_labeler": json.dumps(meta.to_dict()), "format": LABELER_FORMAT}
    )


# ---------------------------------------------------------------------------------------------
# Training


def random_flip_crop(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Per-sample horizontal flip (p 0.5) and random crop after zero padding by `pad` px.

    (B, C, H, W) -> (B, C, H, W), vectorised, randomness from `g` (drawn on g's device).
    """
    b, _, h, w = x.shape
    flip = (torch.rand(b, generator=g, device=g.device) < 0.5).to(x.device)
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    if pad <= 0:
        return x
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=g.device).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=g.device).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))  # (B, C, H+2p, W+2p)
    rows = dy[:, None] + torch.arange(h, device=x.device)[None]  # (B, H)
    cols = dx[:, None] + torch.arange(w, device=x.device)[None]  # (B, W)
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512
) -> float:
    """Top-1 accuracy of `model` on normalised images (N, C, H, W) already on its device."""
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, images.shape[0], batch_size):
        pred = model(images[i : i + batch_size]).argmax(1)
        correct += int((pred == labels[i : i + batch_size]).sum())
    model.train(was_training)
    return correct / max(1, images.shape[0])


def _find_resume(
    out_dir: Path, cfg: LabelerConfig, source: str, image_size: int, num_classes: int
) -> tuple[Path, LabelerMeta] | None:
    best = None
    extra = [out_dir / RESUME_FILE] if (out_dir / RESUME_FILE).is_file() else []
    for p in list_checkpoints(out_dir) + extra:
        try:
            meta = read_meta(p)
        except ValueError:
            continue
        if meta.epoch > cfg.epochs:
            continue
        if _differences(meta, cfg, source, image_size, num_classes):
            continue
        with safe_open(str(p), framework="pt") as f:
            if _RNG_KEY not in f.keys():  # noqa: SIM118
                continue
        if best is None or meta.epoch > best[1].epoch:
            best = (p, meta)
    return best


def _differences(
    meta: LabelerMeta, cfg: LabelerConfig, source: str, image_size: int, num_classes: int
) -> list[str]:
    """What differs between a checkpoint's training and this one (empty: it may be resumed)."""
    out = []
    if meta.source != source:
        out.append(f"source {meta.source} vs {source}")
    if meta.image_size != image_size:
        out.append(f"image size {meta.image_size} vs {image_size} px")
    if meta.num_classes != num_classes:
        out.append(f"classes {meta.num_classes} vs {num_classes}")
    theirs = LabelerConfig.from_dict(meta.config).resume_key()
    ours = cfg.resume_key()
    for key in sorted(set(theirs) | set(ours)):
        if theirs.get(key) != ours.get(key):
            out.append(f"{key} {theirs.get(key)!r} vs {ours.get(key)!r}")
    return out


def _shuffled_batches(
    x: torch.Tensor, y: torch.Tensor, g: torch.Generator, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of an in-memory split in shuffled batches; the permutation is drawn from `g`
    when the first batch is asked for."""
    n = x.shape[0]
    perm = torch.randperm(n, generator=g).to(x.device)
    for i in range(0, n, batch_size):
        idx = perm[i : i + batch_size]
        yield x[idx], y[idx]


def _device_batches(
    loader: Iterable[Sequence[torch.Tensor]], dev: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass over a loader's (images, labels) batches, moved to `dev`."""
    for x, y in loader:
        yield x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)


def _loader_source(
    source: Any,
    cfg: LabelerConfig,
    loader: Iterable[Sequence[torch.Tensor]],
    test_loader: Iterable[Sequence[torch.Tensor]] | None,
) -> SourceInfo:
    """The SourceInfo of a loader's batches, with what training from a loader cannot honour
    refused up front."""
    if not isinstance(source, SourceInfo):
        raise ValueError(
            "with loader=, pass the batches' SourceInfo as the source "
            "(e.g. ladd.data.source_info('imagenet1k', 128))"
        )
    if test_loader is None:
        raise ValueError("pass test_loader with loader= (checkpoints record a test accuracy)")
    if cfg.zca or cfg.limit_per_class is not None:
        raise ValueError("zca and limit_per_class need the in-memory split; not with loader=")
    if cfg.image_size is not None and cfg.image_size != source.image_size:
        raise ValueError(
            f"image_size {cfg.image_size} but the loader's source is {source.image_size} px"
        )
    batch_size = getattr(loader, "batch_size", None)
    if batch_size is not None and batch_size != cfg.batch_size:
        raise ValueError(
            f"the loader's batch size {batch_size} is not the config's {cfg.batch_size}, "
            "which the checkpoints record"
        )
    return source


def train_labeler(
    source: Any,
    cfg: LabelerConfig,
    out_dir: str | Path,
    *,
    device: str | torch.device = "auto",
    progress: ProgressFn | None = None,
    resume: bool = True,
    stop: Any | None = None,
    test_set: Any | None = None,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    state_seconds: float = 60.0,
    loader: Iterable[Sequence[torch.Tensor]] | None = None,
    test_loader: Iterable[Sequence[torch.Tensor]] | None = None,
) -> list[Path]:
    """Train a labeler on a source's training split; returns the checkpoint paths, by epoch.

    Between checkpoints, the latest epoch's exact state is kept in `out_dir/.resume.safetensors`
    at most every `state_seconds`, so a killed run loses at most that much work.

    `source` is a source name (loaded with ladd.data.load_source; the test split too) or an
    ImageSet (then pass `test_set`). `stop` is an optional threading.Event checked every batch.
    With `resume`, continues from the last matching checkpoint in `out_dir` (same config).

    `loader` and `test_loader` (for sources too large for memory, e.g. ladd.data.imagenet1k_loader)
    replace the in-memory split: each epoch is one pass over `loader`'s (normalised images,
    labels) batches, which bring their own order and augmentation (image_augmentation is
    still applied on top; "none" leaves them as they are). `source` is then the batches'
    SourceInfo (name, classes, size and normalisation go into the checkpoints). A torch
    DataLoader's `generator` state is saved with each checkpoint and restored on resume.
    """
    dev = resolve_device(device)
    out_dir = Path(out_dir)
    if loader is not None:
        info = _loader_source(source, cfg, loader, test_loader)
        image_size, channels = info.image_size, info.channels
    elif isinstance(source, str):
        from ladd.data import load_source

        train = load_source(
            source,
            "train",
            image_size=cfg.image_size,
            data_root=data_root,
            cache_dir=cache_dir,
            limit_per_class=cfg.limit_per_class,
            seed=cfg.seed,
        )
        if test_set is None:
            test_set = load_source(
                source, "test", image_size=cfg.image_size, data_root=data_root, cache_dir=cache_dir
            )
    else:
        train = source
        if test_set is None:
            raise ValueError("pass test_set when training a labeler on an ImageSet")
    if loader is None:
        info = train.info
        image_size = int(train.images.shape[-1])
        channels = int(train.images.shape[1])
    arch = cfg.arch or default_labeler_arch(image_size)
    spec_args = dict(
        name=arch,
        num_classes=info.num_classes,
        image_size=image_size,
        channels=channels,
        **cfg.model_options,
    )
    epochs_to_save = set(cfg.checkpoint_epochs())

    mean, std = tuple(float(v) for v in info.mean), tuple(float(v) for v in info.std)
    if cfg.zca:
        from ladd.data.zca import PIXEL_MEAN, PIXEL_STD
        from ladd.sets import fit_zca_for

        # MTT/DATM's ZCA space: [0, 1] pixels (no Normalize) whitened by kornia's ZCA fitted on
        # the whole train split (not on a limited subset).
        mean, std = PIXEL_MEAN, PIXEL_STD
        zca = fit_zca_for(
            info.name,
            eps=cfg.zca_eps,
            image_size=image_size,
            data_root=data_root,
            cache_dir=cache_dir,
        ).to(dev)
    if loader is None:
        x_train = normalise(train.images.to(dev), mean, std)  # (N, C, H, W)
        y_train = train.labels.to(dev)
        x_test = normalise(test_set.images.to(dev), mean, std)
        if cfg.zca:
            x_train, x_test = zca.apply(x_train), zca.apply(x_test)
        y_test = test_set.labels.to(dev)
    loader_g = getattr(loader, "generator", None)
    if not isinstance(loader_g, torch.Generator):
        loader_g = None

    model = create_model(**spec_args, seed=cfg.seed).to(dev)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    g = torch.Generator(device="cpu").manual_seed(cfg.seed)
    start_epoch, flops_done, seconds_done = 0, 0.0, 0.0
    saved: dict[int, Path] = {}
    for p in list_checkpoints(out_dir):
        try:
            m = read_meta(p)
        except ValueError:
            continue
        diffs = _differences(m, cfg, info.name, image_size, info.num_classes)
        if diffs:  # never resume from, list, or overwrite another training's checkpoints
            raise ValueError(
                f"{out_dir} holds labeler checkpoints of another training ({'; '.join(diffs)}); "
                "choose another output folder"
            )
        saved[m.epoch] = p
    found = _find_resume(out_dir, cfg, info.name, image_size, info.num_classes) if resume else None
    if found is not None:
        path, meta = found
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("_")})
        names = dict(model.named_parameters())
        for pname, param in names.items():
            buf = state.get(_OPTIM_PREFIX + pname)
            if buf is not None:
                opt.state[param]["momentum_buffer"] = buf.to(dev)
        g.set_state(state[_RNG_KEY])
        if loader_g is not None and _LOADER_RNG_KEY in state:
            loader_g.set_state(state[_LOADER_RNG_KEY])
        start_epoch, flops_done, seconds_done = meta.epoch, meta.train_flops, meta.seconds
        if progress:
            progress(
                ProgressEvent(
                    "labeler",
                    start_epoch,
                    cfg.epochs,
                    message=f"resumed from {path.name}",
                    note=True,
                )
            )
    elif not resume:
        saved = {}

    last_state = time.monotonic()
    dsa_cfg = DSAConfig()
    if loader is None:
        probe = x_train[: min(8, x_train.shape[0])]
    else:
        probe = torch.zeros(2, channels, image_size, image_size, device=dev)
    per_sample = train_flops_per_sample(model, probe, info.num_classes)
    model.train()
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        if loader is None:
            batches = _shuffled_batches(x_train, y_train, g, cfg.batch_size)
        else:
            batches = _device_batches(loader, dev)
        total, count, correct = torch.zeros((), device=dev), 0, torch.zeros((), device=dev)
        for x, y in batches:
            if stop is not None and stop.is_set():
                raise TrainingStopped(f"labeler training stopped at epoch {epoch}")
            if cfg.image_augmentation == "dsa":
                x = dsa(x, g, dsa_cfg)  # one op per batch, per-sample parameters (MTT's epoch())
            elif cfg.image_augmentation == "flip_crop":
                x = random_flip_crop(x, g, cfg.pad)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * y.shape[0]
            correct += (logits.detach().argmax(1) == y).sum()
            count += y.shape[0]
        flops_done += per_sample * count
        seconds_done += time.perf_counter() - t0
        mean_loss = float(total) / max(1, count)
        if progress:
            progress(ProgressEvent("labeler", epoch, cfg.epochs, loss=mean_loss))
        is_ckpt = epoch in epochs_to_save
        if not is_ckpt and not (
            epoch < cfg.epochs and time.monotonic() - last_state >= state_seconds
        ):
            continue
        test_acc = float("nan")
        if is_ckpt and loader is None:
            test_acc = accuracy(model, x_test, y_test)
        elif is_ckpt:
            test_acc = evaluate_loader(model, test_loader, dev, info.num_classes).top1
        meta = LabelerMeta(
            arch=arch,
            spec=model.spec.to_dict(),
            source=info.name,
            epoch=epoch,
            mean=mean,
            std=std,
            class_names=tuple(info.class_names),
            seed=cfg.seed,
            test_accuracy=test_acc,
            image_size=image_size,
            zca_space=cfg.zca,
            train_accuracy=float(correct) / max(1, count),
            train_flops=flops_done,
            seconds=seconds_done,
            config=cfg.to_dict(),
        )
        tensors = {k: v for k, v in model.state_dict().items()}
        for pname, param in model.named_parameters():
            buf = opt.state.get(param, {}).get("momentum_buffer")
            if buf is not None:
                tensors[_OPTIM_PREFIX + pname] = buf
        tensors[_RNG_KEY] = g.get_state()
        if loader_g is not None:
            tensors[_LOADER_RNG_KEY] = loader_g.get_state()
        target = out_dir / (checkpoint_name(epoch) if is_ckpt else RESUME_FILE)
        path = save_tensors(
            target,
            tensors,
            {"ladd_labeler": json.dumps(meta.to_dict()), "format": LABELER_FORMAT},
        )
        last_state = time.monotonic()
        if not is_ckpt:
            continue
        saved[epoch] = path
        if progress:
            progress(
                ProgressEvent(
                    "labeler",
                    epoch,
                    cfg.epochs,
                    loss=mean_loss,
                    message=f"{path.name}: test accuracy {test_acc:.1%}",
                    note=True,
                )
            )
    (out_dir / RESUME_FILE).unlink(missing_ok=True)  # the checkpoints say it all now
    return [saved[e] for e in sorted(saved) if e <= cfg.epochs]
