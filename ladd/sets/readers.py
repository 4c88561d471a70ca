"""The readers of other tools' distilled-set files (each a DistilledReader, registered here).

    ladd         a folder written by DistilledSet.save_mtt (has ladd_meta.json)
    mtt / glad   a run folder: images_best.pt (float [C*IPC, 3, H, W], normalised), labels_best.pt
    datm         the same with labels_best.pt as float logits [N, C] and lr_best.pt (0-dim)
    tensor       one .pt file: a tensor [M, C, H, W], a dict with images/labels, or a pair
    imagefolder  one subfolder of images per class (SRe2L new000/..., RDED 00000/..., names)

Every .pt file is read with torch.load(weights_only=True) (`safe_torch_load`): a pickle that
carries code is refused, never run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ladd.data import ImageDecodeError
from ladd.data.decode import decode_images, is_archive, parse_layout, read_image_tree
from ladd.sets.base import (
    META_FILE,
    DistilledFileError,
    DistilledReader,
    RawSet,
    ReadRequest,
    register_reader,
    safe_torch_load,
)

_IMAGE_KEYS = ("images", "image", "imgs", "data", "x", "image_syn", "images_syn")
_LABEL_KEYS = ("labels", "label", "targets", "target", "y", "label_syn", "labels_syn")
_SOFT_KEYS = ("soft_labels", "logits")
_LR_KEYS = ("lr", "syn_lr", "lr_best")
_NUMBERED_CLASS = re.compile(r"(?:new|class)?_?(\d+)", re.IGNORECASE)


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


for _reader in (LaddFolderReader(), MttFolderReader(), TensorFileReader(), ImageFolderReader()):
    register_reader(_reader)
