"""What every soft-label store shares: one stored batch, a store's facts, the reader registry.

The field's large-scale works (SRe2L and its successors) ship a distilled set as an image folder
plus a *soft-label store*: for every training epoch, the random crops each image was cut into,
their flips and the batch's CutMix/Mixup parameters, and a teacher's output on the result. A
student replays the store: epoch e's batches, in their stored order, each batch's crops cut from
its images and mixed as stored, trained towards the stored labels.

A family's reader (`StoreReader`) recognises its layout by content and opens a `SoftLabelStore`,
which reads nothing but the listing until a batch is asked for (`batch(e, b)`): an ImageNet-1K
store (5.7 GB for SRe2L at IPC 10) is never held whole. Every batch comes back as one
`StoreBatch` in one convention, whatever the family wrote:

    rows     int64 (B,)   the images, as indices into the image folder in torchvision
                          ImageFolder's order (what every family's loader indexes)
    coords   float32 (B, 4)  the RandomResizedCrop box (top, left, height, width) as fractions
                          of the image's height and width; cut, then resized to the image size
    flip     bool (B,)    a horizontal flip after the crop and resize
    mix      "cutmix" | "mixup" | None, with mix_index (B,) (the partner's row in the batch),
             mix_lam (the Beta draw) and mix_box (x1, y1, x2, y2): CutMix pastes
             partner[:, :, x1:x2, y1:y2] into [:, :, x1:x2, y1:y2] of the resized crops
    labels   the teacher's output on the mixed batch: "logits" (B, K), "probs" (B, K) already
             softened at a temperature, or "topk_logits" values (B, k) with label_indices (B, k)

Readers register themselves when `ladd.stores` is imported; this module imports none of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ladd.sets.base import DistilledFileError

__all__ = [
    "LABEL_KINDS",
    "MIX_KINDS",
    "SoftLabelStore",
    "StoreBatch",
    "StoreError",
    "StoreInfo",
    "StoreReader",
    "find_store_reader",
    "register_store_reader",
    "store_readers",
]

LABEL_KINDS = ("logits", "probs", "topk_logits")
MIX_KINDS = ("cutmix", "mixup")


class StoreError(DistilledFileError):
    """A soft-label store (or one of its files) that cannot be used; the message is one line
    naming the file and the problem."""


@dataclass(frozen=True)
class StoreBatch:
    """One stored batch in the common convention (module doc). Tensors are on the CPU."""

    rows: torch.Tensor  # int64 (B,): image indices in ImageFolder order
    coords: torch.Tensor  # float32 (B, 4): top, left, height, width as fractions
    flip: torch.Tensor  # bool (B,)
    labels: torch.Tensor  # float (B, K) logits or probabilities, or (B, k) top-k logits
    label_kind: str  # one of LABEL_KINDS
    label_indices: torch.Tensor | None = None  # int64 (B, k) for "topk_logits"
    mix: str | None = None  # one of MIX_KINDS, or None
    mix_index: torch.Tensor | None = None  # int64 (B,)
    mix_lam: float | None = None
    mix_box: tuple[int, int, int, int] | None = None  # x1, y1, x2, y2 (dims 2 and 3)
    crop_rounding: str = "box"  # "box": PIL's crop rounds the box corners; "each": each value

    def __len__(self) -> int:
        return int(self.rows.shape[0])


@dataclass(frozen=True)
class StoreInfo:
    """What a store is, read from its listing and its first batch (nothing else is loaded)."""

    family: str  # the reader's name: sre2l, lpld, edc, hald, lpqld, ladd
    title: str  # who writes this layout, for people
    root: Path
    epochs: int  # complete epochs
    batches_per_epoch: int
    batch_size: int
    images: int | None  # images per epoch (the image folder's size), None when unknown
    num_classes: int | None  # K (None: a top-k store that does not say it)
    label_kind: str
    label_dtype: str  # "float16", "float32", ...
    top_k: int | None  # kept classes per crop (top-k stores), else None
    mix: str | None
    files: int  # files that make up the store
    bytes: int  # bytes on disk, all files
    label_bytes: int  # bytes of the label payload (logits / probabilities / top-k + indices)
    order: str  # where the image order comes from
    written_by: str  # upstream file:line that writes this layout
    notes: tuple[str, ...] = ()
    extra_epochs: int = 0  # a trailing partial epoch (LPLD/LPQLD with pruning), not counted

    @property
    def crops_per_epoch(self) -> int | None:
        return self.images

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["root"] = str(self.root)
        d["notes"] = list(self.notes)
        d["crops_per_epoch"] = self.crops_per_epoch
        return d

    def lines(self) -> list[str]:
        """`ladd info`'s lines for the store."""
        k = f"{self.num_classes:,}" if self.num_classes is not None else "?"
        kind = {
            "logits": f"teacher logits, {k} classes",
            "probs": f"probabilities (already softened), {k} classes",
            "topk_logits": f"top-{self.top_k} logits + class indices, of {k} classes",
        }[self.label_kind]
        crops = f"{self.images:,}" if self.images is not None else "?"
        out = [
            f"soft-label store: {self.title} ({self.family})",
            f"  epochs: {self.epochs}"
            + (f" (+ {self.extra_epochs} partial)" if self.extra_epochs else "")
            + f", {self.batches_per_epoch} batches of {self.batch_size}, {crops} crops per epoch",
            f"  labels: {kind}, {self.label_dtype}"
            + (f", top-k {self.top_k}" if self.top_k is not None else ""),
            f"  mix: {self.mix or 'none'}; image order: {self.order}",
            f"  bytes: {self.bytes:,} on disk in {self.files:,} files "
            f"({self.label_bytes:,} of labels)",
            f"  written by {self.written_by}",
        ]
        out += [f"  note: {n}" for n in self.notes]
        return out


class SoftLabelStore(ABC):
    """An opened store: its facts, and its batches read one at a time (lazily)."""

    family: str = ""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @abstractmethod
    def info(self) -> StoreInfo:
        """The store's facts (cheap: the listing and the first batch)."""

    @abstractmethod
    def batch(self, epoch: int, index: int) -> StoreBatch:
        """Batch `index` of epoch `epoch`, read, checked and in the common convention."""

    def batches(self, epoch: int) -> int:
        """How many batches epoch `epoch` holds."""
        return self.info().batches_per_epoch

    def batch_sizes(self, epoch: int) -> list[int]:
        """The rows of each batch of epoch `epoch` (from the listing; checked on reading)."""
        info = self.info()
        n, b = self.batches(epoch), info.batch_size
        last = info.images - b * (n - 1) if info.images is not None else b
        return [b] * (n - 1) + [last]

    def digest(self) -> str:
        """A cheap identity of the store's content (listing, sizes, first and last files):
        names a training run's store in its key."""
        return ""

    def bind_images(self, count: int) -> None:  # noqa: B027 (most stores know their count)
        """Tell the store how many images its folder holds (SRe2L-style stores rebuild their
        order from it); a count the store contradicts is a StoreError."""

    def check_epoch(self, epoch: int) -> None:
        info = self.info()
        if not 0 <= epoch < info.epochs:
            raise StoreError(
                self.root, f"epoch {epoch} asked of a store of {info.epochs} complete epochs"
            )

    def check_batch(self, epoch: int, index: int) -> None:
        self.check_epoch(epoch)
        n = self.batches(epoch)
        if not 0 <= index < n:
            raise StoreError(self.root, f"batch {index} asked of epoch {epoch}'s {n} batches")


class StoreReader(ABC):
    """One family's layout: whether a path is its own (by content), and opening it."""

    family: str = ""
    title: str = ""

    @abstractmethod
    def detect(self, path: Path) -> bool:
        """Whether `path` is a store of this family (cheap, never raises for a foreign path)."""

    @abstractmethod
    def open(self, path: Path, **options: Any) -> SoftLabelStore:
        """The store at `path` (StoreError, one line, when it is malformed)."""


_READERS: list[StoreReader] = []


def register_store_reader(reader: StoreReader, *, first: bool = False) -> None:
    """Add a family; `first` gives it priority over those registered before."""
    if any(r.family == reader.family for r in _READERS):
        raise ValueError(f"a store reader for {reader.family!r} is registered already")
    if first:
        _READERS.insert(0, reader)
    else:
        _READERS.append(reader)


def store_readers() -> tuple[StoreReader, ...]:
    return tuple(_READERS)


def find_store_reader(path: Path) -> StoreReader:
    """The first registered reader that claims `path` (StoreError when none does)."""
    if not path.exists():
        raise StoreError(path, "no such file or folder")
    for reader in _READERS:
        if reader.detect(path):
            return reader
    raise StoreError(
        path,
        "not a recognised soft-label store: expected an FKD folder (epoch_<e>/batch_<b>.tar, "
        "SRe2L/CDA/FADRM/CV-DD/LPLD/EDC), HALD's epoch_<e>.tar + sampler_indices_dict.pt, "
        "LPQLD's batch_<n>.tar + sampler_indices_batch.json, or a file `ladd convert` wrote",
    )


@dataclass
class Listing:
    """The files of a store, found once (names sorted by their number)."""

    files: list[Path] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)
