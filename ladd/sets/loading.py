"""Loading any set: the registered readers' raw content checked and completed, the random-real
baseline, and the ZCA whitening a ZCA-space set needs.

    load_set("runs/mtt_cifar10_ipc10", source="cifar10", zca_source="cifar10")
    load_set("ws/sets/x.safetensors")          # a label-augmented file, whatever its name
    random_real("cifar10", ipc=10, seed=0)

Every problem is a DistilledFileError (or LabelAugmentedFileError) whose one-line message names
the file.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch

from ladd.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    IMAGENET_SUBSETS,
    ZCA,
    ImageSet,
    SourceInfo,
    class_balanced_indices,
    fit_zca,
    load_source,
    normalise,
    source_info,
)
from ladd.data.cache import resolve_cache_dir
from ladd.device import resolve_device
from ladd.sets.base import (
    GLAD_MEAN,
    META_FILE,
    DistilledFileError,
    DistilledSet,
    RawSet,
    ReadRequest,
    find_reader,
)


def load_set(path: str | Path, **options: Any) -> Any:
    """Any set at `path`: a LabelAugmentedSet for a label-augmented file, else a DistilledSet.

    The format is found by content (the registered readers' `detect`); `options` are those of
    `load_distilled` (a label-augmented file records its own and takes data_root/cache_dir only).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DistilledFileError(p, "no such file or folder")
    if p.is_file() and p.name == "images_best.pt":
        p = p.parent
    reader = find_reader(p)
    if reader.load is not None:
        return reader.load(p, **options)
    return load_distilled(p, **options)


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
    reader = find_reader(path)
    if reader.load is not None:  # a complete set of its own (label-augmented): its images
        whole = reader.load(path, data_root=data_root, cache_dir=cache_dir)
        return whole.to_distilled()
    raw = reader.read(path, ReadRequest(image_size=image_size))
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
