"""Real source datasets, their decoded caches, the offline `shapes` source, and ZCA whitening.

Module map:
    imageset.py    SourceInfo, ImageSet, normalise / denormalise / to_uint8
    sources.py     the registry: list_sources, source_info, load_source
    base.py        the Source base class (cache, decode hook, resize)
    cifar.py, imagenet.py, imagefolder.py, shapes.py   one file per kind of source
    imagenet1k.py  ImageNet-1K, streamed: cached listing, per-image dataset and transforms
    streaming.py   seeded DataLoaders and evaluation over a loader (evaluate_loader)
    decode.py      reading folders and archives, decoding and resizing images
    cache.py       safetensors cache with JSON sidecars
    zca.py         ZCA whitening (fit, apply, invert)
"""

from ladd.data.base import LoadContext, Source, SourceError, SourceNotFoundError, default_data_root
from ladd.data.cache import default_cache_dir
from ladd.data.cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from ladd.data.decode import ImageDecodeError
from ladd.data.imagefolder import IMAGEFOLDER_PREFIX
from ladd.data.imagenet import IMAGENET_MEAN, IMAGENET_STD, IMAGENET_SUBSETS
from ladd.data.imagenet1k import imagenet1k_dataset, imagenet1k_loader
from ladd.data.imageset import (
    ImageSet,
    SourceInfo,
    class_balanced_indices,
    class_pixel_stats,
    denormalise,
    normalise,
    to_uint8,
)
from ladd.data.shapes import SHAPE_CLASSES, generate_shapes
from ladd.data.sources import get_source, list_sources, load_source, register_source, source_info
from ladd.data.streaming import LoaderAccuracy, LoaderConfig, build_loader, evaluate_loader
from ladd.data.zca import ZCA, fit_zca

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "IMAGEFOLDER_PREFIX",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGENET_SUBSETS",
    "SHAPE_CLASSES",
    "ZCA",
    "ImageDecodeError",
    "ImageSet",
    "LoaderAccuracy",
    "LoaderConfig",
    "LoadContext",
    "Source",
    "SourceError",
    "SourceInfo",
    "SourceNotFoundError",
    "build_loader",
    "class_balanced_indices",
    "class_pixel_stats",
    "default_cache_dir",
    "default_data_root",
    "denormalise",
    "evaluate_loader",
    "fit_zca",
    "generate_shapes",
    "get_source",
    "imagenet1k_dataset",
    "imagenet1k_loader",
    "list_sources",
    "load_source",
    "normalise",
    "register_source",
    "source_info",
    "to_uint8",
]
