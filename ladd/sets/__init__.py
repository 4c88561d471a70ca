"""Distilled and label-augmented sets: the types, every format's reader, and loading.

    from ladd.sets import load_set, random_real
    ds = load_set("runs/mtt_cifar10_ipc10", source="cifar10")
    ds = load_set("runs/mtt_cifar10_ipc10", describe_only=True)  # no source: describe only

Module map:
    base.py         DistilledSet, RawSet, the reader registry, safe torch/safetensors reading
    conventions.py  each distiller's normalisation, and value-range checks
    readers.py      MTT/GLaD/DATM folders, DD-Ranking folders, DC/DSA/DM result files, torch
                    and safetensors files, image folders (registered on import)
    augmented.py    the label-augmented set and its file (registered first)
    loading.py      load_set / load_distilled, fit_zca_for, random_real
    options.py      read_options: the user's reading fields (CLI flags, dashboard) as load_set
                    options, one rule set for both
    view.py         open_view: a set described whole, its images read a few at a time (the
                    dashboard's pages; an image folder is listed, not decoded)

`base` imports no reader; this package imports them all, so `load_set` knows every format.
docs/formats.md lists what each format reads and how to load it.
"""

from ladd.sets import readers as _readers  # noqa: F401  (registers the distillers' formats)
from ladd.sets.augmented import (
    SET_FORMAT,
    LabelAugmentedFileError,
    LabelAugmentedSet,
    TrainableSet,
    is_label_augmented_file,
)
from ladd.sets.base import (
    FORMATS,
    GLAD_MEAN,
    META_FILE,
    UNKNOWN_NORMALISATION,
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
from ladd.sets.conventions import Normalisation, convention
from ladd.sets.loading import (
    fit_zca_for,
    load_distilled,
    load_set,
    random_real,
    resolve_set_path,
)
from ladd.sets.options import SetOptionError, read_options
from ladd.sets.view import SetView, open_view

__all__ = [
    "FORMATS",
    "GLAD_MEAN",
    "META_FILE",
    "SET_FORMAT",
    "UNKNOWN_NORMALISATION",
    "DistilledFileError",
    "DistilledReader",
    "DistilledSet",
    "LabelAugmentedFileError",
    "LabelAugmentedSet",
    "Normalisation",
    "RawSet",
    "ReadRequest",
    "SetOptionError",
    "SetView",
    "TrainableSet",
    "convention",
    "find_reader",
    "fit_zca_for",
    "has_zca",
    "is_label_augmented_file",
    "load_distilled",
    "load_set",
    "open_view",
    "random_real",
    "read_options",
    "register_reader",
    "resolve_set_path",
    "safe_torch_load",
]
