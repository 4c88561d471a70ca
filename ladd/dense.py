"""Dense labels (paper Algorithm 1) and the label-augmented set file.

For every distilled image x_i and every static crop S_j(x_i) (ladd.subsample), the dense label is
y^d_{i,j} = softmax(g(S_j(x_i)) / T), T = 1 by default: an (N*N, K) matrix per image.

The labeler must see its own input space: images normalised with the same mean/std (or both in
ZCA space). A mismatch does not crash, it silently ruins every label, so `augment` refuses it
unless asked with `allow_mismatch=True`.

A label-augmented set is one safetensors file: tensors `images` (float32 normalised, [M,C,H,W]),
`labels` (int64 [M]), `dense` ([M, N*N, K], float32 or float16), optional `soft_labels` [M,K]
(e.g. DATM's) and `full_soft` [M,K] (the labeler on the full image, for the full+soft ablation);
metadata key "ladd_set" holds JSON: n, r, class names, mean, std, source, zca, lr, the labeler's
identity and epoch, temperature.
"""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from ladd.device import resolve_device
from ladd.flops import inference_flops_per_sample
from ladd.store import save_tensors
from ladd.subsample import check_grid, sub_sample

SET_FORMAT = "ladd.label_augmented/1"
_META_KEY = "ladd_set"


class LabelAugmentedFileError(ValueError):
    """A label-augmented set file that is missing, unreadable or inconsistent."""


# ---------------------------------------------------------------------------------------------
# Algorithm 1


@torch.no_grad()
def generate_dense_labels(
    images: torch.Tensor,
    labeler_model: nn.Module,
    n: int,
    r: float,
    *,
    batch_size: int = 256,
    temperature: float = 1.0,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Dense labels softmax(g(S_j(x_i)) / T) for all images and crops: [M, n*n, K] float32 (CPU).

    `images` are normalised (M, C, H, W) in the labeler's input space. Work is batched over
    images x crops: about `batch_size` crops per forward pass.
    """
    check_grid(n, r)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if images.dim() != 4:
        raise ValueError(f"expected images (M, C, H, W), got shape {tuple(images.shape)}")
    dev = resolve_device(device) if device is not None else next(labeler_model.parameters()).device
    was_training = labeler_model.training
    labeler_model.eval()
    per_batch = max(1, batch_size // (n * n))  # images per forward pass
    out = []
    try:
        for i in range(0, images.shape[0], per_batch):
            x = images[i : i + per_batch].to(dev, torch.float32)  # (b, C, H, W)
            crops = sub_sample(x, n, r)  # (b, n*n, C, H, W)
            b = crops.shape[0]
            logits = labeler_model(crops.flatten(0, 1))  # (b*n*n, K)
            probs = torch.softmax(logits.float() / temperature, dim=1)
            out.append(probs.reshape(b, n * n, -1).cpu())
    finally:
        labeler_model.train(was_training)
    if not out:
        raise ValueError("no images to label")
    return torch.cat(out)  # (M, n*n, K)


@torch.no_grad()
def full_image_soft_labels(
    images: torch.Tensor,
    labeler_model: nn.Module,
    *,
    batch_size: int = 256,
    temperature: float = 1.0,
) -> torch.Tensor:
    """softmax(g(x_i) / T) on the full images: [M, K] float32 (CPU)."""
    dev = next(labeler_model.parameters()).device
    labeler_model.eval()
    out = [
        torch.softmax(
            labeler_model(images[i : i + batch_size].to(dev)).float() / temperature, 1
        ).cpu()
        for i in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(out)


def check_input_space(dataset: Any, meta: Any, *, atol: float = 2e-3) -> list[str]:
    """Differences between a distilled set's input space and a labeler's (empty when they match).

    Compares ZCA flags, mean/std, image size, channels and the number of classes.
    """
    problems: list[str] = []
    ds_zca, lab_zca = has_zca(dataset), has_zca(meta)
    if ds_zca != lab_zca:
        problems.append(
            f"the set is {'in' if ds_zca else 'not in'} ZCA space but the labeler was trained "
            f"{'in' if lab_zca else 'without'} ZCA"
        )
    for name in ("mean", "std"):
        a, b = getattr(dataset, name, None), getattr(meta, name, None)
        if a is None or b is None:
            continue
        a, b = [float(v) for v in a], [float(v) for v in b]
        if len(a) != len(b) or any(abs(x - y) > atol for x, y in zip(a, b, strict=False)):
            problems.append(f"normalisation {name} differs: set {_fmt(a)} vs labeler {_fmt(b)}")
    size = int(dataset.images.shape[-1])
    if size != int(meta.image_size):
        problems.append(f"image size differs: set {size} px vs labeler {meta.image_size} px")
    k_set = len(dataset.class_names) if dataset.class_names else int(dataset.labels.max()) + 1
    if k_set != meta.num_classes:
        problems.append(f"number of classes differs: set {k_set} vs labeler {meta.num_classes}")
    return problems


def has_zca(obj: Any) -> bool:
    """Whether a set (zca: ZCA | None) or labeler meta (zca: bool) lives in ZCA space."""
    z = getattr(obj, "zca", None)
    return z is not None and z is not False


def _fmt(v: Any) -> str:
    return "(" + ", ".join(f"{x:.4f}" for x in v) + ")"


# ---------------------------------------------------------------------------------------------
# The label-augmented set


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
        from ladd.distilled import DistilledSet

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
        return save_tensors(path, tensors, {_META_KEY: json.dumps(meta), "format": SET_FORMAT})

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
        if _META_KEY not in raw:
            raise LabelAugmentedFileError(
                f"{path}: not a label-augmented set (no '{_META_KEY}' metadata)"
            )
        try:
            meta = json.loads(raw[_META_KEY])
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
            from ladd.distilled import fit_zca_for

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


def augment(
    distilled: Any,
    labeler: Any,
    n: int = 5,
    r: float = 0.625,
    *,
    temperature: float = 1.0,
    batch_size: int = 256,
    device: str | torch.device = "auto",
    allow_mismatch: bool = False,
) -> LabelAugmentedSet:
    """Label-augment a DistilledSet with a Labeler (or a labeler checkpoint path).

    Raises ValueError when the labeler's input space differs from the set's (normalisation, ZCA,
    size, classes) unless `allow_mismatch`.
    """
    from ladd.labeler import Labeler, load_labeler

    dev = resolve_device(device)
    if not isinstance(labeler, Labeler):
        labeler = load_labeler(labeler, device=dev)
    model = labeler.model.to(dev).eval()
    problems = check_input_space(distilled, labeler.meta)
    if problems and not allow_mismatch:
        raise ValueError(
            "the labeler does not see the distilled set's input space: "
            + "; ".join(problems)
            + " (this silently ruins dense labels; pass allow_mismatch to force it)"
        )
    check_grid(n, r)
    t0 = time.perf_counter()
    images = distilled.images.float()
    dense = generate_dense_labels(
        images, model, n, r, batch_size=batch_size, temperature=temperature, device=dev
    )
    full_soft = full_image_soft_labels(
        images, model, batch_size=batch_size, temperature=temperature
    )
    seconds = time.perf_counter() - t0
    flops = inference_flops_per_sample(model, images[:1].to(dev)) * images.shape[0] * (n * n + 1)
    meta = labeler.meta
    class_names = tuple(distilled.class_names or meta.class_names)
    return LabelAugmentedSet(
        images=images.cpu(),
        labels=distilled.labels.cpu().long(),
        dense=dense,
        n=n,
        r=float(r),
        class_names=class_names,
        mean=tuple(float(v) for v in distilled.mean),
        std=tuple(float(v) for v in distilled.std),
        source=getattr(distilled, "source", None) or meta.source,
        zca=getattr(distilled, "zca", None),
        soft_labels=None if distilled.soft_labels is None else distilled.soft_labels.float().cpu(),
        full_soft=full_soft,
        lr=None if distilled.lr is None else float(distilled.lr),
        labeler={
            "arch": meta.arch,
            "source": meta.source,
            "epoch": meta.epoch,
            "test_accuracy": meta.test_accuracy,
            "seed": meta.seed,
            "path": str(labeler.path) if labeler.path else None,
            "train_flops": meta.train_flops,
            "generation_seconds": seconds,
            "mismatch": problems,
        },
        temperature=float(temperature),
        distilled_format=getattr(distilled, "format", None),
        generation_flops=float(flops),
    )


def load_any(path: str | Path, **distilled_options: Any) -> Any:
    """A LabelAugmentedSet when `path` is one, else `ladd.distilled.load_distilled(path, ...)`."""
    p = Path(path)
    if p.is_file() and p.suffix == ".safetensors" and is_label_augmented_file(p):
        return LabelAugmentedSet.load(
            p,
            data_root=distilled_options.get("data_root"),
            cache_dir=distilled_options.get("cache_dir"),
        )
    from ladd.distilled import load_distilled

    return load_distilled(p, **distilled_options)


def is_label_augmented_file(path: str | Path) -> bool:
    try:
        with safe_open(str(path), framework="pt") as f:
            return _META_KEY in (f.metadata() or {})
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------
# Storage overhead (paper section 4: zip of uint8 images + float32 labels)


def _zip_size(blobs: dict[str, bytes]) -> int:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in blobs.items():
            zf.writestr(name, data)
    return len(buf.getvalue())


def _baseline_blobs(images_uint8: torch.Tensor, hard_labels: torch.Tensor) -> dict[str, bytes]:
    return {
        "images.bin": images_uint8.detach().cpu().to(torch.uint8).contiguous().numpy().tobytes(),
        "labels.bin": hard_labels.detach().cpu().to(torch.float32).contiguous().numpy().tobytes(),
    }


@dataclass(frozen=True)
class OverheadReport:
    """Zip-compressed bytes of a set without and with its dense labels."""

    base_bytes: int
    with_dense_bytes: int

    @property
    def overhead(self) -> float:
        return (self.with_dense_bytes - self.base_bytes) / self.base_bytes


def storage_report(
    images_uint8: torch.Tensor, dense_labels: torch.Tensor, hard_labels: torch.Tensor | None = None
) -> OverheadReport:
    """Measure both zip sizes (see `storage_overhead`)."""
    if images_uint8.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 pixels, got {images_uint8.dtype}")
    if hard_labels is None:
        hard_labels = dense_labels.float().mean(1).argmax(-1)
    base = _baseline_blobs(images_uint8, hard_labels)
    dense = dense_labels.detach().cpu().to(torch.float32).contiguous().numpy().tobytes()
    return OverheadReport(_zip_size(base), _zip_size({**base, "dense.bin": dense}))


def storage_overhead(
    images_uint8: torch.Tensor, dense_labels: torch.Tensor, hard_labels: torch.Tensor | None = None
) -> float:
    """LADD's storage overhead as a fraction, the way the paper measures it.

    Baseline: one ZIP_DEFLATED archive of the uint8 images (M, C, H, W) and the hard labels as
    float32 class indices, one scalar per image (default: the argmax of the mean dense label).
    With dense labels: the same archive plus the dense labels as float32 (M, N*N, K).
    Returns (with - without) / without; e.g. ~0.025 for a 10-class, IPC-10, 128 px set, N = 5.
    """
    return storage_report(images_uint8, dense_labels, hard_labels).overhead


def set_uint8_images(la: Any) -> torch.Tensor:
    """A set's images as uint8 pixels: denormalised, or min-max scaled for ZCA-space images."""
    if has_zca(la) and hasattr(la.zca, "invert"):
        from ladd.data.imageset import to_uint8

        return to_uint8(la.zca.invert(la.images.float()), la.mean, la.std)
    if has_zca(la):
        x = la.images.float()
        lo, hi = x.amin(dim=(1, 2, 3), keepdim=True), x.amax(dim=(1, 2, 3), keepdim=True)
        return ((x - lo) / (hi - lo).clamp_min(1e-12) * 255).round().to(torch.uint8)
    from ladd.data.imageset import to_uint8

    return to_uint8(la.images.float(), la.mean, la.std)


def set_base_bytes(ds: Any) -> int:
    """Zip-compressed bytes of a set's images and hard labels alone (the baseline of
    `storage_overhead`): a distilled set needs no dense labels to be measured."""
    return _zip_size(_baseline_blobs(set_uint8_images(ds), ds.labels))


def set_storage_report(la: LabelAugmentedSet) -> OverheadReport:
    """The storage overhead report of a label-augmented set."""
    return storage_report(set_uint8_images(la), la.dense, la.labels)


# ---------------------------------------------------------------------------------------------
# Per-crop statistics


@dataclass
class CropStats:
    """Per-crop label statistics for inspection."""

    max_prob: torch.Tensor  # (M, n*n) confidence of each crop's label
    entropy: torch.Tensor  # (M, n*n) entropy in nats
    agrees: torch.Tensor  # (M, n*n) bool: argmax equals the image's hard label

    def summary(self) -> dict[str, float]:
        """Means over all crops; entropy also as a fraction of log K."""
        return {
            "mean_max_prob": float(self.max_prob.mean()),
            "mean_entropy": float(self.entropy.mean()),
            "agreement": float(self.agrees.float().mean()),
        }

    def per_crop(self) -> dict[str, list[float]]:
        """Means over images, per crop position j (raster order)."""
        return {
            "max_prob": self.max_prob.mean(0).tolist(),
            "entropy": self.entropy.mean(0).tolist(),
            "agreement": self.agrees.float().mean(0).tolist(),
        }


def crop_stats(dense: torch.Tensor, hard_labels: torch.Tensor) -> CropStats:
    """Max probability, entropy and hard-label agreement of every crop's dense label."""
    p = dense.float()  # (M, n*n, K)
    ent = -(p * p.clamp_min(1e-12).log()).sum(-1)
    return CropStats(
        max_prob=p.max(-1).values,
        entropy=ent,
        agrees=p.argmax(-1) == hard_labels.view(-1, 1).to(p.device),
    )


def crop_stats_across(
    distilled: Any,
    labelers: list[Any],
    n: int = 5,
    r: float = 0.625,
    *,
    device: str | torch.device = "auto",
    batch_size: int = 256,
    temperature: float = 1.0,
    allow_mismatch: bool = False,
) -> dict[int, dict[str, float]]:
    """Crop statistics summaries per labeler epoch (paper Fig. 5: later epochs, lower entropy)."""
    from ladd.labeler import Labeler, load_labeler

    dev = resolve_device(device)
    out: dict[int, dict[str, float]] = {}
    for lab in labelers:
        if not isinstance(lab, Labeler):
            lab = load_labeler(lab, device=dev)
        problems = check_input_space(distilled, lab.meta)
        if problems and not allow_mismatch:
            raise ValueError("labeler/set input space mismatch: " + "; ".join(problems))
        dense = generate_dense_labels(
            distilled.images,
            lab.model.to(dev),
            n,
            r,
            batch_size=batch_size,
            temperature=temperature,
            device=dev,
        )
        s = crop_stats(dense, distilled.labels).summary()
        s["test_accuracy"] = lab.meta.test_accuracy
        s["normalised_entropy"] = s["mean_entropy"] / math.log(max(2, dense.shape[-1]))
        out[lab.meta.epoch] = s
    return out


def with_dense(la: LabelAugmentedSet, dense: torch.Tensor) -> LabelAugmentedSet:
    """A copy of `la` with other dense labels (same shape)."""
    return replace(la, dense=dense)
