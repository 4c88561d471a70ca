"""A soft-label store bound to the image folder it was made from: `SoftLabelSet`.

Every family indexes images as torchvision's ImageFolder lists the folder it was given (classes
= the sorted subfolder names, files in sorted walk order, only ImageFolder's extensions): SRe2L
through its RandomSampler, LPLD/HALD/LPQLD through their sampler files, EDC per row. That order
is taken from torchvision's own `find_classes` / `make_dataset`, not rebuilt here, and each of
its files is matched by its path to the row LADD's reader gave it. A folder whose files
torchvision would list differently from LADD's reader (other extensions, an archive) is refused
rather than guessed.

The set keeps everything a DistilledSet has (mean/std, classes, the test split's space): a
SoftLabelSet answers for its base set, plus `store`, the temperatures and `replay_data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ladd.sets.base import DistilledSet
from ladd.stores.base import SoftLabelStore, StoreError
from ladd.stores.hald import HALD_TEMPERATURE

__all__ = [
    "FAMILY_TEMPERATURES",
    "SoftLabelSet",
    "describe_soft_labels",
    "imagefolder_rows",
    "open_soft_label_set",
]

# (label temperature, student temperature) each family's own training uses by default:
#   sre2l  SRe2L validate/train_FKD.sh `-T 20` (train_FKD.py:248-249 divides both by T)
#   lpld   cfg/reproduce/LPLD_in1k_[4k].yaml validate.temperature 20
#   edc    Branch_full_ImageNet_1k/train/train.sh `-T 20`
#   hald   labels stored at T = 20; the student's log_softmax(output / 20) (train_fkd.py:675)
#   lpqld  scripts/reproduce/lpqld_in1k.sh: T 20 (scheduled down to 2, not replayed), student 1.0
FAMILY_TEMPERATURES: dict[str, tuple[float, float]] = {
    "sre2l": (20.0, 20.0),
    "lpld": (20.0, 20.0),
    "edc": (20.0, 20.0),
    "hald": (HALD_TEMPERATURE, HALD_TEMPERATURE),
    "lpqld": (20.0, 1.0),
}


def imagefolder_rows(folder: Path, paths: tuple[str, ...]) -> torch.Tensor:
    """For each image of torchvision ImageFolder's listing of `folder`, the row LADD's reader
    gave it (`paths`: the reader's relative paths, row by row). StoreError when the two listings
    do not hold the same files."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    if not folder.is_dir():
        raise StoreError(folder, "a store is paired with the image folder it was made from, "
                         "not an archive: extract it and give the folder")  # fmt: skip
    _, class_to_idx = find_classes(str(folder))
    listed = make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS)
    ours = {p: i for i, p in enumerate(paths)}
    rows = []
    for file, _ in listed:
        rel = Path(file).relative_to(folder).as_posix()
        if rel not in ours:
            raise StoreError(folder, f"torchvision's ImageFolder lists {rel}, LADD's reader not")
        rows.append(ours[rel])
    if len(rows) != len(paths):
        extra = sorted(set(paths) - {Path(f).relative_to(folder).as_posix() for f, _ in listed})
        raise StoreError(
            folder,
            f"LADD reads {len(paths)} images where torchvision's ImageFolder lists {len(rows)} "
            f"(e.g. {extra[0] if extra else '?'}): the store's indices would shift",
        )
    return torch.tensor(rows, dtype=torch.long)


@dataclass
class SoftLabelSet:
    """A distilled set (its images, read by LADD) with the soft-label store made from them.

    `rows` maps the store's image index (ImageFolder order) to the set's row.
    `label_temperature` softens stored logits into targets; `student_temperature` divides the
    student's logits in the KL loss (the family's defaults, FAMILY_TEMPERATURES)."""

    base: DistilledSet
    store: SoftLabelStore
    rows: torch.Tensor  # int64 (M,)
    label_temperature: float
    student_temperature: float
    set_path: Path | None = None

    def __getattr__(self, name: str) -> Any:  # everything else is the base set's
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def __len__(self) -> int:
        return len(self.base)

    @property
    def num_classes(self) -> int:
        return self.base.num_classes

    def store_facts(self) -> dict[str, Any]:
        """What a plan records of the store (and what names it in the run's key)."""
        info = self.store.info()
        return {
            "family": info.family,
            "path": str(info.root),
            "digest": self.store.digest(),
            "epochs": info.epochs,
            "batches_per_epoch": info.batches_per_epoch,
            "batch_size": info.batch_size,
            "crops_per_epoch": info.crops_per_epoch,
            "label_kind": info.label_kind,
            "label_dtype": info.label_dtype,
            "top_k": info.top_k,
            "mix": info.mix,
            "label_bytes": info.label_bytes,
            "label_temperature": self.label_temperature,
            "student_temperature": self.student_temperature,
        }

    def replay_data(self) -> Any:
        """The training data of label mode "store" (ladd.stores.replay)."""
        from ladd.stores.replay import replay_training_data

        return replay_training_data(self)


def _defaults(store: SoftLabelStore) -> tuple[float, float]:
    meta = getattr(store, "meta", None)
    if isinstance(meta, dict):  # a converted store: its source family, or its codec's T
        if meta.get("temperature") is not None and meta.get("labels", "stored") != "stored":
            t = float(meta["temperature"])
            return t, t
        family = meta.get("source", {}).get("family", "sre2l")
        return FAMILY_TEMPERATURES.get(family, (20.0, 20.0))
    return FAMILY_TEMPERATURES.get(store.family, (20.0, 20.0))


def open_soft_label_set(
    set_path: str | Path,
    store: str | Path | SoftLabelStore,
    *,
    dataset: DistilledSet | None = None,
    label_temperature: float | None = None,
    student_temperature: float | None = None,
    fkd_seed: int = 42,
    **read_options: Any,
) -> SoftLabelSet:
    """The image folder at `set_path` (read with load_set and `read_options`, or `dataset` when
    already read) paired with the store at `store` (any family). Checks that the store indexes
    this folder's images and classes; StoreError (one line) otherwise."""
    from ladd.sets import load_set
    from ladd.sets.readers import ImageFolderReader
    from ladd.stores import open_store

    folder = Path(set_path).expanduser()
    opened = store if isinstance(store, SoftLabelStore) else open_store(store, fkd_seed=fkd_seed)
    listing = ImageFolderReader().list(folder)
    ds = dataset if dataset is not None else load_set(folder, **read_options)
    if len(ds) != len(listing.paths):
        raise StoreError(folder, f"the set holds {len(ds)} images, its folder {len(listing.paths)}")
    rows = imagefolder_rows(folder, listing.paths)
    opened.bind_images(len(rows))
    if hasattr(opened, "bind_classes"):
        opened.bind_classes(ds.num_classes)
    info = opened.info()
    if info.images is not None and info.images > len(rows):
        raise StoreError(
            opened.root, f"{info.images} crops an epoch for a folder of {len(rows)} images"
        )
    if info.num_classes is not None and info.num_classes != ds.num_classes:
        raise StoreError(
            opened.root,
            f"its labels have {info.num_classes} classes, the set {ds.num_classes}",
        )
    label_t, student_t = _defaults(opened)
    return SoftLabelSet(
        base=ds,
        store=opened,
        rows=rows,
        label_temperature=float(label_temperature if label_temperature is not None else label_t),
        student_temperature=float(
            student_temperature if student_temperature is not None else student_t
        ),
        set_path=folder,
    )


def describe_soft_labels(
    store: str | Path,
    set_path: str | Path | None = None,
    *,
    dataset: DistilledSet | None = None,
    fkd_seed: int = 42,
) -> dict[str, Any]:
    """What `ladd info SET --soft-labels STORE` says of the store: its facts (family, epochs,
    crops per epoch, label dtype and top-k, bytes) and, with the set, whether it indexes that
    folder (`paired`, or `problem`: the one-line reason it does not) and the temperatures a
    "store" run would use. Reads the listing and the first batches only."""
    from ladd.stores import open_store

    opened = open_store(store, fkd_seed=fkd_seed)
    out: dict[str, Any] = {}
    if set_path is not None:
        try:
            sset = open_soft_label_set(set_path, opened, dataset=dataset, fkd_seed=fkd_seed)
            out["paired"] = True
            out["label_temperature"] = sset.label_temperature
            out["student_temperature"] = sset.student_temperature
        except StoreError as err:
            out["paired"] = False
            out["problem"] = str(err)
    info = opened.info()
    out = {**info.to_dict(), **out, "lines": info.lines()}
    if hasattr(opened, "source_info"):
        out["converted_from"] = opened.source_info()
    return out
