"""A set described in full but read a few images at a time: what a page that shows some classes
of a 1000-class set needs. ImageNet-1K at IPC 10 (RDED's, SRe2L's folders) is 10,000 image
files: decoded whole they are 1.5 GB of uint8 and 6 GB of normalised float32, and decoding
them takes 19 s on two cores (bench/set_view.py), to show one page of classes.

    view = open_view("rded_imagenet_ipc10")           # the listing and one image decoded
    view.labels, view.class_names, len(view)           # what the files' names say
    view.images_at([0, 17])                            # those images, as load_set gives them
    view.load()                                        # the whole set, for a training or export

Read lazily:
- Image folders (and archives): the reader lists the files and labels (readers.
  ImageFolderReader.list), the first image sets the size, and `loading.settle` decides the
  normalisation, class names and warnings exactly as a full load does; `images_at` decodes the
  files asked for and takes them into the set's space with the same function. A file that will
  not decode is reported when it is shown (a full load refuses the whole set).
- Label-augmented files with uint8 pixels (what `ladd augment` writes for 8-bit sets, ImageNet-1K
  included): every tensor but the images is read and checked as `load` checks it
  (LabelAugmentedSet.load_head), and `images_at` reads the rows asked for from the file.

Measured (bench/set_view.py, 2 cores): RDED's names, 1000 classes x 10 at 224 px (10,000 JPEG
files): opened, with 20 classes' images, in 2.4 s at 0.8 GiB peak; load_set takes 19 s and
7.7 GiB. Every other format (tensor files, float or ZCA-space label-augmented files) is loaded
whole and viewed as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ladd.sets.augmented import LabelAugmentedReader, read_images
from ladd.sets.base import DistilledFileError, DistilledSet, find_reader
from ladd.sets.loading import LoadOptions, check_format, load_set, resolve_set_path, settle
from ladd.sets.readers import FolderSet, ImageFolderReader

__all__ = ["SetView", "open_view"]

# describe()'s value range of a lazy view: the images have not all been read.
NOT_READ = "not read: the images are decoded when they are shown"
# What a lazy view passes through from its head: the description, never the images.
HEAD_FIELDS = frozenset(
    (
        "mean",
        "std",
        "zca",
        "zca_source",
        "test_mean",
        "test_std",
        "test_normalisation",
        "format",
        "source",
        "lr",
        "soft_labels",
        "warnings",
        "notes",
        "normalisation",
        "origin",
        "trainable",
        "require_trainable",
        "ipc",
        "ipc_per_class",
        # a label-augmented file's labels and how they were made
        "codec",
        "dense_labels",
        "image_probs",
        "label_bytes",
        "n",
        "r",
        "num_crops",
        "full_soft",
        "labeler",
        "temperature",
        "distilled_format",
        "generation_flops",
    )
)


@dataclass(frozen=True)
class SetView:
    """A set's description (a DistilledSet's or LabelAugmentedSet's fields but its images) and
    its images by position. Lazy: `head` is the set with its first image alone as `images`
    (and all M labels), `whole` None. Loaded whole (every other format): `head` and `whole`
    are the set itself."""

    path: Path
    head: Any
    read: Callable[[Sequence[int]], torch.Tensor]  # positions -> images in the set's space
    options: dict[str, Any] = field(default_factory=dict)
    whole: Any = None

    @property
    def lazy(self) -> bool:
        return self.whole is None

    # ------------------------------------------------------------- what a page reads of a set
    @property
    def labels(self) -> torch.Tensor:
        return self.head.labels

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.head.class_names

    @property
    def num_classes(self) -> int:
        return len(self.head.class_names)

    @property
    def image_size(self) -> int:
        return int(self.head.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.head.images.shape[1])

    def __len__(self) -> int:
        return int(self.head.labels.shape[0])

    def __getattr__(self, name: str) -> Any:
        """A loaded set's every attribute; a lazy view's descriptive ones (HEAD_FIELDS), never
        its `images` (the head holds one)."""
        if name.startswith("__") or name in ("path", "head", "read", "options", "whole"):
            raise AttributeError(name)
        if self.whole is not None:
            return getattr(self.whole, name)
        if name not in HEAD_FIELDS:
            raise AttributeError(
                f"a lazy view of {self.path} has no {name!r}: read images with "
                "images_at(indices), or the whole set with load()"
            )
        return getattr(self.head, name)

    def describe(self) -> dict[str, Any]:
        """The set's describe(); for a lazy view its value range is not read (NOT_READ)."""
        if self.whole is not None:
            return self.whole.describe()
        d = self.head.describe()
        for key in ("value_min", "value_max"):  # a DistilledSet's; a label-augmented one's
            if key in d:  # is value_range alone
                d[key] = None
        d["value_range"] = NOT_READ
        return d

    def images_at(self, indices: Sequence[int]) -> torch.Tensor:
        """The images at `indices` (in that order), float (m, C, H, W) in the set's space:
        load_set(path, **options).images[indices], bit for bit."""
        picked = [int(i) for i in indices]
        bad = [i for i in picked if not 0 <= i < len(self)]
        if bad:
            raise IndexError(f"image {bad[0]} is outside the set's {len(self)} images")
        if not picked:
            return self.head.images[:0].float()
        return self.read(picked)

    def load(self) -> Any:
        """The whole set, as load_set reads it (for a training, an export, a whole-set figure)."""
        if self.whole is not None:
            return self.whole
        return load_set(self.path, **self.options)


def open_view(path: str | Path, **options: Any) -> SetView:
    """A view of the set at `path`, read with load_set's `options` (DistilledFileError, or
    LabelAugmentedFileError, as load_set raises them)."""
    p = resolve_set_path(path)
    if not p.exists():
        raise DistilledFileError(p, "no such file or folder")
    check_format(p, options.get("format"))
    reader = find_reader(p)
    if isinstance(reader, ImageFolderReader) and options.get("experiment") is None:
        return _folder_view(reader.list(p), p, options)
    head = reader.load_head(p, **options) if isinstance(reader, LabelAugmentedReader) else None
    if head is not None:
        return SetView(p, head, lambda i: read_images(p, list(i), head), dict(options))
    whole = load_set(p, **options)
    return SetView(p, whole, lambda i: whole.images[torch.as_tensor(i)], dict(options), whole)


def _folder_view(listing: FolderSet, path: Path, options: dict[str, Any]) -> SetView:
    """An image folder's view: the listing, one image decoded, the rest on demand."""
    o = LoadOptions(**options)  # an unknown option is a TypeError, as load_set makes it
    first = listing.decode([0], o.image_size)  # its side is the set's, as in a whole decode
    side = int(first.shape[-1])
    stand_in = first.expand(len(listing.labels), -1, -1, -1)  # no memory: checks read the shape
    head, to_space = settle(listing.raw(stand_in), o, path)
    head = _with_images(head, to_space(first))

    def read(indices: Sequence[int]) -> torch.Tensor:
        return to_space(listing.decode(indices, side))

    return SetView(path, head, read, dict(options))


def _with_images(head: DistilledSet, images: torch.Tensor) -> DistilledSet:
    return replace(head, images=images.contiguous())
