"""Distilled sets: reading other tools' files, checking them, and the random-real baseline.

    load_distilled("runs/mtt_cifar10_ipc10", source="cifar10", zca_source="cifar10")
    random_real("cifar10", ipc=10, seed=0)

Formats read (each by a DistilledReader; the first that recognises the path reads it):
    ladd         a folder written by DistilledSet.save_mtt (has ladd_meta.json)
    mtt / glad   a run folder: images_best.pt (float [C*IPC, 3, H, W], normalised), labels_best.pt
    datm         the same with labels_best.pt as float logits [N, C] and lr_best.pt (0-dim)
    tensor       one .pt file: a tensor [M, C, H, W], a dict with images/labels, or a pair
    imagefolder  one subfolder of images per class (SRe2L new000/..., RDED 00000/..., names)

Every .pt file is read with torch.load(weights_only=True): a pickle that carries code is
refused, never run. Every problem is a DistilledFileError whose one-line message names the file.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import torch

from ladd.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    IMAGENET_SUBSETS,
    ZCA,
    ImageDecodeError,
    ImageSet,
    SourceInfo,
    class_balanced_indices,
    fit_zca,
    load_source,
    normalise,
    source_info,
)
from ladd.data.cache import resolve_cache_dir
from ladd.data.decode import decode_images, is_archive, parse_layout, read_image_tree
from ladd.device import resolve_device

GLAD_MEAN = (0.4377, 0.4438, 0.4728)  # GLaD's ImageNet-subset images (with ImageNet's std)
META_FILE = "ladd_meta.json"
META_VERSION = 1
FORMATS = ("mtt", "datm", "glad", "tensor", "imagefolder", "ladd", "random_real")

_IMAGE_KEYS = ("images", "image", "imgs", "data", "x", "image_syn", "images_syn")
_LABEL_KEYS = ("labels", "label", "targets", "target", "y", "label_syn", "labels_syn")
_SOFT_KEYS = ("soft_labels", "logits")
_LR_KEYS = ("lr", "syn_lr", "lr_best")
_NUMBERED_CLASS = re.compile(r"(?:new|class)?_?(\d+)", re.IGNORECASE)


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
        tmp = folder / f".{META_FILE}.tmp"
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        tmp.replace(folder / META_FILE)
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
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(tensor, tmp)
    tmp.replace(path)


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
    """One file format. Subclasses say whether a path is theirs and read it (the hook)."""

    format: str = ""

    def detect(self, path: Path) -> bool:
        raise NotImplementedError

    def read(self, path: Path, request: ReadRequest) -> RawSet:
        raise NotImplementedError


def _tensor(value: Any, path: Path, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise DistilledFileError(path, f"{what} is a {type(value).__name__}, not a tensor")
    return value.detach()


def _split_labels(labels: torch.Tensor, path: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(hard labels, soft labels or None) from a labels tensor: int (M,), float (M,) whole
    numbers, or float (M, K) soft labels / logits (hard = argmax)."""
    if labels.ndim == 2 and labels.is_floating_point():
        if not torch.isfinite(labels).all():
            raise DistilledFileError(path, "soft labels contain NaN or Inf")
        return labels.argmax(dim=1), labels.float()
    if labels.ndim != 1:
        raise DistilledFileError(
            path, f"labels have shape {tuple(labels.shape)}; expected (M,) or soft (M, K)"
        )
    if labels.is_floating_point():
        if not torch.isfinite(labels).all() or not torch.equal(labels, labels.round()):
            raise DistilledFileError(path, "labels are floats that are not whole class indices")
    elif labels.dtype == torch.bool or labels.is_complex():
        raise DistilledFileError(path, f"labels have dtype {labels.dtype}; expected integers")
    return labels.long(), None


def _read_lr(value: Any, path: Path) -> float:
    if isinstance(value, (int, float)):
        lr = float(value)
    else:
        tensor = _tensor(value, path, "the learning rate")
        if tensor.numel() != 1:
            raise DistilledFileError(path, f"learning rate has shape {tuple(tensor.shape)}")
        lr = float(tensor.reshape(()))
    if not torch.isfinite(torch.tensor(lr)):
        raise DistilledFileError(path, f"learning rate is {lr}")
    return lr


class MttFolderReader(DistilledReader):
    """MTT / GLaD / DATM run folders: images_best.pt, labels_best.pt[, lr_best.pt]."""

    format = "mtt"

    def detect(self, path: Path) -> bool:
        return path.is_dir() and (path / "images_best.pt").is_file()

    def read(self, path: Path, request: ReadRequest) -> RawSet:
        images_path, labels_path = path / "images_best.pt", path / "labels_best.pt"
        if not labels_path.is_file():
            raise DistilledFileError(labels_path, "missing: images_best.pt needs labels_best.pt")
        images = _tensor(safe_torch_load(images_path), images_path, "images_best.pt")
        labels, soft = _split_labels(
            _tensor(safe_torch_load(labels_path), labels_path, "labels_best.pt"), labels_path
        )
        hard_path = path / "labels_hard.pt"
        if soft is not None and hard_path.is_file():
            labels, _ = _split_labels(
                _tensor(safe_torch_load(hard_path), hard_path, "labels"), hard_path
            )
        lr = None
        lr_path = path / "lr_best.pt"
        if lr_path.is_file():
            lr = _read_lr(safe_torch_load(lr_path), lr_path)
        raw = RawSet(images_path, images, labels, soft, lr, "datm" if soft is not None else "mtt")
        raw.num_classes = soft.shape[1] if soft is not None else None
        raw.labels_origin = labels_path
        return raw


class LaddFolderReader(MttFolderReader):
    """A folder written by DistilledSet.save_mtt: the MTT layout plus ladd_meta.json."""

    format = "ladd"

    def detect(self, path: Path) -> bool:
        return path.is_dir() and (path / META_FILE).is_file()

    def read(self, path: Path, request: ReadRequest) -> RawSet:
        meta_path = path / META_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as err:
            raise DistilledFileError(meta_path, f"unreadable metadata ({err})") from err
        raw = super().read(path, request)
        raw.format = str(meta.get("format") or "ladd")
        raw.source = meta.get("source")
        try:
            if meta.get("mean") is not None:
                raw.mean = tuple(float(v) for v in meta["mean"])
                raw.std = tuple(float(v) for v in meta["std"])
            if meta.get("class_names") is not None:
                raw.class_names = tuple(str(v) for v in meta["class_names"])
            zca = meta.get("zca")
            if zca:
                raw.zca_recorded = True
                raw.zca_source = zca.get("source") or raw.source
                raw.zca_eps = float(zca.get("eps", 0.1))
        except (KeyError, TypeError, ValueError) as err:
            raise DistilledFileError(meta_path, f"malformed metadata ({err})") from err
        return raw


class TensorFileReader(DistilledReader):
    """One .pt/.pth file: a tensor, a dict with images and labels, or an (images, labels) pair."""

    format = "tensor"

    def detect(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() in (".pt", ".pth")

    def read(self, path: Path, request: ReadRequest) -> RawSet:
        obj = safe_torch_load(path)
        if isinstance(obj, torch.Tensor):
            return RawSet(path, obj.detach())
        if isinstance(obj, dict):
            return self._from_dict(obj, path)
        if isinstance(obj, (tuple, list)) and len(obj) in (2, 3):
            images = _tensor(obj[0], path, "item 0 (images)")
            labels, soft = _split_labels(_tensor(obj[1], path, "item 1 (labels)"), path)
            lr = _read_lr(obj[2], path) if len(obj) == 3 else None
            return RawSet(path, images, labels, soft, lr)
        raise DistilledFileError(
            path,
            f"holds a {type(obj).__name__}; expected a tensor [M, C, H, W], a dict with "
            "images and labels, or an (images, labels) pair",
        )

    def _from_dict(self, obj: dict, path: Path) -> RawSet:
        def pick(keys: Sequence[str]) -> Any:
            return next((obj[k] for k in keys if k in obj), None)

        images = pick(_IMAGE_KEYS)
        if images is None:
            raise DistilledFileError(
                path,
                f"dict has no images (looked for {', '.join(_IMAGE_KEYS)}; found {list(obj)[:8]})",
            )
        raw = RawSet(path, _tensor(images, path, "images"))
        labels = pick(_LABEL_KEYS)
        if labels is not None:
            raw.labels, raw.soft_labels = _split_labels(_tensor(labels, path, "labels"), path)
        soft = pick(_SOFT_KEYS)
        if soft is not None:
            hard, raw.soft_labels = _split_labels(_tensor(soft, path, "soft labels"), path)
            if raw.soft_labels is None:
                raise DistilledFileError(path, "soft labels must be float (M, K)")
            raw.labels = hard if raw.labels is None else raw.labels
        lr = pick(_LR_KEYS)
        if lr is not None:
            raw.lr = _read_lr(lr, path)
        if raw.soft_labels is not None:
            raw.num_classes = raw.soft_labels.shape[1]
        return raw


class ImageFolderReader(DistilledReader):
    """Image files in one subfolder per class (a folder, .zip or .tar archive)."""

    format = "imagefolder"

    def detect(self, path: Path) -> bool:
        if path.is_file():
            return is_archive(path)
        return path.is_dir() and any(
            child.is_dir() and not child.name.startswith(".") for child in path.iterdir()
        )

    def read(self, path: Path, request: ReadRequest) -> RawSet:
        try:
            tree = read_image_tree(path)
            layout = parse_layout(tree.paths, path)
        except (ImageDecodeError, ValueError) as err:
            raise DistilledFileError(path, str(err).removeprefix(f"{path}: ")) from err
        notes = []
        if layout.has_splits:
            notes.append("found train/ and test/ folders: read train/ only")
        paths, labels = layout.items("train")
        folder_names = layout.classes
        numbered = [_NUMBERED_CLASS.fullmatch(name) for name in folder_names]
        if all(numbered):  # new000 / 00000 / class_7: the folder names are class indices
            index_of = {
                name: int(m.group(1)) for name, m in zip(folder_names, numbered, strict=True)
            }
            labels = [index_of[folder_names[k]] for k in labels]
            names = None
            num_classes = max(index_of.values()) + 1
        else:
            names, num_classes = folder_names, len(folder_names)
        try:
            images = decode_images(
                [tree.files[p] for p in paths], request.image_size, names=paths, large=False
            )
        except ImageDecodeError as err:
            raise DistilledFileError(path, str(err)) from err
        raw = RawSet(path, images, torch.tensor(labels, dtype=torch.long), format=self.format)
        raw.folder_names, raw.num_classes, raw.notes = names, num_classes, notes
        return raw


_READERS: list[DistilledReader] = [
    LaddFolderReader(),
    MttFolderReader(),
    TensorFileReader(),
    ImageFolderReader(),
]


def register_reader(reader: DistilledReader, *, first: bool = True) -> None:
    """Add a format (e.g. ladd.dense's label-augmented files); `first` gives it priority."""
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


# ---------------------------------------------------------------------------- loading


def _source_of(name: str | None, image_size: int, cache_dir) -> SourceInfo | None:
    if name is None:
        return None
    return source_info(name, image_size, cache_dir=cache_dir)


def load_distilled(
    path: str | Path,
    *,
    source: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
    zca_source: str | ImageSet | None = None,
    image_size: int | None = None,
    num_classes: int | None = None,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    format: str | None = None,
) -> DistilledSet:
    """Read a distilled set in any known format, check it, and fill in what the file lacks.

    Normalisation: the file's own (ladd_meta.json), else mean/std, else the source's, else an
    error asking for them (image folders fall back to ImageNet's with a warning). Class names:
    class_names, else the file's, else the source's, else the folder names, else "class k".
    zca_source: the images are in ZCA space of that source's train set (MTT/DATM on CIFAR).
    format: relabel the set, e.g. "glad" (then an ImageNet subset defaults to GLaD's mean).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DistilledFileError(path, "no such file or folder")
    if path.is_file() and path.name == "images_best.pt":
        path = path.parent  # pointed at the images of a run folder: read the folder
    raw = find_reader(path).read(path, ReadRequest(image_size=image_size))
    images = raw.images

    def fail(problem: str, at: Path | None = None) -> NoReturn:
        raise DistilledFileError(at or raw.origin, problem)

    # -- shape and values
    if images.ndim != 4:
        fail(f"images have {images.ndim} dimensions {tuple(images.shape)}; expected 4 (M, C, H, W)")
    m, c, h, w = images.shape
    if m == 0:
        fail("the set is empty (0 images)")
    if h != w:
        fail(f"images are {h}x{w}; expected square images")
    if image_size is not None and h != image_size:
        fail(f"images are {h} px; expected {image_size} px")
    if c not in (1, 3):
        fail(f"images have {c} channels; expected 3 (or 1)")
    pixels = images.dtype == torch.uint8 and raw.format == "imagefolder"
    if not pixels and not images.is_floating_point():
        fail(f"images have dtype {images.dtype}; expected normalised float images")
    if not pixels and not torch.isfinite(images).all():
        fail("images contain NaN or Inf")

    # -- the source, normalisation and class names
    source_name = source or raw.source
    info = _source_of(source_name, h, cache_dir)
    found_warnings = list(raw.notes)
    fmt = format or raw.format
    if raw.mean is not None:
        set_mean, set_std = raw.mean, raw.std
        if mean is not None and tuple(mean) != tuple(raw.mean):
            found_warnings.append(f"ignored the given mean: {META_FILE} records {raw.mean}")
    elif mean is not None or std is not None:
        if mean is None or std is None:
            fail("give both mean and std (or a source)")
        set_mean, set_std = tuple(mean), tuple(std)
    elif fmt == "glad" and info is not None and info.name in IMAGENET_SUBSETS:
        set_mean, set_std = GLAD_MEAN, info.std
    elif info is not None:
        set_mean, set_std = info.mean, info.std
    elif pixels:
        set_mean, set_std = IMAGENET_MEAN, IMAGENET_STD
        found_warnings.append("no source or mean/std given: normalised with ImageNet statistics")
    else:
        fail(
            "the file does not record its normalisation: pass a source (--source) "
            "or its mean and std (--mean/--std)"
        )
    set_mean, set_std = tuple(float(v) for v in set_mean), tuple(float(v) for v in set_std)
    if len(set_mean) != c or len(set_std) != c:
        fail(f"mean/std have {len(set_mean)} values for {c}-channel images")
    images = normalise(images, set_mean, set_std) if pixels else images.float()

    # -- the class count and labels
    k = _class_count(raw, num_classes, class_names, info)
    labels, soft = raw.labels, raw.soft_labels
    if labels is None:
        if m % k:
            fail(f"{m} images do not split evenly into {k} classes, and the file has no labels")
        labels = torch.arange(k).repeat_interleave(m // k)  # class-major, as MTT saves them
    label_file = raw.labels_origin or raw.origin
    if labels.shape[0] != m:
        fail(f"{m} images but {labels.shape[0]} labels", at=label_file)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        fail(
            f"labels range over {int(labels.min())}..{int(labels.max())}, outside [0, {k})",
            at=label_file,
        )
    if soft is not None and soft.shape[1] != k:
        fail(f"soft labels have {soft.shape[1]} columns for {k} classes", at=label_file)

    names = (
        tuple(class_names)
        if class_names is not None
        else raw.class_names
        or (info.class_names if info is not None and info.num_classes == k else None)
        or raw.folder_names
        or tuple(f"class {i}" for i in range(k))
    )
    if len(names) != k:
        fail(f"{len(names)} class names for {k} classes")

    # -- even classes, ZCA
    counts = torch.bincount(labels, minlength=k).tolist()
    if len(set(counts)) > 1:
        message = (
            f"{raw.origin}: uneven classes, {min(counts)} to {max(counts)} images per class "
            f"({counts if k <= 20 else 'see ipc_per_class'})"
        )
        warnings.warn(message, stacklevel=2)
        found_warnings.append(message)
    if raw.lr is not None and raw.lr <= 0:
        found_warnings.append(f"learning rate {raw.lr} is not positive")

    zca = None
    zca_from = zca_source if zca_source is not None else raw.zca_source
    if zca_from is None and raw.zca_recorded:
        fail("images are in ZCA space of an unrecorded source: pass zca_source")
    if zca_from is not None:
        try:
            zca = fit_zca_for(
                zca_from, eps=raw.zca_eps, image_size=h, data_root=data_root, cache_dir=cache_dir
            )
        except (ValueError, OSError) as err:
            fail(f"images are in ZCA space but the whitening could not be fitted ({err})")
        if zca.num_features != c * h * w:
            fail(f"ZCA was fitted on {zca.num_features} values per image, not {c * h * w}")

    return DistilledSet(
        images=images.contiguous(),
        labels=labels.long(),
        soft_labels=soft,
        lr=raw.lr,
        mean=set_mean,
        std=set_std,
        class_names=tuple(str(n) for n in names),
        format=fmt,
        source=info.name if info is not None else source_name,
        zca=zca,
        warnings=tuple(found_warnings),
    )


def _class_count(raw: RawSet, num_classes, class_names, info: SourceInfo | None) -> int:
    """The number of classes: the caller's word, else the source's, else what the files imply."""
    if num_classes is not None:
        return int(num_classes)
    if class_names is not None:
        return len(class_names)
    if raw.class_names is not None:
        return len(raw.class_names)
    if info is not None:
        return info.num_classes
    if raw.num_classes is not None:
        return int(raw.num_classes)
    if raw.labels is not None and raw.labels.numel():
        return int(raw.labels.max()) + 1
    raise DistilledFileError(
        raw.origin,
        "a bare image tensor has no labels: pass the class count (num_classes) or a source "
        "so that class-major labels can be inferred",
    )


# ---------------------------------------------------------------------------- ZCA, baselines


def fit_zca_for(
    source: str | ImageSet,
    *,
    eps: float = 0.1,
    image_size: int | None = None,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    device: str | torch.device | None = None,
) -> ZCA:
    """ZCA fitted on a source's whole normalised train set, cached in cache_dir.

    The cache key includes a digest of the train pixels, so CIFAR-10 read from torchvision
    and from the JPEG archive (slightly different pixels) get different whitenings.
    """
    train = (
        source
        if isinstance(source, ImageSet)
        else load_source(source, "train", data_root=data_root, cache_dir=cache_dir)
    )
    digest = hashlib.sha1(train.images[:: max(1, len(train) // 512)].cpu().numpy().tobytes())
    digest.update(f"{tuple(train.images.shape)}|{eps}".encode())
    name = re.sub(r"[^A-Za-z0-9]+", "-", train.info.name)[-40:]
    cache_file = resolve_cache_dir(cache_dir) / f"zca-{name}-{digest.hexdigest()[:12]}.safetensors"
    if cache_file.is_file():
        try:
            return ZCA.load(cache_file)
        except (OSError, KeyError, ValueError) as err:
            warnings.warn(f"refitting ZCA: unreadable cache {cache_file} ({err})", stacklevel=2)
    device = resolve_device(device if device is not None else "auto")  # a GPU takes seconds
    zca = fit_zca(train.normalised(device=device), eps=eps)
    if not isinstance(source, ImageSet):
        zca.save(cache_file)
    return zca


def random_real(
    source: str | ImageSet,
    ipc: int,
    seed: int = 0,
    *,
    zca: ZCA | None = None,
    **load_kwargs: Any,
) -> DistilledSet:
    """The random-real baseline: `ipc` seeded-random train images of each class, class-major.

    Uses its own torch.Generator (the global RNG is untouched). With `zca`, the images are
    whitened so that the set goes through the same pipeline as a ZCA-space distilled set.
    """
    if ipc < 1:
        raise ValueError(f"ipc must be at least 1, got {ipc}")
    train = source if isinstance(source, ImageSet) else load_source(source, "train", **load_kwargs)
    info = train.info
    picks = class_balanced_indices(train.labels, ipc, info.num_classes, seed=seed, strict=True)
    chosen = train.subset(picks)
    images = chosen.normalised()
    if zca is not None:
        images = zca.apply(images)
    return DistilledSet(
        images=images,
        labels=chosen.labels.long(),
        soft_labels=None,
        lr=None,
        mean=info.mean,
        std=info.std,
        class_names=info.class_names,
        format="random_real",
        source=info.name,
        zca=zca,
    )


__all__ = [
    "FORMATS",
    "GLAD_MEAN",
    "DistilledFileError",
    "DistilledReader",
    "DistilledSet",
    "fit_zca_for",
    "load_distilled",
    "random_real",
    "register_reader",
    "safe_torch_load",
]
