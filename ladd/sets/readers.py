"""The readers of other tools' distilled-set files (each a DistilledReader, registered here).

    ladd         a folder written by DistilledSet.save_mtt (has ladd_meta.json)
    mtt / glad   a run folder: images_best.pt (float [C*IPC, 3, H, W]), labels_best.pt (int64)
    datm         the same with labels_best.pt as learned logits [N, C] and lr_best.pt (0-dim)
    ddranking    a DD-Ranking folder: images.pt [, labels.pt (DATM logits), lr.pt]
    dc           a DC/DSA/DM (or GLaD) result file {'data': [[images, labels], ...], 'accs_all_exps'}
    tensor       any torch file: a tensor [M, C, H, W], a dict with images/labels, or a pair;
                 a safetensors file of such tensors
    imagefolder  one subfolder of images per class (SRe2L new000/..., RDED 00000/..., names)

Files are recognised by their bytes (torch zip or pickle, safetensors header), never by a name
the user chose. Every torch file is read with torch.load(weights_only=True) plus numpy's numeric
scalars on an allow-list (`safe_torch_load`): a pickle that carries code is refused, never run.
Two kinds of files are recognised only to say what they are: MTT's images_zca_<it>.pt (the
inverse-ZCA copy saved for viewing, read as [0, 1] pixels) and SRe2L's FKD soft-label batches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ladd.data import ImageDecodeError
from ladd.data.decode import decode_images, is_archive, parse_layout, read_image_tree
from ladd.data.zca import ZCA_SPACE
from ladd.limits import InputLimitError, current_limits
from ladd.sets.base import (
    META_FILE,
    DistilledFileError,
    DistilledReader,
    RawSet,
    ReadRequest,
    is_torch_file,
    plain,
    read_safetensors_header,
    register_reader,
    safe_torch_load,
)
from ladd.sets.conventions import PIXELS01

_IMAGE_KEYS = ("images", "image", "imgs", "data", "x", "image_syn", "images_syn")
_LABEL_KEYS = ("labels", "label", "targets", "target", "y", "label_syn", "labels_syn")
_SOFT_KEYS = ("soft_labels", "logits")
_LR_KEYS = ("lr", "syn_lr", "lr_best")
_NUMBERED_CLASS = re.compile(r"(?:new|class)?_?(\d+)", re.IGNORECASE)
_ZCA_VIEW = re.compile(r"images_zca_(\d+|best)\.pt")


_CHECKABLE_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _tensor(value: Any, path: Path, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise DistilledFileError(path, f"{what} is a {type(value).__name__}, not a tensor")
    if value.layout != torch.strided or value.is_quantized:
        raise DistilledFileError(path, f"{what} is a {value.layout} tensor; expected a dense one")
    return value.detach()


@dataclass
class _Labels:
    """A labels tensor read: hard labels, soft labels (or None), and what to tell the user."""

    hard: torch.Tensor  # int64 (M,)
    soft: torch.Tensor | None  # float (M, K)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _split_labels(
    labels: torch.Tensor, path: Path, *, learned: bool = False, class_major: bool = False
) -> _Labels:
    """A labels tensor: int (M,), float (M,) whole numbers, or float (M, K) soft labels /
    logits, whose hard labels follow `hard_labels` (the one rule every reader uses)."""
    if labels.is_floating_point() and labels.dtype not in _CHECKABLE_FLOATS:
        labels = labels.float()  # float8 has no isfinite: checked (exactly) as float32
    if labels.ndim == 2 and labels.is_floating_point():
        if not torch.isfinite(labels).all():
            raise DistilledFileError(path, "soft labels contain NaN or Inf")
        if labels.shape[1] == 0:
            raise DistilledFileError(path, "soft labels have 0 columns")
        soft = labels.float()
        hard, notes, warns = hard_labels(soft, path.name, learned=learned, class_major=class_major)
        return _Labels(hard, soft, notes, warns)
    if labels.ndim != 1:
        raise DistilledFileError(
            path, f"labels have shape {tuple(labels.shape)}; expected (M,) or soft (M, K)"
        )
    if labels.is_floating_point():
        if not torch.isfinite(labels).all() or not torch.equal(labels, labels.round()):
            raise DistilledFileError(path, "labels are floats that are not whole class indices")
    elif labels.dtype == torch.bool or labels.is_complex():
        raise DistilledFileError(path, f"labels have dtype {labels.dtype}; expected integers")
    return _Labels(labels.long(), None)


def hard_labels(
    soft: torch.Tensor, what: str, *, learned: bool = False, class_major: bool = False
) -> tuple[torch.Tensor, list[str], list[str]]:
    """(hard labels (M,), notes, warnings) of float (M, K) soft labels that come without hard
    labels: one rule for every reader, and a note or a warning saying which part applied.

    - one-hot rows (in any reader): their class;
    - `learned` (the float labels of an MTT/DATM run folder: DATM's learned logits) whose
      argmax agrees with the class-major slots in most rows: the slot each row was initialised
      in, as DATM assigns them (distill/DATM.py:133 label_syn = [0,0,..,1,1,..], :324 the
      logits start there), not the argmax of the rows that drifted;
    - `class_major` (DD-Ranking's labels.pt): the slots whatever the argmax says, as
      DD-Ranking's evaluation assigns them (ddranking/metrics/soft_label.py:505-506), with a
      warning when most rows' argmax contradicts them;
    - else the argmax, with a warning when it contradicts the slots of `learned` labels in most
      rows (they are not in DATM's order) or when rows have tied maxima (the first is taken).
    """
    m, k = soft.shape
    argmax = soft.argmax(dim=1)  # (M,) the first of tied maxima
    notes: list[str] = []
    warns: list[str] = []
    if bool(((soft == 0) | (soft == 1)).all()) and bool((soft.sum(dim=1) == 1).all()):
        notes.append(f"hard labels: the class of each one-hot row of {what}")
        return argmax, notes, warns
    if (learned or class_major) and m % k == 0:
        slots = torch.arange(k).repeat_interleave(m // k)  # (M,) class-major
        drifted = int((argmax != slots).sum())
        if class_major and 2 * drifted >= m:
            warns.append(
                f"the argmax of {what} contradicts the class-major slots in {drifted} of {m} "
                "rows; the hard labels are the slots, as DD-Ranking assigns them "
                "(soft_label.py:505-506): check that the images are saved class by class"
            )
            return slots, notes, warns
        if 2 * drifted < m:
            note = (
                f"hard labels follow the class-major slots of the {k}x{m // k} learned labels "
                f"in {what} (as DATM saves them), not their argmax"
            )
            if drifted:
                note += f"; {drifted} of {m} rows' argmax lies in another class"
            notes.append(note)
            return slots, notes, warns
        warns.append(
            f"the argmax of {what} contradicts DATM's class-major slots in {drifted} of {m} "
            "rows, so these are not learned logits in DATM's order: hard labels are the argmax"
        )
    elif learned or class_major:
        notes.append(
            f"the {m} rows of {what} do not split evenly into {k} class slots: hard labels are "
            "their argmax"
        )
    else:
        notes.append(f"hard labels: the argmax of the soft labels in {what}")
    top2 = soft.topk(min(2, k), dim=1).values  # (M, 2)
    tied = int((top2[:, 0] == top2[:, -1]).sum()) if k > 1 else 0
    if tied:
        warns.append(
            f"{tied} of {m} rows of {what} have no single largest value: their hard label is "
            "the first of the tied classes"
        )
    return argmax, notes, warns


def _read_lr(value: Any, path: Path) -> float:
    value = plain(value)
    if isinstance(value, bool):
        raise DistilledFileError(path, "learning rate is a bool")
    if isinstance(value, (int, float)):
        lr = float(value)
    else:
        tensor = _tensor(value, path, "the learning rate")
        if tensor.numel() != 1 or tensor.is_complex():
            raise DistilledFileError(
                path, f"learning rate has shape {tuple(tensor.shape)} ({tensor.dtype})"
            )
        lr = float(tensor.reshape(()).double())
    if not torch.isfinite(torch.tensor(lr)):
        raise DistilledFileError(path, f"learning rate is {lr}")
    return lr


def _load_tensor(path: Path, what: str) -> torch.Tensor:
    return _tensor(safe_torch_load(path), path, what)


# ---------------------------------------------------------------------------- run folders


class MttFolderReader(DistilledReader):
    """MTT / GLaD / DATM run folders: images_best.pt, labels_best.pt[, lr_best.pt].

    MTT writes them in distill.py:242-243 (image_syn, label_syn int64 class-major), DATM in
    distill/DATM.py:402-404 (label_syn: learned logits; syn_lr: 0-dim tensor). With --zca both
    also write images_zca_<it>.pt (MTT distill.py:266-271, DATM DATM.py:427-431): its presence
    says images_best.pt lives in ZCA space.
    """

    format = "mtt"
    slots = True  # float labels here are DATM's learned logits (`hard_labels`' learned rule)

    def detect(self, path: Path) -> bool:
        return path.is_dir() and (path / "images_best.pt").is_file()

    def read(self, path: Path, request: ReadRequest) -> RawSet:
        images_path, labels_path = path / "images_best.pt", path / "labels_best.pt"
        if not labels_path.is_file():
            raise DistilledFileError(labels_path, "missing: images_best.pt needs labels_best.pt")
        images = _load_tensor(images_path, "images_best.pt")
        read = _split_labels(
            _load_tensor(labels_path, "labels_best.pt"), labels_path, learned=self.slots
        )
        labels, soft = read.hard, read.soft
        hard_path = path / "labels_hard.pt"
        if soft is not None and hard_path.is_file():  # LADD's own: the hard labels beside them
            labels = _split_labels(_load_tensor(hard_path, "labels_hard.pt"), hard_path).hard
            read.notes, read.warnings = [], []
        lr = None
        lr_path = path / "lr_best.pt"
        if lr_path.is_file():
            lr = _read_lr(safe_torch_load(lr_path), lr_path)
        raw = RawSet(images_path, images, labels, soft, lr, "datm" if soft is not None else "mtt")
        raw.num_classes = soft.shape[1] if soft is not None else None
        raw.labels_origin = labels_path
        raw.notes, raw.warnings = read.notes, read.warnings
        views = sorted(p.name for p in path.glob("images_zca_*.pt"))
        if views:
            raw.zca_evidence = (
                f"the folder holds {views[-1]}, which MTT and DATM write only when run with --zca"
            )
        return raw


class LaddFolderReader(MttFolderReader):
    """A folder written by DistilledSet.save_mtt: the MTT layout plus ladd_meta.json."""

    format = "ladd"
    slots = False  # our own soft labels come with labels_hard.pt (else: argmax, as v1 wrote)

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
        raw.zca_evidence = None  # the metadata says what the space is
        raw.format = str(meta.get("format") or "ladd")
        try:
            raw.source = None if meta.get("source") is None else str(meta["source"])
            if meta.get("mean"):
                raw.mean = tuple(float(v) for v in meta["mean"])
                raw.std = tuple(float(v) for v in meta["std"])
                raw.normalisation = f"recorded in {META_FILE}"
            if meta.get("test_mean"):
                raw.test_mean = tuple(float(v) for v in meta["test_mean"])
                raw.test_std = tuple(float(v) for v in meta["test_std"])
                raw.test_normalisation = str(meta.get("test_normalisation") or "recorded")
            if meta.get("class_names") is not None:
                if not isinstance(meta["class_names"], list):
                    raise TypeError("class_names is not a list")
                current_limits().check_classes(len(meta["class_names"]), "its class_names")
                raw.class_names = tuple(str(v) for v in meta["class_names"])
            zca = meta.get("zca")
            if zca:
                if not isinstance(zca, dict):
                    raise TypeError("zca is not a map")
                if zca.get("space") != ZCA_SPACE:
                    raise DistilledFileError(
                        meta_path,
                        "written by an older LADD whose ZCA was fitted on normalised images, "
                        "not on [0, 1] pixels as MTT/DATM fit it: make the set again",
                    )
                raw.zca_recorded = True
                raw.zca_source = zca.get("source") or raw.source
                raw.zca_eps = float(zca.get("eps", 0.1))
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, DistilledFileError):
                raise
            if isinstance(err, InputLimitError):
                raise DistilledFileError(meta_path, str(err)) from None
            raise DistilledFileError(meta_path, f"malformed metadata ({err})") from err
        return raw


class DDRankingFolderReader(DistilledReader):
    """DD-Ranking's folder: images.pt, and labels.pt (soft labels, DATM logits) / lr.pt when the
    method has them (demo_soft.py:14-16 loads exactly these three)."""

    format = "ddranking"

    def detect(self, path: Path) -> bool:
        return path.is_dir() and (path / "images.pt").is_file()

    def read(self, path: Path, request: ReadRequest) -> RawSet:
        images_path, labels_path, lr_path = (path / n for n in ("images.pt", "labels.pt", "lr.pt"))
        raw = RawSet(images_path, _load_tensor(images_path, "images.pt"), format=self.format)
        if labels_path.is_file():
            read = _split_labels(
                _load_tensor(labels_path, "labels.pt"), labels_path, learned=True, class_major=True
            )
            raw.labels_origin = labels_path
            if read.soft is not None:
                raw.soft_labels, raw.num_classes = read.soft, read.soft.shape[1]
            raw.notes += read.notes
            raw.warnings += read.warnings
            raw.labels = read.hard
        else:
            raw.notes.append(
                "no labels.pt: hard labels are class-major, as DD-Ranking assigns them"
            )
        if lr_path.is_file():
            raw.lr = _read_lr(safe_torch_load(lr_path), lr_path)
        return raw


# ---------------------------------------------------------------------------- single files


def _is_fkd_batch(obj: Any) -> bool:
    """SRe2L's relabel batch: [coords (B, 4), flip (B,), mix_index, mix_lam, mix_bbox, output]."""
    return (
        isinstance(obj, (list, tuple))
        and len(obj) == 6
        and isinstance(obj[0], torch.Tensor)
        and obj[0].ndim == 2
        and obj[0].shape[-1] == 4
        and isinstance(obj[5], torch.Tensor)
        and obj[5].ndim == 2
    )


FKD_EXPLANATION = (
    "SRe2L's FKD soft labels (generate_soft_label.py:222-224 saves [crop coords, flip, mix "
    "index, mix ratio, mix box, teacher output] per batch): each row is the teacher's output on "
    "one random crop of an image drawn by a seeded RandomSampler (--fkd-seed), not on a stored "
    "image, so they cannot be attached to the images as a set; load the image folder (new000/...) "
    "and give this folder as its soft-label store (--soft-labels, ladd.stores) to train as SRe2L "
    "does"
)


class FkdFolderReader(DistilledReader):
    """SRe2L's FKD_soft_label folder (epoch_<e>/batch_<i>.tar): recognised to explain it."""

    format = "fkd"

    def detect(self, path: Path) -> bool:
        if not path.is_dir():
            return False
        first = next(path.glob("batch_*.tar"), None) or next(path.glob("epoch_*/batch_*.tar"), None)
        return first is not None and is_torch_file(first)

    def read(self, path: Path, request: ReadRequest) -> RawSet:
        raise DistilledFileError(path, FKD_EXPLANATION)


class TorchFileReader(DistilledReader):
    """One torch.save file, whatever its name: a tensor [M, C, H, W], a dict with images and
    labels, an (images, labels[, lr]) pair, or a DC/DSA/DM result file."""

    format = "tensor"

    def detect(self, path: Path) -> bool:
        return path.is_file() and is_torch_file(path)

    def read(self, path: Path, request: ReadRequest) -> RawSet:
        obj = safe_torch_load(path)
        if isinstance(obj, torch.Tensor):
            raw = RawSet(path, obj.detach())
            if _ZCA_VIEW.fullmatch(path.name):
                self._zca_view(raw)
            return raw
        if isinstance(obj, dict) and "data" in obj and "accs_all_exps" in obj:
            return _dc_result(obj, path, request)
        if _is_fkd_batch(obj):
            raise DistilledFileError(path, FKD_EXPLANATION)
        if isinstance(obj, dict):
            return _from_dict(obj, path)
        if isinstance(obj, (tuple, list)) and len(obj) in (2, 3):
            images = _tensor(obj[0], path, "item 0 (images)")
            read = _split_labels(_tensor(obj[1], path, "item 1 (labels)"), path)
            lr = _read_lr(obj[2], path) if len(obj) == 3 else None
            raw = RawSet(path, images, read.hard, read.soft, lr)
            raw.notes, raw.warnings = read.notes, read.warnings
            return raw
        raise DistilledFileError(
            path,
            f"holds a {type(obj).__name__}; expected a tensor [M, C, H, W], a dict with "
            "images and labels, an (images, labels) pair or a DC/DSA/DM result file",
        )

    @staticmethod
    def _zca_view(raw: RawSet) -> None:
        """MTT's images_zca_<it>.pt: zca_trans.inverse_transform(image_syn), [0, 1] pixels."""
        raw.format = "mtt"
        raw.mean, raw.std = PIXELS01.mean, PIXELS01.std
        raw.normalisation = "[0, 1] pixels (MTT/DATM's images_zca_<it>.pt, ZCA undone)"
        raw.pixels01 = True
        raw.notes.append(
            f"{raw.origin.name} is the inverse-ZCA copy MTT/DATM save for viewing (distill.py:"
            "266-271); the set they train and evaluate is images_best.pt in ZCA space: load the "
            "run folder with --zca --source NAME (with --zca these pixels are whitened again)"
        )


def _dc_result(obj: dict, path: Path, request: ReadRequest) -> RawSet:
    """DC / DSA / DM (DatasetCondensation main.py:224-225, main_DM.py:203-204) and GLaD
    (distill_mtt.py:368-369): {'data': [[image_syn, label_syn] per experiment],
    'accs_all_exps': {model: [accuracy per evaluation]}}."""
    data = obj["data"]
    if not isinstance(data, (list, tuple)) or not data:
        raise DistilledFileError(path, "DC/DSA/DM result file holds no experiments ('data')")
    n = len(data)
    k = n - 1 if request.experiment is None else int(request.experiment)
    if not -n <= k < n:
        raise DistilledFileError(
            path, f"experiment {k} does not exist: the file holds {n} (0..{n - 1})"
        )
    k %= n
    item = data[k]
    if not isinstance(item, (list, tuple)) or len(item) < 2:
        raise DistilledFileError(path, f"experiment {k} is not an [images, labels] pair")
    images = _tensor(item[0], path, f"experiment {k}'s images")
    read = _split_labels(_tensor(item[1], path, f"experiment {k}'s labels"), path)
    raw = RawSet(path, images, read.hard, read.soft, format="dc")
    raw.notes, raw.warnings = read.notes, read.warnings
    which = "the last" if request.experiment is None else "chosen"
    raw.notes.append(
        f"DC/DSA/DM result file: experiment {k} of {n} (0-based, {which}; --experiment K picks "
        "another)"
    )
    accs = obj.get("accs_all_exps")
    if isinstance(accs, dict):
        parts = []
        for model, values in list(accs.items())[:8]:
            values = [plain(v) for v in values] if isinstance(values, (list, tuple)) else []
            nums = [float(v) for v in values if isinstance(v, (int, float))]
            if nums:
                mean = sum(nums) / len(nums)
                spread = (sum((v - mean) ** 2 for v in nums) / len(nums)) ** 0.5
                parts.append(f"{model} {mean:.2%} +- {spread:.2%} ({len(nums)} evaluations)")
        if parts:
            raw.notes.append("recorded accuracies: " + "; ".join(parts))
    return raw


def _from_dict(obj: dict, path: Path) -> RawSet:
    def pick(keys: Sequence[str]) -> Any:
        return next((obj[k] for k in keys if k in obj), None)

    images = pick(_IMAGE_KEYS)
    if images is None:
        found = [str(k)[:30] for k in list(obj)[:8]]
        raise DistilledFileError(
            path, f"dict has no images (looked for {', '.join(_IMAGE_KEYS)}; found {found})"
        )
    raw = RawSet(path, _tensor(images, path, "images"))
    labels = pick(_LABEL_KEYS)
    if labels is not None:
        read = _split_labels(_tensor(labels, path, "labels"), path)
        raw.labels, raw.soft_labels = read.hard, read.soft
        raw.notes, raw.warnings = read.notes, read.warnings
    soft = pick(_SOFT_KEYS)
    if soft is not None:
        read = _split_labels(_tensor(soft, path, "soft labels"), path)
        if read.soft is None:
            raise DistilledFileError(path, "soft labels must be float (M, K)")
        raw.soft_labels = read.soft
        if raw.labels is None:
            raw.labels, raw.notes, raw.warnings = read.hard, read.notes, read.warnings
    lr = pick(_LR_KEYS)
    if lr is not None:
        raw.lr = _read_lr(lr, path)
    if raw.soft_labels is not None:
        raw.num_classes = raw.soft_labels.shape[1]
    return raw


class SafetensorsFileReader(DistilledReader):
    """A safetensors file that is not a label-augmented set: its tensors read like a dict.

    Recognised by its header (8-byte length, then JSON), so a cut file says "truncated".
    """

    format = "tensor"

    def detect(self, path: Path) -> bool:
        if not path.is_file():
            return False
        try:
            with open(path, "rb") as f:
                head = f.read(9)
        except OSError:
            return False
        return len(head) == 9 and head[8:9] == b"{"

    def read(self, path: Path, request: ReadRequest) -> RawSet:
        header = read_safetensors_header(path)
        if header is None:
            raise DistilledFileError(path, "not a safetensors file (implausible header length)")
        header.require_complete(path)
        if "ladd_labeler" in header.metadata:
            raise DistilledFileError(path, "a labeler checkpoint (ladd train-labeler), not a set")
        if "ladd_set" in header.metadata:
            raise DistilledFileError(path, "a label-augmented set that cannot be read")
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except Exception as err:  # the library may fail in any way on a hostile file
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise DistilledFileError(path, f"unreadable safetensors file ({first[:160]})") from err
        return _from_dict(tensors, path)


# ---------------------------------------------------------------------------- image folders


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
        listing = self.list(path)
        return listing.raw(listing.decode(range(len(listing.paths)), request.image_size))

    def list(self, path: Path) -> FolderSet:
        """The images' files and labels, nothing decoded (`read` decodes them all; the
        dashboard's view, ladd.sets.view, decodes the ones it shows)."""
        try:
            tree = read_image_tree(path)
            layout = parse_layout(tree.paths, path)
        except (ImageDecodeError, ValueError) as err:
            below = _set_below(path)
            if below is not None:
                raise DistilledFileError(path, below) from err
            raise DistilledFileError(path, str(err).removeprefix(f"{path}: ")) from err
        except Exception as err:  # a hostile archive may fail in any way (zlib, lzma, ...)
            raise DistilledFileError(path, f"cannot read the archive ({err})") from err
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
            try:  # class_9999999999/ would otherwise size the class names and counts
                current_limits().check_classes(num_classes, f"{path}: its folder names")
            except InputLimitError as err:
                raise DistilledFileError(path, str(err).removeprefix(f"{path}: ")) from None
        else:
            names, num_classes = folder_names, len(folder_names)
        fmt = self.format
        if _written_by_rded(paths):
            fmt = "rded"
            notes.append(
                "RDED's file names (00000/class00000_id00000.jpg, RDED synthesize/main.py:63-64): "
                "read as RDED's (--format imagefolder reads them as plain class folders)"
            )
        return FolderSet(
            path,
            tuple(paths),
            tuple(tree.files[p] for p in paths),
            torch.tensor(labels, dtype=torch.long),
            names,
            num_classes,
            tuple(notes),
            fmt,
        )


@dataclass(frozen=True)
class FolderSet:
    """An image-folder set before decoding: its files (paths in the tree, and each one's
    bytes or file) in label order, labels, class folder names and what the reader noted."""

    origin: Path
    paths: tuple[str, ...]
    items: tuple[bytes | Path, ...]
    labels: torch.Tensor  # int64 (M,)
    folder_names: tuple[str, ...] | None  # None when the folder names are class indices
    num_classes: int
    notes: tuple[str, ...]
    format: str  # imagefolder, or rded for RDED's file names

    def decode(self, indices: Sequence[int], size: int | None) -> torch.Tensor:
        """The files at `indices` as uint8 (m, 3, S, S): side `size`, or (None) the first one's
        (decode_images' rule); a file that will not decode is a DistilledFileError naming it."""
        try:
            return decode_images(
                [self.items[i] for i in indices],
                size,
                names=[self.paths[i] for i in indices],
                large=False,
            )
        except ImageDecodeError as err:
            raise DistilledFileError(self.origin, str(err)) from err
        except Exception as err:  # a hostile image may fail in any way inside a decoder
            raise DistilledFileError(self.origin, f"cannot decode the images ({err})") from err

    def raw(self, images: torch.Tensor) -> RawSet:
        """The RawSet of these files with `images` (uint8 (M, 3, S, S), decoded or a stand-in)."""
        raw = RawSet(self.origin, images, self.labels, format=self.format)
        raw.folder_names, raw.num_classes = self.folder_names, self.num_classes
        raw.notes = list(self.notes)
        return raw


_RDED_FILE = re.compile(r"(?:.*/)?(\d{5})/class(\d{5})_id\d{5}\.jpg")


def _written_by_rded(paths: Sequence[str]) -> bool:
    """Whether every image is named as RDED saves them: {class:05d}/class{class:05d}_id{i:05d}.jpg
    (synthesize/main.py:63-64); SRe2L's new000/class000_id000.jpg has three digits."""
    matches = [_RDED_FILE.fullmatch(p) for p in paths]
    return bool(paths) and all(m is not None and m.group(1) == m.group(2) for m in matches)


_RUN_FOLDER_READERS: list[DistilledReader] = []  # filled below: the readers of run folders


def _set_below(path: Path) -> str | None:
    """For a folder without class folders: a subfolder that holds a set another reader claims
    (DATM's run folder is the parent of Normal/, distill/DATM.py:395-404), named in a message."""
    if not path.is_dir():
        return None
    children = sorted(c for c in path.iterdir() if c.is_dir() and not c.name.startswith("."))
    for child in children[:64]:
        reader = next((r for r in _RUN_FOLDER_READERS if r.detect(child)), None)
        if reader is None:
            continue
        what = {"ladd": "a LADD set folder", "ddranking": "a DD-Ranking folder"}.get(
            reader.format, "an MTT/GLaD/DATM run folder (images_best.pt, labels_best.pt)"
        )
        why = " (DATM saves its run under Normal/)" if child.name == "Normal" else ""
        return (
            f"holds no class folders of images, but its subfolder {child.name}/ is {what}{why}: "
            f"load {child} instead"
        )
    return None


_RUN_FOLDER_READERS += [LaddFolderReader(), MttFolderReader(), DDRankingFolderReader()]
for _reader in (
    *_RUN_FOLDER_READERS,
    FkdFolderReader(),
    TorchFileReader(),
    SafetensorsFileReader(),
    ImageFolderReader(),
):
    register_reader(_reader)
