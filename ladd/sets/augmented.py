"""The label-augmented set D_LA = {(x_i, y_i, y^d_i)} and its file.

A label-augmented set is one safetensors file: tensors `images` (float32 normalised, [M,C,H,W]),
`labels` (int64 [M]), `dense` ([M, N*N, K], float32 or float16), optional `soft_labels` [M,K]
(e.g. DATM's) and `full_soft` [M,K] (the labeler on the full image, for the full+soft ablation);
metadata key "ladd_set" holds JSON: n, r, class names, mean, std, source, zca, lr, the labeler's
identity and epoch, temperature. The file is recognised by that metadata key, whatever its name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ladd.files import save_tensors
from ladd.sets.base import DistilledReader, DistilledSet, ReadRequest, has_zca, register_reader
from ladd.sets.loading import fit_zca_for
from ladd.subsample import check_grid

SET_FORMAT = "ladd.label_augmented/1"
META_KEY = "ladd_set"


class LabelAugmentedFileError(ValueError):
    """A label-augmented set file that is missing, unreadable or inconsistent."""


@dataclass
class LabelAugmentedSet:
    """A distilled set plus dense labels: D_LA = {(x_i, y_i, y^d_i)}."""

    images: torch.Tensor  # float32 normalised (M, C, H, W)
    labels: torch.Tensor  # int64 (M,)
    dense: torch.Tensor  # probabilities (M, n*n, K)
    n: int
    r: float
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str | None = None
    zca: Any = None  # a fitted ladd.data.ZCA when the images are in ZCA space
    soft_labels: torch.Tensor | None = None  # the distilled set's own soft labels (M, K), if any
    full_soft: torch.Tensor | None = None  # labeler's softmax on the full images (M, K)
    lr: float | None = None  # the distilled set's learned lr (DATM), if any
    labeler: dict[str, Any] = field(default_factory=dict)  # arch, source, epoch, path, accuracy
    temperature: float = 1.0
    distilled_format: str | None = None
    generation_flops: float = 0.0
    format: str = SET_FORMAT

    # -- shape facts ---------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return int(self.dense.shape[-1])

    @property
    def num_crops(self) -> int:
        return self.n * self.n

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def ipc_per_class(self) -> list[int]:
        return torch.bincount(self.labels.cpu(), minlength=self.num_classes).tolist()

    @property
    def ipc(self) -> int:
        """Images per class (the largest class when unbalanced)."""
        return max(self.ipc_per_class())

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def validate(self) -> None:
        """Raise LabelAugmentedFileError on any inconsistency."""
        _validate(self)

    def to_distilled(self) -> Any:
        """The underlying distilled set (dense labels dropped)."""
        return DistilledSet(
            images=self.images,
            labels=self.labels,
            soft_labels=self.soft_labels,
            lr=self.lr,
            mean=tuple(self.mean),
            std=tuple(self.std),
            class_names=tuple(self.class_names),
            format=self.distilled_format or "ladd",
            source=self.source,
            zca=self.zca,
        )

    def describe(self) -> dict[str, Any]:
        """A summary for `ladd info` and the dashboard."""
        lo, hi = float(self.images.min()), float(self.images.max())
        return {
            "format": "label-augmented (LADD)",
            "images": len(self),
            "classes": self.num_classes,
            "class_names": list(self.class_names),
            "ipc_per_class": self.ipc_per_class(),
            "image_size": self.image_size,
            "label_kind": "hard + dense" + (" + soft" if self.soft_labels is not None else ""),
            "value_range": [lo, hi],
            "n": self.n,
            "r": self.r,
            "dense_shape": list(self.dense.shape),
            "dense_dtype": str(self.dense.dtype).replace("torch.", ""),
            "labeler": self.labeler,
            "source": self.source,
            "normalisation": {"mean": list(self.mean), "std": list(self.std), "zca": has_zca(self)},
            "lr": self.lr,
        }

    # -- file ----------------------------------------------------------------------------------
    def save(self, path: str | Path, dense_dtype: str | torch.dtype = "float32") -> Path:
        """Write one safetensors file (atomically); dense labels in float32 or float16."""
        dtype = _dtype(dense_dtype)
        self.validate()
        tensors = {
            "images": self.images.float(),
            "labels": self.labels.long(),
            "dense": self.dense.to(dtype),
        }
        if self.soft_labels is not None:
            tensors["soft_labels"] = self.soft_labels.float()
        if self.full_soft is not None:
            tensors["full_soft"] = self.full_soft.float()
        meta = {
            "format": self.format,
            "n": self.n,
            "r": self.r,
            "class_names": list(self.class_names),
            "mean": list(self.mean),
            "std": list(self.std),
            "source": self.source,
            "zca": {"source": self.source, "eps": float(self.zca.eps)} if has_zca(self) else None,
            "lr": self.lr,
            "labeler": self.labeler,
            "temperature": self.temperature,
            "distilled_format": self.distilled_format,
            "generation_flops": self.generation_flops,
        }
        return save_tensors(path, tensors, {META_KEY: json.dumps(meta), "format": SET_FORMAT})

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        data_root: str | Path | None = None,
        cache_dir: str | Path | None = None,
    ) -> LabelAugmentedSet:
        """Read and validate a label-augmented set file (LabelAugmentedFileError when bad).

        A set in ZCA space gets its whitening re-fitted on the source's train split (cached).
        """
        path = Path(path)
        if not path.is_file():
            raise LabelAugmentedFileError(f"{path}: no such file")
        try:
            with safe_open(str(path), framework="pt") as f:
                raw = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except Exception as err:
            raise LabelAugmentedFileError(
                f"{path}: not a readable safetensors file ({err})"
            ) from None
        if META_KEY not in raw:
            raise LabelAugmentedFileError(
                f"{path}: not a label-augmented set (no '{META_KEY}' metadata)"
            )
        try:
            meta = json.loads(raw[META_KEY])
        except json.JSONDecodeError as err:
            raise LabelAugmentedFileError(f"{path}: corrupt metadata ({err})") from None
        missing = [k for k in ("images", "labels", "dense") if k not in tensors]
        missing += [k for k in ("n", "r", "class_names", "mean", "std") if k not in meta]
        if missing:
            raise LabelAugmentedFileError(f"{path}: missing {', '.join(missing)}")
        la = cls(
            images=tensors["images"],
            labels=tensors["labels"],
            dense=tensors["dense"],
            n=int(meta["n"]),
            r=float(meta["r"]),
            class_names=tuple(meta["class_names"]),
            mean=tuple(meta["mean"]),
            std=tuple(meta["std"]),
            source=meta.get("source"),
            zca=None,
            soft_labels=tensors.get("soft_labels"),
            full_soft=tensors.get("full_soft"),
            lr=meta.get("lr"),
            labeler=dict(meta.get("labeler") or {}),
            temperature=float(meta.get("temperature", 1.0)),
            distilled_format=meta.get("distilled_format"),
            generation_flops=float(meta.get("generation_flops", 0.0)),
            format=meta.get("format", SET_FORMAT),
        )
        try:
            _validate(la)
        except LabelAugmentedFileError as err:
            raise LabelAugmentedFileError(f"{path}: {err}") from None
        zinfo = meta.get("zca")
        if zinfo:
            la.zca = fit_zca_for(
                zinfo.get("source") or la.source,
                eps=float(zinfo.get("eps", 0.1)),
                data_root=data_root,
                cache_dir=cache_dir,
            )
        return la


def _dtype(d: str | torch.dtype) -> torch.dtype:
    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if isinstance(d, torch.dtype):
        if d in (torch.float32, torch.float16):
            return d
    elif d in table:
        return table[d]
    raise ValueError(f"dense label dtype must be float32 or float16, got {d!r}")


def _validate(la: LabelAugmentedSet) -> None:
    err = LabelAugmentedFileError
    if la.images.dim() != 4 or not la.images.is_floating_point():
        raise err(
            f"images must be float (M, C, H, W), got {la.images.dtype} {tuple(la.images.shape)}"
        )
    m = la.images.shape[0]
    if la.labels.shape != (m,) or la.labels.dtype != torch.int64:
        raise err(f"labels must be int64 ({m},), got {la.labels.dtype} {tuple(la.labels.shape)}")
    try:
        check_grid(la.n, la.r)
    except ValueError as e:
        raise err(str(e)) from None
    k = len(la.class_names)
    if la.dense.shape != (m, la.n * la.n, k):
        raise err(
            f"dense labels must be (M, N*N, K) = ({m}, {la.n * la.n}, {k}), got {tuple(la.dense.shape)}"
        )
    if la.dense.dtype not in (torch.float32, torch.float16):
        raise err(f"dense labels must be float32 or float16, got {la.dense.dtype}")
    if m and (int(la.labels.min()) < 0 or int(la.labels.max()) >= k):
        raise err(f"labels out of range 0..{k - 1}")
    d = la.dense.float()
    if m and (float(d.min()) < -1e-4 or (d.sum(-1) - 1).abs().max() > 1e-2):
        raise err("dense labels are not probability vectors (each crop's row must sum to 1)")
    if len(la.mean) != la.images.shape[1] or len(la.std) != la.images.shape[1]:
        raise err(f"mean/std need {la.images.shape[1]} channels each")
    for name in ("soft_labels", "full_soft"):
        t = getattr(la, name)
        if t is not None and t.shape != (m, k):
            raise err(f"{name} must be ({m}, {k}), got {tuple(t.shape)}")


def is_label_augmented_file(path: str | Path) -> bool:
    """Whether `path` is a label-augmented set file (by its metadata, not its name)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        with safe_open(str(p), framework="pt") as f:
            return META_KEY in (f.metadata() or {})
    except Exception:  # not safetensors at all: some other format's file
        return False


class LabelAugmentedReader(DistilledReader):
    """Label-augmented set files (`ladd augment` output), whatever they are named."""

    format = "ladd_label_augmented"

    def detect(self, path: Path) -> bool:
        return is_label_augmented_file(path)

    def read(self, path: Path, request: ReadRequest) -> Any:
        raise NotImplementedError("label-augmented files are loaded whole (load)")

    def load(
        self,
        path: Path,
        *,
        data_root: str | Path | None = None,
        cache_dir: str | Path | None = None,
        **_: Any,
    ) -> LabelAugmentedSet:
        return LabelAugmentedSet.load(path, data_root=data_root, cache_dir=cache_dir)


register_reader(LabelAugmentedReader(), first=True)
