"""Streaming a dataset in batches: seeded DataLoaders, and evaluation over a loader.

For sources too large to hold as one tensor (ImageNet-1K: 1.28M train images), images are
decoded one by one in DataLoader workers. Randomness is explicit: the sampler draws, from one
torch.Generator, both the order and one seed per sample, and the dataset builds that sample's
augmentation from its seed. So the same seed gives the same batches whatever the number of
workers (and which worker decodes which image), and the global RNG is never touched.

    loader = build_loader(dataset, LoaderConfig(batch_size=256, workers=8, shuffle=True))
    result = evaluate_loader(model, loader, "cuda", num_classes=1000)   # result.top1, .per_class
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ladd.data.imageset import ImageSet, normalise

SampleKey = tuple[int, int]  # (index into the dataset, the sample's augmentation seed)
_SEED_HIGH = 2**62


def split_key(key: int | SampleKey) -> tuple[int, int]:
    """(index, seed) of a dataset key; a bare index is its own seed (direct indexing is
    deterministic too)."""
    if isinstance(key, tuple):
        return int(key[0]), int(key[1])
    return int(key), int(key)


class SeededSampler(Sampler[SampleKey]):
    """Yields (index, seed) for every sample once: shuffled or in order, and one seed per
    sample, all drawn from `generator` when an epoch starts."""

    def __init__(self, length: int, generator: torch.Generator, shuffle: bool) -> None:
        self.length = int(length)
        self.generator = generator
        self.shuffle = shuffle

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[SampleKey]:
        n = self.length
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        seeds = torch.randint(0, _SEED_HIGH, (n,), generator=self.generator)
        return iter(zip(order.tolist(), seeds.tolist(), strict=True))


class ImageSetDataset(Dataset):
    """A uint8 ImageSet served one normalised image at a time (for a split that fits memory,
    e.g. a cached ImageNet-1K val split), through the same loaders as a streamed one."""

    def __init__(self, imageset: ImageSet) -> None:
        self.imageset = imageset

    def __len__(self) -> int:
        return len(self.imageset.labels)

    def __getitem__(self, key: int | SampleKey) -> tuple[torch.Tensor, int]:
        index, _ = split_key(key)
        info = self.imageset.info
        x = normalise(self.imageset.images[index], info.mean, info.std)  # (C, H, W)
        return x, int(self.imageset.labels[index])


START_METHODS = (None, "fork", "forkserver", "spawn")


def thread_safe_workers(cpus: int | None = None) -> int:
    """Decoding workers for a streamed source read from a server's thread: one per core but
    one (the server's), at most 8, at least 1."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(1, min(8, cpus - 1))


def process_workers(cpus: int | None = None) -> int:
    """Decoding workers for a streamed source read from a process of its own (the command
    line): one per core but one (this process's), at most 8; 0 (decode here) on one core."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    return min(8, max(0, cpus - 1))


@dataclass(frozen=True)
class LoaderConfig:
    """How a dataset is batched; `pin_memory=None` pins exactly when the device is CUDA."""

    batch_size: int = 256
    workers: int = 0
    shuffle: bool = False
    seed: int = 0
    drop_last: bool = False
    pin_memory: bool | None = None
    prefetch_factor: int | None = None  # batches each worker keeps ready (torch's default: 2)
    # How worker processes start: None is torch's default (fork on Linux); "forkserver" or
    # "spawn" from a thread of a threaded server (the dashboard's jobs), where fork is unsafe.
    start_method: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.workers < 0:
            raise ValueError(
                f"batch_size must be >= 1 and workers >= 0, got {self.batch_size}, {self.workers}"
            )
        if self.start_method not in START_METHODS:
            raise ValueError(
                f"start_method must be one of {', '.join(map(str, START_METHODS))}, "
                f"got {self.start_method!r}"
            )


def build_loader(
    dataset: Dataset, cfg: LoaderConfig, device: str | torch.device = "cpu"
) -> DataLoader:
    """A torch DataLoader over `dataset` whose order and per-sample seeds come from one
    generator seeded with cfg.seed (kept as `loader.generator`; a trainer that saves its state
    can resume the exact epoch sequence). The dataset must accept (index, seed) keys."""
    generator = torch.Generator().manual_seed(cfg.seed)
    sampler = SeededSampler(len(dataset), generator, cfg.shuffle)
    pin = cfg.pin_memory if cfg.pin_memory is not None else torch.device(device).type == "cuda"
    extra = {}
    if cfg.workers > 0 and cfg.prefetch_factor is not None:
        extra["prefetch_factor"] = cfg.prefetch_factor
    if cfg.workers > 0 and cfg.start_method is not None:
        extra["multiprocessing_context"] = cfg.start_method
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=pin,
        drop_last=cfg.drop_last,
        generator=generator,
        **extra,
    )


class LoaderAccuracy(NamedTuple):
    """Top-1 accuracy over a loader, and per class (NaN for a class with no images)."""

    top1: float
    per_class: torch.Tensor  # float64 (num_classes,), on the CPU


@torch.no_grad()
def evaluate_loader(
    model: nn.Module,
    loader: Iterable[Sequence[torch.Tensor]],
    device: str | torch.device,
    num_classes: int,
) -> LoaderAccuracy:
    """Top-1 and per-class accuracy of `model` on every (images, labels) batch of `loader`.

    The model is run in eval mode (its mode is restored afterwards); nothing is selected on
    these numbers here, so a test loader gives an honest test accuracy.
    """
    dev = torch.device(device)
    was_training = model.training
    model.eval()
    correct = torch.zeros(num_classes, dtype=torch.int64, device=dev)
    total = torch.zeros(num_classes, dtype=torch.int64, device=dev)
    try:
        for x, y in loader:
            x = x.to(dev, non_blocking=True)  # (B, C, H, W)
            y = y.to(dev, non_blocking=True)  # (B,)
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
                raise ValueError(f"labels outside 0..{num_classes - 1} in the loader's batches")
            hit = model(x).argmax(1) == y
            total += torch.bincount(y, minlength=num_classes)
            correct += torch.bincount(y[hit], minlength=num_classes)
    finally:
        model.train(was_training)
    total_cpu, correct_cpu = total.cpu(), correct.cpu()
    per_class = correct_cpu.double() / total_cpu.double()  # NaN where a class has no images
    return LoaderAccuracy(int(correct_cpu.sum()) / max(1, int(total_cpu.sum())), per_class)


__all__ = [
    "ImageSetDataset",
    "LoaderAccuracy",
    "LoaderConfig",
    "SampleKey",
    "SeededSampler",
    "build_loader",
    "evaluate_loader",
    "process_workers",
    "split_key",
]
