"""Source datasets by name: the registry and the three calls the rest of LADD uses.

    list_sources()                     -> ["cifar10", ..., "imagenette", ..., "imagenet1k", "shapes"]
    source_info("cifar10")             -> SourceInfo, without loading pixels
    load_source("cifar10", "train")    -> ImageSet (uint8, cached after the first decode)

Besides the registered names, "imagefolder:<path>" reads a folder or archive of class folders.
"imagenet1k" is too large to load whole: stream it with ladd.data.imagenet1k_loader (load_source
serves only its val split, and only when that fits LADD_MAX_CACHED_SPLIT_BYTES).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ladd.data.base import LoadContext, Source, SourceError, default_data_root
from ladd.data.cache import default_cache_dir, resolve_cache_dir
from ladd.data.cifar import cifar_sources
from ladd.data.imagefolder import IMAGEFOLDER_PREFIX, ImageFolderSource
from ladd.data.imagenet import imagenet_sources
from ladd.data.imagenet1k import ImageNet1kSource
from ladd.data.imageset import ImageSet, SourceInfo
from ladd.data.shapes import ShapesSource
from ladd.device import resolve_device

_REGISTRY: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    """Make a source loadable by its name (later registrations replace earlier ones)."""
    _REGISTRY[source.name] = source
    return source


for _source in (*cifar_sources(), *imagenet_sources(), ImageNet1kSource(), ShapesSource()):
    register_source(_source)


def list_sources() -> list[str]:
    """Registered source names; "imagefolder:<path>" is accepted besides these."""
    return list(_REGISTRY)


def get_source(name: str) -> Source:
    """The Source object behind a name, with an error listing the valid names."""
    if name.startswith(IMAGEFOLDER_PREFIX):
        path = name[len(IMAGEFOLDER_PREFIX) :]
        if not path:
            raise SourceError("imagefolder: needs a path, e.g. imagefolder:/data/my_images")
        return ImageFolderSource(path)
    source = _REGISTRY.get(name.strip().lower())
    if source is None:
        known = ", ".join(_REGISTRY)
        raise SourceError(f"unknown source {name!r}: use one of {known}, or imagefolder:<path>")
    return source


def _context(data_root, cache_dir, download: bool = True) -> LoadContext:
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    return LoadContext(root, resolve_cache_dir(cache_dir).expanduser(), download)


def source_info(
    name: str,
    image_size: int | None = None,
    *,
    cache_dir: str | Path | None = None,
    data_root: str | Path | None = None,
) -> SourceInfo:
    """What a source is (classes, size, normalisation) without loading it.

    Exceptions: an imagefolder's statistics are measured on its pixels, so the first call for
    a folder decodes (and caches) its train split; later calls read the cache. imagenet1k's
    class names are the wnid folders of the ImageNet folder under the data root.
    """
    source = get_source(name)
    if isinstance(source, (ImageFolderSource, ImageNet1kSource)):
        return source.info(image_size, _context(data_root, cache_dir))
    return source.info(image_size)


def load_source(
    name: str,
    split: str = "train",
    *,
    image_size: int | None = None,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    download: bool = True,
    limit_per_class: int | None = None,
    seed: int = 0,
) -> ImageSet:
    """One split of a source as a uint8 ImageSet, on `device` (default CPU).

    split: "train" or "test" ("val" is read as "test": the ImageNet subsets' test split is
    ImageNet's val). limit_per_class: seeded-random k examples of each class (for shapes, k
    are generated from stream `seed`).
    """
    split = {"val": "test"}.get(split, split)
    if limit_per_class is not None and limit_per_class < 1:
        raise SourceError(f"limit_per_class must be at least 1, got {limit_per_class}")
    source = get_source(name)
    ctx = _context(data_root, cache_dir, download)
    imageset = source.load_limited(split, image_size, ctx, limit_per_class, seed)
    if device is not None:
        imageset = imageset.to(resolve_device(device))
    return imageset


__all__ = [
    "default_cache_dir",
    "get_source",
    "list_sources",
    "load_source",
    "register_source",
    "source_info",
]
