"""What every distilled-set format shares: the set, the raw read, the error, the reader registry.

A reader (one file format) says whether a path is its own (`detect`, by content, never by a
name the user picks) and returns what it found as a RawSet; `ladd.sets.loading` turns that into
a checked DistilledSet. A reader whose files are complete sets of their own (the label-augmented
file) overrides `load` instead. Readers register themselves when `ladd.sets` is imported; this
module imports none of them.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ladd.data import ZCA
from ladd.data.decode import zip_entry_count
from ladd.data.zca import ZCA_SPACE
from ladd.files import torch_save, write_json
from ladd.limits import InputLimitError, current_limits
from ladd.sets.conventions import GLAD_MEAN  # noqa: F401  (re-exported: ladd.sets.GLAD_MEAN)
from ladd.torchfiles import TorchFileError, load_torch_file

META_FILE = "ladd_meta.json"
META_VERSION = 2  # 2: a ZCA is fitted on [0, 1] pixels, as MTT/DATM do (1: on normalised images)
FORMATS = (
    "mtt",  # MTT run folder (images_best.pt, labels_best.pt)
    "glad",  # GLaD: MTT's layout (or DC's result file) with GLaD's normalisation
    "datm",  # DATM run folder: learned soft labels (logits) and lr_best.pt
    "dc",  # DC / DSA / DM result file res_<method>_<dataset>_<model>_<ipc>ipc.pt
    "ddranking",  # DD-Ranking folder: images.pt [, labels.pt, lr.pt]
    "tensor",  # any other torch/safetensors file of tensors
    "imagefolder",  # class subfolders of image files (SRe2L, ...)
    "rded",  # RDED's image folder (00000/class00000_id00000.jpg): ImageNet statistics
    "ladd",  # a folder written by DistilledSet.save_mtt
    "random_real",  # the random-real baseline
)
UNKNOWN_NORMALISATION = "unknown (give --source or --mean/--std to train on it)"


def has_zca(obj: Any) -> bool:
    """Whether a set (zca: ZCA | None) or a labeler's meta (zca_space: bool) lives in ZCA space."""
    if hasattr(obj, "zca_space"):
        return bool(obj.zca_space)
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
    """A distilled set ready for deployment: normalised float images and their labels.

    `mean`/`std` say how pixels were normalised: images = (x / 255 - mean) / std. A ZCA-space set
    has mean 0 / std 1 and `zca` set: images = zca.apply(x / 255), MTT/DATM's whitening.
    A set loaded with describe_only=True may have mean/std None (normalisation unknown) or a
    ZCA that is named (`zca_source`) but not fitted: `trainable` is then False and
    `require_trainable()` raises with what to pass.
    """

    images: torch.Tensor  # float32 (M, C, H, W), normalised (ZCA space when zca is set)
    labels: torch.Tensor  # int64 (M,)
    soft_labels: torch.Tensor | None  # float (M, K) as the file had them (DATM: logits), or None
    lr: float | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    class_names: tuple[str, ...]
    format: str  # one of FORMATS
    source: str | None = None
    zca: ZCA | None = None
    warnings: tuple[str, ...] = ()
    zca_source: str | None = None  # the source whose train split the ZCA is fitted on
    normalisation: str = ""  # how mean/std were chosen, for describe()
    origin: str | None = None  # the file or folder it was read from
    notes: tuple[str, ...] = ()  # what the reader found out (experiment picked, label slots)
    # The real test images' statistics when the set's code tests in another space than the set's
    # own mean/std (GLaD: ImageNet's or 0.5/0.5; see ladd.sets.conventions.evaluation_convention).
    test_mean: tuple[float, ...] | None = None
    test_std: tuple[float, ...] | None = None
    test_normalisation: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def trainable(self) -> bool:
        """Whether the set knows its input space (normalisation, and its ZCA when it has one)."""
        if self.mean is None or self.std is None:
            return False
        return not (self.zca_source is not None and self.zca is None)

    def require_trainable(self) -> None:
        """Raise DistilledFileError unless the set can be trained on or labelled."""
        if self.trainable:
            return
        where = self.origin or "the set"
        if self.mean is None or self.std is None:
            raise DistilledFileError(where, f"normalisation: {UNKNOWN_NORMALISATION}")
        raise DistilledFileError(
            where, f"its ZCA ({self.zca_source}) was not fitted: it was loaded for description only"
        )

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
        """The images in pixel space, normalised with the set's mean/std: ZCA undone for a
        ZCA-space set (whose mean 0 / std 1 make these [0, 1] pixels)."""
        if self.zca is None and self.zca_source is not None:
            self.require_trainable()
        return self.zca.invert(self.images) if self.zca is not None else self.images

    def save_mtt(self, folder: str | Path) -> Path:
        """Write the MTT/DATM layout plus ladd_meta.json; load_distilled reads it back.

        images_best.pt (float32), labels_best.pt (int64, or the float soft labels DATM-style,
        then labels_hard.pt holds the hard labels), lr_best.pt when lr.
        """
        self.require_trainable()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _save_tensor(self.images.detach().float().cpu().contiguous(), folder / "images_best.pt")
        labels = self.labels.detach().long().cpu().contiguous()
        if self.soft_labels is not None:
            _save_tensor(
                self.soft_labels.detach().float().cpu().contiguous(), folder / "labels_best.pt"
            )
            _save_tensor(labels, folder / "labels_hard.pt")
        else:
            _save_tensor(labels, folder / "labels_best.pt")
        if self.lr is not None:
            _save_tensor(torch.tensor(float(self.lr)), folder / "lr_best.pt")
        zca = None
        if self.zca is not None:
            zca = {
                "source": self.zca_source or self.source,
                "eps": self.zca.eps,
                "space": ZCA_SPACE,
            }
        meta = {
            "ladd_meta_version": META_VERSION,
            "format": self.format,
            "source": self.source,
            "mean": list(self.mean or ()),
            "std": list(self.std or ()),
            "class_names": list(self.class_names),
            "zca": zca,
        }
        if self.test_mean is not None:
            meta["test_mean"], meta["test_std"] = list(self.test_mean), list(self.test_std or ())
            meta["test_normalisation"] = self.test_normalisation
        write_json(folder / META_FILE, meta)
        return folder

    def describe(self) -> dict:
        """A summary for `ladd info` and the dashboard (works without a known normalisation)."""
        counts = self.ipc_per_class()
        lo, hi = (float(self.images.min()), float(self.images.max())) if len(self) else (0, 0)
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
            "value_min": lo if len(self) else None,
            "value_max": hi if len(self) else None,
            "lr": self.lr,
            "normalisation": self.normalisation
            or (UNKNOWN_NORMALISATION if self.mean is None else "given"),
            "zca": self.zca is not None or self.zca_source is not None,
            "zca_source": self.zca_source,
            "zca_eps": self.zca.eps if self.zca is not None else None,
            "mean": list(self.mean) if self.mean is not None else None,
            "std": list(self.std) if self.std is not None else None,
            "test_normalisation": self.test_normalisation
            or ("the set's (above)" if self.mean is not None else UNKNOWN_NORMALISATION),
            "test_mean": list(self.test_mean) if self.test_mean is not None else None,
            "test_std": list(self.test_std) if self.test_std is not None else None,
            "notes": list(self.notes),
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
    normalisation: str | None = None  # what mean/std are, when the reader knows them
    class_names: tuple[str, ...] | None = None
    folder_names: tuple[str, ...] | None = None  # class folder names, when informative
    num_classes: int | None = None  # a lower bound the files imply
    source: str | None = None
    zca_source: str | None = None
    zca_eps: float = 0.1
    zca_recorded: bool = False  # the metadata says the images are in ZCA space
    zca_evidence: str | None = None  # why the images must be in ZCA space (MTT's images_zca_*)
    pixels01: bool = False  # float [0, 1] pixels (MTT's images_zca_<it>.pt): ZCA may whiten them
    labels_origin: Path | None = None  # the file to blame for label problems, when separate
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what the user must hear (e.g. label rule)
    test_mean: tuple[float, ...] | None = None  # recorded test statistics (ladd_meta.json)
    test_std: tuple[float, ...] | None = None
    test_normalisation: str | None = None


@dataclass(frozen=True)
class ReadRequest:
    """The caller's arguments that a reader may need."""

    image_size: int | None = None
    experiment: int | None = None  # DC/DSA/DM result files: which experiment (default the last)


def plain(value: Any) -> Any:
    """numpy scalars (from an allow-listed load) as Python numbers; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def safe_torch_load(path: Path) -> Any:
    """torch.load with weights_only=True plus numpy's numeric scalars on an allow-list, the
    file's claims bounded by what it holds (ladd.torchfiles.load_torch_file).

    Anything else (code, other Python objects, corruption, a record or view that claims more
    than the caps allow) -> DistilledFileError; nothing in the file ever runs.
    """
    try:
        return load_torch_file(path)
    except TorchFileError as err:
        raise DistilledFileError(path, err.problem) from err
    except InputLimitError as err:
        raise DistilledFileError(path, str(err).removeprefix(f"{path}: ")) from err
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


def is_torch_file(path: Path) -> bool:
    """Whether a file's bytes are a torch.save file (zip with a data.pkl, or a legacy pickle)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    if head.startswith(b"\x80") and len(head) >= 2 and 2 <= head[1] <= 5:
        return True  # a pickle stream (torch's legacy format, or a plain pickle)
    if head != b"PK\x03\x04":
        return False
    count = zip_entry_count(path)
    if count is not None and count > current_limits().max_archive_entries:
        return True  # parsing its directory would cost memory: the reader refuses it by its cap
    try:
        with zipfile.ZipFile(path) as z:
            return any(name.endswith("data.pkl") for name in z.namelist()[:64])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        # No directory (cut short): torch.save writes its data.pkl first, so the first local
        # header's name says whether this was a torch file or another zip (of images, say).
        return _first_zip_member(path).endswith("data.pkl")


def _first_zip_member(path: Path) -> str:
    """The name in a zip's first local file header ('' when there is none)."""
    try:
        with open(path, "rb") as f:
            head = f.read(30)
            if len(head) < 30 or head[:4] != b"PK\x03\x04":
                return ""
            (length,) = struct.unpack_from("<H", head, 26)
            return f.read(length).decode("utf-8", errors="replace")
    except OSError:
        return ""


SAFETENSORS_MAX_HEADER = 100_000_000  # the safetensors library's own limit


@dataclass(frozen=True)
class SafetensorsHeader:
    """A safetensors file's header, parsed without the library (so a bad file says why)."""

    metadata: dict[str, str]
    tensors: dict[str, dict[str, Any]]  # name -> dtype, shape, data_offsets
    data_needed: int  # bytes of tensor data the header promises
    data_present: int  # bytes that follow the header in the file

    @property
    def truncated(self) -> bool:
        return self.data_needed > self.data_present

    def require_complete(self, path: Path) -> None:
        """DistilledFileError when the file ends before the data its header promises."""
        if self.truncated:
            raise DistilledFileError(
                path,
                f"truncated safetensors file: the header promises {self.data_needed} bytes of "
                f"tensor data, the file holds {self.data_present}",
            )


def read_safetensors_header(path: Path) -> SafetensorsHeader | None:
    """The header when the file starts like safetensors (u64 length + '{'), else None.

    Raises DistilledFileError when it starts like one but the header itself is cut or
    malformed; a file cut inside its tensor data comes back with `truncated` set.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(9)
            if len(head) < 9 or head[8:9] != b"{":
                return None
            (length,) = struct.unpack("<Q", head[:8])
            if length > SAFETENSORS_MAX_HEADER:
                return None
            if 8 + length > size:
                raise DistilledFileError(
                    path,
                    f"truncated safetensors file: its header needs {length} bytes, the file "
                    f"has {max(0, size - 8)} after the length",
                )
            f.seek(8)
            text = f.read(length)
    except OSError as err:
        raise DistilledFileError(path, f"cannot be read ({err})") from err
    try:
        header = json.loads(text.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DistilledFileError(path, f"corrupt safetensors header ({str(err)[:120]})") from err
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise DistilledFileError(path, "corrupt safetensors header: __metadata__ is not a map")
    end = 0
    tensors: dict[str, dict[str, Any]] = {}
    for name, entry in header.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in offsets)
        ):
            raise DistilledFileError(path, f"corrupt safetensors header: entry {str(name)[:40]!r}")
        end = max(end, offsets[1])
        tensors[str(name)] = entry
    return SafetensorsHeader(
        {str(k): str(v) for k, v in metadata.items()}, tensors, end, size - 8 - length
    )


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
    """The first registered reader whose `detect` claims `path` (DistilledFileError if none)."""
    for reader in _READERS:
        if reader.detect(path):
            return reader
    if path.is_file():
        raise DistilledFileError(
            path,
            "not a recognised distilled set: its bytes are not a torch file (zip or pickle), "
            "a safetensors file or an image archive, whatever its name says",
        )
    raise DistilledFileError(
        path,
        "not a recognised distilled set: expected an MTT/GLaD/DATM run folder "
        "(images_best.pt + labels_best.pt), a DD-Ranking folder (images.pt), a DC/DSA/DM "
        "result file, a torch or safetensors file of tensors, a label-augmented set, or a "
        "folder of class subfolders",
    )
