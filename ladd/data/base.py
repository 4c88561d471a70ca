"""The Source base class: one pipeline (cache lookup, decode, store, resize) and one hook.

A source says what it is (`info`) and how to turn raw files into uint8 tensors (`decode`).
The base class owns the decoded cache, so no source re-implements it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ladd.data.cache import load_split, save_split
from ladd.data.decode import resize_center_crop
from ladd.data.imageset import SPLITS, ImageSet, SourceInfo, class_balanced_indices
from ladd.limits import current_limits


class SourceError(ValueError):
    """A source asked for in a way it cannot serve (unknown name, missing split, bad size)."""


class SourceNotFoundError(FileNotFoundError):
    """A source's raw files are not where they were looked for; the message says where."""


def default_data_root() -> Path:
    """Where raw datasets live: env LADD_DATA_ROOT, else ./data."""
    env = os.environ.get("LADD_DATA_ROOT")
    return Path(env) if env else Path("data")


@dataclass(frozen=True)
class LoadContext:
    """Where to find raw files and the cache, and whether downloading is allowed."""

    data_root: Path
    cache_dir: Path
    download: bool = True


def info_to_meta(info: SourceInfo) -> dict:
    return {
        "name": info.name,
        "class_names": list(info.class_names),
        "image_size": info.image_size,
        "mean": list(info.mean),
        "std": list(info.std),
        "channels": info.channels,
    }


def info_from_meta(meta: dict) -> SourceInfo:
    return SourceInfo(
        name=meta["name"],
        class_names=tuple(meta["class_names"]),
        image_size=int(meta["image_size"]),
        mean=tuple(float(v) for v in meta["mean"]),
        std=tuple(float(v) for v in meta["std"]),
        channels=int(meta.get("channels", 3)),
    )


def resize_set(imageset: ImageSet, info: SourceInfo) -> ImageSet:
    """Resize every image to info.image_size (short side + centre crop), in bounded batches."""
    size = info.image_size
    if imageset.images.shape[-1] == size and imageset.images.shape[-2] == size:
        return ImageSet(imageset.images, imageset.labels, info, imageset.split)
    n, c = imageset.images.shape[:2]
    current_limits().check_decoded(n * c * size * size, f"{info.name} at {size} px")
    out = torch.empty(n, c, size, size, dtype=torch.uint8, device=imageset.images.device)
    for start in range(0, n, 2048):
        out[start : start + 2048] = resize_center_crop(imageset.images[start : start + 2048], size)
    return ImageSet(out, imageset.labels, info, imageset.split)


class Source:
    """A named source dataset. Subclasses override `info` and the `decode` hook.

    native_size: sources stored at one resolution (CIFAR) set it; they are decoded and cached
    at that size and resized on load when another size is asked for. Sources that decode
    from large photographs leave it None and decode straight to the size asked for.
    """

    name: str = ""
    default_size: int = 32
    native_size: int | None = None

    def info(self, image_size: int | None = None) -> SourceInfo:
        raise NotImplementedError

    def resolve_size(self, image_size: int | None) -> int:
        size = int(image_size) if image_size is not None else self.default_size
        if size < 8:
            raise SourceError(f"{self.name}: image_size must be at least 8, got {size}")
        return size

    # ---- the hook ----------------------------------------------------------------------
    def decode(self, split: str, image_size: int, ctx: LoadContext) -> dict[str, ImageSet]:
        """Decode raw files to uint8 sets. May return more splits than asked for (one pass over
        an archive serves both), each of which gets cached."""
        raise NotImplementedError

    # ---- cache policy (override when it depends on where the data comes from) -----------
    def uses_cache(self, ctx: LoadContext) -> bool:
        return True

    def cache_key(self, split: str, image_size: int, ctx: LoadContext) -> str:
        return f"{self.name}-{split}-{image_size}px"

    def fingerprint(self, ctx: LoadContext) -> str | None:
        """Identity of the raw files (size, mtime); a change invalidates the cache. None when
        unknown or when the raw files are gone (the cache is then used as it is)."""
        return None

    # ---- the pipeline ------------------------------------------------------------------
    def load(self, split: str, image_size: int | None, ctx: LoadContext) -> ImageSet:
        """The whole split as uint8 on the CPU, from the cache when it holds a fresh copy."""
        if split not in SPLITS:
            raise SourceError(f"{self.name}: split must be 'train' or 'test', got {split!r}")
        size = self.resolve_size(image_size)
        decode_size = self.native_size or size
        if not self.uses_cache(ctx):
            loaded = self.decode(split, decode_size, ctx)[split]
        else:
            loaded = self._load_cached(split, decode_size, ctx)
        if decode_size != size:
            loaded = resize_set(loaded, self.info(size))
        return loaded

    def _load_cached(self, split: str, size: int, ctx: LoadContext) -> ImageSet:
        key = self.cache_key(split, size, ctx)
        entry = load_split(ctx.cache_dir, key)
        if entry is not None:
            current = self.fingerprint(ctx)
            if current is None or entry.meta.get("fingerprint") in (None, current):
                return ImageSet(entry.images, entry.labels, info_from_meta(entry.meta), split)
        decoded = self.decode(split, size, ctx)
        stamp = self.fingerprint(ctx)
        for name, imageset in decoded.items():
            meta = dict(info_to_meta(imageset.info), split=name, fingerprint=stamp)
            save_split(
                ctx.cache_dir,
                self.cache_key(name, size, ctx),
                imageset.images,
                imageset.labels,
                meta,
            )
        return decoded[split]

    def load_limited(
        self,
        split: str,
        image_size: int | None,
        ctx: LoadContext,
        per_class: int | None = None,
        seed: int = 0,
    ) -> ImageSet:
        """The split, or a class-balanced subset of seeded-random `per_class` examples a class."""
        full = self.load(split, image_size, ctx)
        if per_class is None:
            return full
        picks = class_balanced_indices(full.labels, per_class, full.info.num_classes, seed=seed)
        return full.subset(picks)
