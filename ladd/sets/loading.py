"""Loading any set: the registered readers' raw content checked and completed, the random-real
baseline, and the ZCA whitening a ZCA-space set needs.

    load_set("runs/mtt_cifar10_ipc10", source="cifar10", zca_source="cifar10")
    load_set("res_DM_CIFAR10_ConvNet_10ipc.pt", source="cifar10", experiment=0)
    load_set("ws/sets/x.ladd")                  # a label-augmented file, whatever its name
    load_set("runs/mtt_run", describe_only=True)  # no source needed: for `ladd info`
    random_real("cifar10", ipc=10, seed=0)

Options (stable names, shared by the CLI and the dashboard): source, mean, std, format,
zca_source, experiment, class_names, num_classes, image_size, data_root, cache_dir,
describe_only. Every problem is a DistilledFileError (or LabelAugmentedFileError) whose one-line
message names the file.
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import torch

from ladd.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ZCA,
    ImageSet,
    SourceInfo,
    class_balanced_indices,
    load_source,
    normalise,
    source_info,
)
from ladd.data.cache import resolve_cache_dir
from ladd.data.zca import PIXEL_MEAN, PIXEL_STD, ZCA_SPACE, fit_zca_on_pixels
from ladd.device import resolve_device
from ladd.limits import InputLimitError, current_limits
from ladd.sets.base import (
    FORMATS,
    UNKNOWN_NORMALISATION,
    DistilledFileError,
    DistilledSet,
    RawSet,
    ReadRequest,
    find_reader,
)
from ladd.sets.conventions import (
    PIXELS01,
    Normalisation,
    better_fit,
    convention,
    evaluation_convention,
    looks_whitened,
    source_stats,
)

# Formats whose files hold bare normalised tensors: --format may relabel them (and so pick
# that distiller's normalisation conventions).
TENSOR_FORMATS = ("mtt", "glad", "datm", "dc", "ddranking", "tensor")
IMAGE_FORMATS = ("imagefolder", "rded")  # folders of image files: --format may relabel them too
ZCA_NORMALISATION = (
    "ZCA whitening of [0, 1] pixels fitted on {name}'s train split (kornia ZCAWhitening "
    "eps={eps:g}, as MTT, DATM and DD-Ranking)"
)


def resolve_set_path(path: str | Path) -> Path:
    """The path a reader should see: a run folder when pointed at its images file."""
    p = Path(path).expanduser()
    if p.is_file() and p.name == "images_best.pt":
        return p.parent  # MTT/GLaD/DATM run folder
    if p.is_file() and p.name == "images.pt" and not (p.parent / "images_best.pt").exists():
        return p.parent  # DD-Ranking folder: images.pt [, labels.pt, lr.pt]
    return p


def load_set(path: str | Path, **options: Any) -> Any:
    """Any set at `path`: a LabelAugmentedSet for a label-augmented file, else a DistilledSet.

    The format is found by content (the registered readers' `detect`); `options` are those of
    `load_distilled`. A label-augmented file records its own normalisation, classes and ZCA:
    it takes data_root, cache_dir and describe_only, and warns about other options.
    """
    p = resolve_set_path(path)
    if not p.exists():
        raise DistilledFileError(p, "no such file or folder")
    reader = find_reader(p)
    if reader.load is not None:
        return reader.load(p, **options)
    return load_distilled(p, **options)


def _source_of(
    name: str | None, image_size: int, cache_dir, origin: Path, data_root=None
) -> SourceInfo | None:
    """The source's description at the set's image size (DistilledFileError when unusable);
    `data_root` locates sources described from their folders (imagenet1k's class names)."""
    if name is None:
        return None
    try:
        return source_info(name, image_size, cache_dir=cache_dir, data_root=data_root)
    except (ValueError, OSError) as err:
        raise DistilledFileError(origin, f"source {name!r} does not fit this set ({err})") from err


def _stats(values: Sequence[float], what: str, channels: int, path: Path) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise DistilledFileError(path, f"{what} must be numbers ({err})") from None
    if len(out) != channels:
        raise DistilledFileError(
            path, f"{what} has {len(out)} values for {channels}-channel images"
        )
    if not all(math.isfinite(v) for v in out):
        raise DistilledFileError(path, f"{what} {out} is not finite")
    if what.endswith("std") and not all(v > 0 for v in out):
        raise DistilledFileError(path, f"std {out} must be positive")
    return out


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
    experiment: int | None = None,
    describe_only: bool = False,
) -> DistilledSet:
    """Read a distilled set in any known format, check it, and fill in what the file lacks.

    Normalisation: the file's own (ladd_meta.json), else mean/std, else the convention of the
    format's code for the source (`ladd.sets.conventions`: e.g. MTT's CIFAR-100 uses CIFAR-10's
    statistics, GLaD's ImageNet subsets GLaD's mean), else an error asking for them (image
    folders fall back to ImageNet's with a warning). With `describe_only` an unknown
    normalisation is allowed (mean/std None) and no ZCA is fitted: the set describes itself
    but is not `trainable`.
    Class names: class_names, else the file's, else the source's, else the folder names.
    zca_source: the images are in ZCA space of that source's train split, whitened as
    MTT/DATM/DD-Ranking do (mean 0 / std 1: [0, 1] pixels, then kornia's ZCA); a run folder
    holding MTT's images_zca_<it>.pt is taken as ZCA space of `source` without being told.
    format: one of FORMATS; relabels a tensor set and picks its code's conventions.
    experiment: for DC/DSA/DM result files, which experiment (0-based; default the last).
    """
    path = resolve_set_path(path)
    if not path.exists():
        raise DistilledFileError(path, "no such file or folder")
    check_format(path, format)
    reader = find_reader(path)
    if reader.load is not None:  # a complete set of its own (label-augmented): its images
        whole = reader.load(
            path, data_root=data_root, cache_dir=cache_dir, describe_only=describe_only
        )
        return whole.to_distilled()
    try:
        raw = reader.read(path, ReadRequest(image_size=image_size, experiment=experiment))
    except (RuntimeError, NotImplementedError, TypeError, IndexError, OverflowError) as err:
        raise _unexpected(path, err) from err
    options = LoadOptions(
        source=source,
        mean=mean,
        std=std,
        class_names=class_names,
        zca_source=zca_source,
        image_size=image_size,
        num_classes=num_classes,
        data_root=data_root,
        cache_dir=cache_dir,
        format=format,
        experiment=experiment,
        describe_only=describe_only,
    )
    try:
        return _finish(raw, options, path)
    except (RuntimeError, NotImplementedError, TypeError, IndexError, OverflowError) as err:
        raise _unexpected(path, err) from err


def _unexpected(path: Path, err: Exception) -> DistilledFileError:
    """A failure inside torch or a reader on a file's content, said in one line naming it."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return DistilledFileError(path, f"cannot be read ({type(err).__name__}: {first[:200]})")


def check_format(path: Path, format: str | None) -> None:
    """DistilledFileError unless `format` (the --format a user gave) is None or one of FORMATS."""
    if format is not None and format not in FORMATS:
        raise DistilledFileError(
            path, f"unknown format {format!r}: use one of {', '.join(FORMATS)}"
        )


@dataclass(frozen=True)
class LoadOptions:
    """The caller's options of `load_distilled`, as one value for `_finish`."""

    source: str | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    class_names: Sequence[str] | None = None
    zca_source: str | ImageSet | None = None
    image_size: int | None = None
    num_classes: int | None = None
    data_root: str | Path | None = None
    cache_dir: str | Path | None = None
    format: str | None = None
    experiment: int | None = None
    describe_only: bool = False


def _finish(raw: RawSet, o: LoadOptions, origin: Path) -> DistilledSet:
    """Check a reader's RawSet and complete it into a DistilledSet (see load_distilled)."""
    head, to_space = settle(raw, o, origin)
    return replace(head, images=to_space(raw.images).contiguous())


ToSpace = Callable[[torch.Tensor], torch.Tensor]


def settle(raw: RawSet, o: LoadOptions, origin: Path) -> tuple[DistilledSet, ToSpace]:
    """Everything `_finish` decides about a RawSet, and the function that takes its images
    (all of them, or any rows: it works image by image) into the set's space.

    The DistilledSet returned holds `raw.images` untouched: a lazy reader (ladd.sets.view) may
    pass a stand-in of the right shape and dtype (one decoded image expanded) for uint8 pixels,
    whose checks read only the shape, and convert the images it reads later with `to_space`.
    """
    images = raw.images

    def fail(problem: str, at: Path | None = None) -> NoReturn:
        raise DistilledFileError(at or raw.origin, problem)

    if o.experiment is not None and raw.format != "dc":
        fail("--experiment picks an experiment of a DC/DSA/DM result file, not of this set")
    fmt = raw.format
    if o.format is not None and o.format != raw.format:
        kinds = TENSOR_FORMATS if raw.format in TENSOR_FORMATS else IMAGE_FORMATS
        if raw.mean is None and (raw.format not in kinds or o.format not in kinds):
            fail(f"format {o.format!r} does not apply: the content is a {raw.format} set")
        fmt = o.format

    # -- shape and values
    if images.ndim != 4:
        fail(f"images have {images.ndim} dimensions {tuple(images.shape)}; expected 4 (M, C, H, W)")
    m, c, h, w = images.shape
    if m == 0:
        fail("the set is empty (0 images)")
    if c not in (1, 3) and w in (1, 3) and c == h:
        fail(
            f"images look channels-last [M, H, W, C] (shape {tuple(images.shape)}); save them "
            "as [M, C, H, W] (images.permute(0, 3, 1, 2))"
        )
    if h != w or h < 1:
        fail(f"images are {h}x{w}; expected square images")
    if o.image_size is not None and h != o.image_size:
        fail(f"images are {h} px; expected {o.image_size} px")
    if c not in (1, 3):
        fail(f"images have {c} channels; expected 3 (or 1)")
    pixels = images.dtype == torch.uint8 and raw.format in IMAGE_FORMATS
    if not pixels and not images.is_floating_point():
        fail(f"images have dtype {images.dtype}; expected normalised float images")
    if not pixels:
        wide = images.dtype == torch.float64
        checked = images if wide else images.float()  # float8 has no isfinite of its own
        if not torch.isfinite(checked).all():
            fail("images contain NaN or Inf")
        images = checked.float()
        if wide and not torch.isfinite(images).all():
            fail("images hold values beyond float32's range")

    found_warnings: list[str] = list(raw.warnings)
    notes = list(raw.notes)
    source_name = o.source or raw.source
    info = _source_of(source_name, h, o.cache_dir, raw.origin, o.data_root)

    # -- ZCA space: told (zca_source, metadata) or evident (MTT's images_zca_<it>.pt)
    zca_from = o.zca_source if o.zca_source is not None else raw.zca_source
    if zca_from is None and raw.zca_recorded:
        fail("images are in ZCA space of an unrecorded source: pass zca_source")
    if zca_from is None and raw.zca_evidence:
        if source_name is None:
            if not o.describe_only:
                fail(
                    f"the images are in ZCA space ({raw.zca_evidence}): pass the source "
                    "(--source NAME) whose train split the whitening is fitted on"
                )
            notes.append(f"ZCA space: {raw.zca_evidence}")
        else:
            zca_from = source_name
            notes.append(f"whitened as MTT/DATM do: {raw.zca_evidence}")
    zca_name = None
    if zca_from is not None:
        zca_name = zca_from.info.name if isinstance(zca_from, ImageSet) else str(zca_from)

    # -- normalisation
    applied: Normalisation | None = None
    tested: Normalisation | None = None  # the test images' statistics, when not the set's
    how: str
    if zca_name is not None:
        if o.mean is not None or o.std is not None:
            fail("a ZCA-space set is whitened [0, 1] pixels: mean/std do not apply, drop them")
        if (
            raw.mean is not None
            and not raw.pixels01
            and (raw.mean, raw.std)
            != (
                PIXEL_MEAN,
                PIXEL_STD,
            )
        ):
            fail(f"recorded mean/std {raw.mean}/{raw.std} contradict ZCA space (mean 0, std 1)")
        applied = PIXELS01
        how = ZCA_NORMALISATION.format(name=zca_name, eps=raw.zca_eps)
    elif raw.mean is not None:
        applied = Normalisation(
            raw.normalisation or "recorded",
            _stats(raw.mean, "mean", c, raw.origin),
            _stats(raw.std or (), "std", c, raw.origin),
        )
        how = raw.normalisation or "recorded in the file"
        if raw.test_mean is not None:
            tested = Normalisation(
                raw.test_normalisation or "recorded test statistics",
                _stats(raw.test_mean, "test mean", c, raw.origin),
                _stats(raw.test_std or (), "test std", c, raw.origin),
            )
        if o.mean is not None and tuple(o.mean) != tuple(raw.mean):
            found_warnings.append(f"ignored the given mean/std: the file records {raw.mean}")
    elif o.mean is not None or o.std is not None:
        if o.mean is None or o.std is None:
            fail("give both mean and std (or a source)")
        applied = Normalisation(
            "the given mean/std",
            _stats(o.mean, "mean", c, raw.origin),
            _stats(o.std, "std", c, raw.origin),
        )
        how = f"given: mean {applied.mean}, std {applied.std}"
    elif info is not None:
        applied, note = convention(fmt, info)
        how = applied.name + (f" ({note})" if note else "")
        if note:
            notes.append(note)
        evaluated = evaluation_convention(fmt, info)
        if evaluated is not None:
            tested, test_note = evaluated
            notes.append(test_note)
    elif pixels:
        applied = Normalisation("ImageNet statistics", IMAGENET_MEAN, IMAGENET_STD)
        how = "ImageNet statistics (no source or mean/std given)"
        found_warnings.append("no source or mean/std given: normalised with ImageNet statistics")
    elif o.describe_only:
        how = UNKNOWN_NORMALISATION
    else:
        fail(
            "normalisation unknown: the file does not record it; pass a source (--source) "
            "or its mean and std (--mean/--std)"
        )
    if applied is not None and len(applied.mean) != c:
        fail(f"mean/std have {len(applied.mean)} values for {c}-channel images")

    # -- the class count and labels
    k = _class_count(raw, o.num_classes, o.class_names, info)
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
    if soft is not None and (soft.shape[0] != m or soft.shape[1] != k):
        fail(
            f"soft labels have shape {tuple(soft.shape)} for {m} images of {k} classes",
            at=label_file,
        )

    names = (
        tuple(o.class_names)
        if o.class_names is not None
        else raw.class_names
        or (info.class_names if info is not None and info.num_classes == k else None)
        or raw.folder_names
        or tuple(f"class {i}" for i in range(k))
    )
    if len(names) != k:
        fail(f"{len(names)} class names for {k} classes")

    # -- warnings: uneven classes, a better-fitting normalisation, ZCA-looking images
    counts = torch.bincount(labels, minlength=k).tolist()
    if len(set(counts)) > 1:
        message = (
            f"{raw.origin}: uneven classes, {min(counts)} to {max(counts)} images per class "
            f"({counts if k <= 20 else 'see ipc_per_class'})"
        )
        warnings.warn(message, stacklevel=3)
        found_warnings.append(message)
    if raw.lr is not None and raw.lr <= 0:
        found_warnings.append(f"learning rate {raw.lr} is not positive")
    if not pixels and zca_name is None:
        extra = (source_stats(info),) if info is not None else ()
        hint = better_fit(images, applied, extra) if applied is not None else None
        hint = hint or (None if raw.pixels01 or raw.zca_evidence else looks_whitened(images))
        if hint:
            found_warnings.append(hint)

    # -- the whitening, fitted on the source's [0, 1] train pixels (cached)
    zca = None
    if zca_from is not None and not o.describe_only:
        try:
            zca = fit_zca_for(
                zca_from,
                eps=raw.zca_eps,
                image_size=h,
                data_root=o.data_root,
                cache_dir=o.cache_dir,
            )
        except (ValueError, OSError) as err:
            fail(f"images are in ZCA space but the whitening could not be fitted ({err})")
        if zca.num_features != c * h * w:
            fail(f"ZCA was fitted on {zca.num_features} values per image, not {c * h * w}")

    def to_space(x: torch.Tensor) -> torch.Tensor:
        if pixels:  # uint8 image files (always given a normalisation above): normalise them
            assert applied is not None
            x = normalise(x, applied.mean, applied.std)
        else:
            x = x.float()
        if zca is not None and (pixels or raw.pixels01):
            x = zca.apply(x)  # [0, 1] pixels -> the ZCA space MTT/DATM train in
        return x

    head = DistilledSet(
        images=raw.images,
        labels=labels.long(),
        soft_labels=soft,
        lr=raw.lr,
        mean=applied.mean if applied is not None else None,
        std=applied.std if applied is not None else None,
        class_names=tuple(str(n) for n in names),
        format=fmt,
        source=info.name if info is not None else source_name,
        zca=zca,
        warnings=tuple(found_warnings),
        zca_source=zca_name,
        normalisation=how,
        origin=str(origin),
        notes=tuple(notes),
        test_mean=tested.mean if tested is not None else None,
        test_std=tested.std if tested is not None else None,
        test_normalisation=tested.name if tested is not None else "",
    )
    return head, to_space


def _class_count(raw: RawSet, num_classes, class_names, info: SourceInfo | None) -> int:
    """The number of classes: the caller's word, else the source's, else what the files imply;
    a count over LADD_MAX_CLASSES is refused before anything is sized by it."""
    k = _class_count_unbounded(raw, num_classes, class_names, info)
    try:
        current_limits().check_classes(k, "the set")
    except InputLimitError as err:
        raise DistilledFileError(raw.labels_origin or raw.origin, str(err)) from None
    return k


def _class_count_unbounded(raw: RawSet, num_classes, class_names, info) -> int:
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
    """ZCA as MTT/DATM/DD-Ranking fit it: kornia's maths on the whole train split of `source`
    in [0, 1] pixels (ToTensor, no Normalize), cached in cache_dir.

    The cache key includes a digest of the train pixels, so CIFAR-10 read from torchvision
    and from the JPEG archive (slightly different pixels) get different whitenings.
    """
    train = (
        source
        if isinstance(source, ImageSet)
        else load_source(
            source, "train", image_size=image_size, data_root=data_root, cache_dir=cache_dir
        )
    )
    digest = hashlib.sha1(train.images[:: max(1, len(train) // 512)].cpu().numpy().tobytes())
    digest.update(f"{tuple(train.images.shape)}|{eps}|{ZCA_SPACE}".encode())
    name = re.sub(r"[^A-Za-z0-9]+", "-", train.info.name)[-40:]
    cache_file = resolve_cache_dir(cache_dir) / f"zca-{name}-{digest.hexdigest()[:12]}.safetensors"
    if cache_file.is_file():
        try:
            return ZCA.load(cache_file)
        except (OSError, KeyError, ValueError, RuntimeError) as err:
            warnings.warn(f"refitting ZCA: unreadable cache {cache_file} ({err})", stacklevel=2)
    device = resolve_device(device if device is not None else "auto")  # a GPU takes seconds
    zca = fit_zca_on_pixels(train.images.to(device), eps=eps)
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

    Uses its own torch.Generator (the global RNG is untouched). With `zca` (from
    `fit_zca_for`), the images are [0, 1] pixels whitened as MTT/DATM whiten theirs, so the
    set goes through the same pipeline as a ZCA-space distilled set (mean 0 / std 1).
    """
    if ipc < 1:
        raise ValueError(f"ipc must be at least 1, got {ipc}")
    train = source if isinstance(source, ImageSet) else load_source(source, "train", **load_kwargs)
    info = train.info
    picks = class_balanced_indices(train.labels, ipc, info.num_classes, seed=seed, strict=True)
    chosen = train.subset(picks)
    if zca is not None:
        images = zca.apply(normalise(chosen.images, PIXEL_MEAN, PIXEL_STD))
        mean, std = PIXEL_MEAN, PIXEL_STD
        how = ZCA_NORMALISATION.format(name=info.name, eps=zca.eps)
    else:
        images = chosen.normalised()
        mean, std = tuple(info.mean), tuple(info.std)
        how = f"{info.name} statistics"
    return DistilledSet(
        images=images,
        labels=chosen.labels.long(),
        soft_labels=None,
        lr=None,
        mean=mean,
        std=std,
        class_names=info.class_names,
        format="random_real",
        source=info.name,
        zca=zca,
        zca_source=info.name if zca is not None else None,
        normalisation=how,
    )
