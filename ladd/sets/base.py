"""What every distilled-set format shares: the set, the raw read, the error, the reader registry.

A reader (one file format) says whether a path is its own (`detect`, by content, never by the
name alone) and returns what it found as a RawSet; `ladd.sets.loading` turns that into a checked
DistilledSet. A reader whose files are complete sets of their own (the label-augmented file)
overrides `load` instead. Readers register themselves when `ladd.sets` is imported; this module
imports none of them.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ladd.data import ZCA
from ladd.files import torch_save, write_json

GLAD_MEAN = (0.4377, 0.4438, 0.4728)  # GLaD's ImageNet-subset images (with ImageNet's std)
META_FILE = "ladd_meta.json"
META_VERSION = 1
FORMATS = ("mtt", "datm", "glad", "tensor", "imagefolder", "ladd", "random_real")


def has_zca(obj: Any) -> bool:
    """Whether a set (zca: ZCA | None) or labeler meta (zca: bool) lives in ZCA space."""
    z = getattr(obj, "zca", None)
    return z is not None and z is not False


class DistilledFileError(ValueError):
    """A distilled-set file that cannot be used; the one-line message names file and problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}")


# ---------------------------------------------------------------------------- the set


@dataclass
class DistilledSet:
    """A distilled set ready for deployment: normalised float images and their labels."""

    images: torch.Tensor  # float32 (M, C, H, W), normalised (ZCA space when zca is set)
    labels: torch.Tensor  # int64 (M,)
    soft_labels: torch.Tensor | None  # float (M, K) as the file had them (DATM: logits), or None
    lr: float | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: tuple[str, ...]
    format: str  # one of FORMATS
    source: str | None = None
    zca: ZCA | None = None
    warnings: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def ipc_per_class(self) -> list[int]:
        """Images of each class, index k -> count."""
        return torch.bincount(self.labels.cpu(), minlength=self.num_classes).tolist()

    @property
    def ipc(self) -> int:
        """Images per class: the common count, or the smallest when classes are uneven."""
        counts = self.ipc_per_class()
        return min(counts) if counts else 0

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: str | torch.device) -> DistilledSet:
        soft = self.soft_labels.to(device) if self.soft_labels is not None else None
        zca = self.zca.to(device) if self.zca is not None else None
        return replace(
            self,
            images=self.images.to(device),
            labels=self.labels.to(device),
            soft_labels=soft,
            zca=zca,
        )

    def pixel_images(self) -> torch.Tensor:
        """Normalised images in pixel space (ZCA undone when the set lives in ZCA space)."""
        return self.zca.invert(self.images) if self.zca is not None else self.images

    def save_mtt(self, folder: str | Path) -> Path:
        """Write the MTT/DATM layout plus ladd_meta.json; load_distilled reads it back.

        images_best.pt (float32), labels_best.pt (int64, or the float soft labels DATM-style,
        with labels_hard.pt when the hard labels are not their argmax), lr_best.pt when lr.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _save_tensor(self.images.detach().float().cpu().contiguous(), folder / "images_best.pt")
        labels = self.labels.detach().long().cpu().contiguous()
        if self.soft_labels is not None:
            soft = self.soft_labels.detach().float().cpu().contiguous()
            _save_tensor(soft, folder / "labels_best.pt")
            if not torch.equal(soft.argmax(dim=1), labels):
                _save_tensor(labels, folder / "labels_hard.pt")
        else:
            _save_tensor(labels, folder / "labels_best.pt")
        if self.lr is not None:
            _save_tensor(torch.tensor(float(self.lr)), folder / "lr_best.pt")
        meta = {
            "ladd_meta_version": META_VERSION,
            "format": self.format,
            "source": self.source,
            "mean": list(self.mean),
            "std": list(self.std),
            "class_names": list(self.class_names),
            "zca": {"source": self.source, "eps": self.zca.eps} if self.zca is not None else None,
        }
        write_json(folder / META_FILE, meta)
        return folder

    def describe(self) -> dict:
        """A summary for `ladd info` and the dashboard."""
        counts = self.ipc_per_class()
        return {
            "format": self.format,
            "source": self.source,
            "count": len(self),
            "num_classes": self.num_classes,
            "classes": list(self.class_names),
            "ipc": self.ipc,
            "ipc_per_class": counts,
            "even": len(set(counts)) <= 1,
            "image_size": self.image_size,
            "channels": int(self.images.shape[1]),
            "label_kind": "soft" if self.soft_labels is not None else "hard",
            "value_min": float(self.images.min()) if len(self) else None,
            "value_max": float(self.images.max()) if len(self) else None,
            "lr": self.lr,
            "zca": self.zca is not None,
            "zca_eps": self.zca.eps if self.zca is not None else None,
            "mean": list(self.mean),
            "std": list(self.std),
            "warnings": list(self.warnings),
        }


def _save_tensor(tensor: torch.Tensor, path: Path) -> None:
    torch_save(path, tensor)


# ---------------------------------------------------------------------------- readers


@dataclass
class RawSet:
    """What a reader found, before defaults and checks. `origin` is the file to blame."""

    origin: Path
    images: torch.Tensor  # float (M, C, H, W) normalised, or uint8 pixels (image folders)
    labels: torch.Tensor | None = None  # (M,); None: class-major, inferred from the class count
    soft_labels: torch.Tensor | None = None  # float (M, K)
    lr: float | None = None
    format: str = "tensor"
    mean: tuple[float, ...] | None = None  # from the file's own metadata
    std: tuple[float, ...] | None = None
    class_names: tuple[str, ...] | None = None
    folder_names: tuple[str, ...] | None = None  # class folder names, when informative
    num_classes: int | None = None  # a lower bound the files imply
    source: str | None = None
    zca_source: str | None = None
    zca_eps: float = 0.1
    zca_recorded: bool = False  # the metadata says the images are in ZCA space
    labels_origin: Path | None = None  # the file to blame for label problems, when separate
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReadRequest:
    """The caller's arguments that a reader may need."""

    image_size: int | None = None


def safe_torch_load(path: Path) -> Any:
    """torch.load with weights_only=True; anything else (code, corruption) -> DistilledFileError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols are noise here
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # an untrusted file may fail in any way: report it as the file's
        text = str(err)
        # weights_only wraps every unpickling failure: name a global when torch saw one.
        named = re.search(r"GLOBAL (\S+)", text)
        if named:
            raise DistilledFileError(
                path,
                "refused: it holds pickled Python objects, not only tensors, and is loaded with "
                f"weights_only=True so they never run (it refers to {named.group(1)})",
            ) from err
        if "weights only load failed" in text.lower():
            op = re.search(r"Unsupported operand \d+", text)
            raise DistilledFileError(
                path,
                "refused: not a plain tensor file that loads with weights_only=True (corrupt, not "
                "a PyTorch file, or a pickle of other Python objects, which never run)"
                + (f" [{op.group(0)}]" if op else ""),
            ) from err
        first = (text.strip().splitlines() or [type(err).__name__])[0]
        raise DistilledFileError(
            path, f"cannot be read, truncated or corrupt ({first[:200]})"
        ) from err


class DistilledReader:
    """One file format. Subclasses say whether a path is theirs and read it (the hook).

    `load`: readers of complete sets (label-augmented files) return the finished set here;
    the default (None) means "read a RawSet, then let ladd.sets.loading check and finish it".
    """

    format: str = ""
    load: Any = None

    def detect(self, path: Path) -> bool:
        raise NotImplementedError

    def read(self, path: Path, request: ReadRequest) -> RawSet:
        raise NotImplementedError


_READERS: list[DistilledReader] = []  # filled by ladd.sets' reader modules, in priority order


def register_reader(reader: DistilledReader, *, first: bool = False) -> None:
    """Add a format; `first` gives it priority over every reader registered before."""
    if first:
        _READERS.insert(0, reader)
    else:
        _READERS.append(reader)


def find_reader(path: Path) -> DistilledReader:
    for reader in _READERS:
        if reader.detect(path):
            return reader
    raise DistilledFileError(
        path,
        "not a recognised distilled set: expected an MTT/GLaD/DATM run folder "
        "(images_best.pt + labels_best.pt), a .pt file, or a folder of class subfolders",
    )
