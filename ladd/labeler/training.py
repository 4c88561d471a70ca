"""Training the labeler: the recipe's loop, checkpoints at chosen epochs, exact resume."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
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
from ladd.files import claim_output, save_tensors
from ladd.flops import train_flops_per_sample
from ladd.labeler.checkpoints import LabelerMeta, checkpoint_name, list_checkpoints, read_meta
from ladd.labeler.config import (
    _LOADER_RNG_KEY,
    _OPTIM_PREFIX,
    _RNG_KEY,
    LABELER_FILES,
    LABELER_FORMAT,
    RESUME_FILE,
    LabelerConfig,
    default_labeler_arch,
)
from ladd.models import create_model
from ladd.progress import ProgressEvent, ProgressFn
from ladd.training import TrainingStopped

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
    resume: bool = True,
    **options: Any,
) -> list[Path]:
    """Train a labeler on a source's training split; returns the checkpoint paths, by epoch.

    Between checkpoints, the latest epoch's exact state is kept in `out_dir/.resume.safetensors`
    at most every `state_seconds`, so a killed run loses at most that much work.

    `source` is a source name (loaded with ladd.data.load_source; the test split too) or an
    ImageSet (then pass `test_set`). `stop` is an optional threading.Event checked every batch.
    With `resume`, continues from the last matching checkpoint in `out_dir` (same config);
    without it, starts over, and once done no checkpoint of the earlier training stays in
    `out_dir`. The folder is held for the whole training (ladd.files.claim_output): a second
    training into it is refused at once instead of mixing its checkpoints with this one's.

    Options (keywords): device, progress, stop, test_set, data_root, cache_dir,
    state_seconds, loader, test_loader.

    `loader` and `test_loader` (for sources too large for memory, e.g. ladd.data.imagenet1k_loader)
    replace the in-memory split: each epoch is one pass over `loader`'s (normalised images,
    labels) batches, which bring their own order and augmentation (image_augmentation is
    still applied on top; "none" leaves them as they are). `source` is then the batches'
    SourceInfo (name, classes, size and normalisation go into the checkpoints). A torch
    DataLoader's `generator` state is saved with each checkpoint and restored on resume.
    """
    with claim_output(out_dir, exist_ok=resume, force=not resume, members=LABELER_FILES):
        return _train_labeler(source, cfg, out_dir, resume=resume, **options)


def _train_labeler(
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
    """The body of train_labeler, its folder held."""
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
