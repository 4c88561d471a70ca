"""Distilled and label-augmented sets: the types, every format's reader, and loading.

    from ladd.sets import load_set, random_real
    ds = load_set("runs/mtt_cifar10_ipc10", source="cifar10")

`base` holds the types and the reader registry (it imports no reader); `readers` and `augmented`
register their formats on import, which this package does, so `load_set` knows them all.
"""

from ladd.sets import readers as _readers  # noqa: F401  (registers the distillers' formats)
from ladd.sets.augmented import (
    SET_FORMAT,
    LabelAugmentedFileError,
    LabelAugmentedSet,
    is_label_augmented_file,
)
from ladd.sets.base import (
    FORMATS,
    GLAD_MEAN,
    META_FILE,
    DistilledFileError,
    DistilledReader,
    DistilledSet,
    RawSet,
    ReadRequest,
    find_reader,
    has_zca,
    register_reader,
    safe_torch_load,
)
from ladd.sets.loading import fit_zca_for, load_distilled, load_set, random_real

__all__ = [
    "FORMATS",
    "GLAD_MEAN",
    "META_FILE",
    "SET_FORMAT",
    "DistilledFileError",
    "DistilledReader",
    "DistilledSet",
    "LabelAugmentedFileError",
    "LabelAugmentedSet",
    "RawSet",
    "ReadRequest",
    "find_reader",
    "fit_zca_for",
    "has_zca",
    "is_label_augmented_file",
    "load_distilled",
    "load_set",
    "random_real",
    "register_reader",
    "safe_torch_load",
]
