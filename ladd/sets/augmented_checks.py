"""The checks a label-augmented file's contents must pass (ladd.sets.augmented reads the file):
its metadata fields read with their types, and the loaded set validated as a whole. Every
failure is one LabelAugmentedFileError line, whatever a hostile or careless file got wrong."""

from __future__ import annotations

import math
from typing import Any

import torch

from ladd.codecs import Codec, CodecError, build_codec
from ladd.limits import InputLimitError, current_limits
from ladd.subsample import check_grid

__all__ = [
    "LabelAugmentedFileError",
    "check_probs",
    "finite",
    "meta_codec",
    "meta_int",
    "meta_map",
    "meta_names",
    "meta_number",
    "meta_numbers",
    "meta_text",
    "validate_set",
]


class LabelAugmentedFileError(ValueError):
    """A label-augmented set file that is missing, unreadable or inconsistent."""


def meta_number(meta: dict, key: str, default: float | None = None) -> float:
    value = meta.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LabelAugmentedFileError(f"metadata field {key} is not a number: {str(value)[:40]}")
    if not math.isfinite(value):
        raise LabelAugmentedFileError(f"metadata field {key} is {value}")
    return float(value)


def meta_int(meta: dict, key: str) -> int:
    value = meta_number(meta, key)
    if value != int(value):
        raise LabelAugmentedFileError(f"metadata field {key} is not a whole number: {value}")
    return int(value)


def meta_numbers(meta: dict, key: str) -> tuple[float, ...]:
    values = meta.get(key)
    if not isinstance(values, list):
        raise LabelAugmentedFileError(f"metadata field {key} is not a list of numbers")
    return tuple(meta_number({key: v}, key) for v in values)


def meta_text(meta: dict, key: str) -> str | None:
    value = meta.get(key)
    if value is not None and not isinstance(value, str):
        raise LabelAugmentedFileError(f"metadata field {key} is not text")
    return value


def meta_names(meta: dict) -> tuple[str, ...]:
    names = meta.get("class_names")
    if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
        raise LabelAugmentedFileError("metadata field class_names is not a list of names")
    try:
        current_limits().check_classes(len(names), "metadata field class_names")
    except InputLimitError as e:
        raise LabelAugmentedFileError(str(e)) from None
    return tuple(names)


def meta_codec(meta: dict) -> Codec | None:
    """The codec the file records (None: an older file, float32/16 `dense`)."""
    info = meta.get("codec")
    if info is None:
        return None
    if not isinstance(info, dict) or not isinstance(info.get("name"), str):
        raise LabelAugmentedFileError("metadata field codec is not a map with a name")
    params = info.get("params") or {}
    if not isinstance(params, dict):
        raise LabelAugmentedFileError("metadata field codec.params is not a map")
    try:
        return build_codec(info["name"], params)
    except CodecError as e:
        raise LabelAugmentedFileError(str(e)) from None


def meta_map(meta: dict, key: str) -> dict[str, Any]:
    value = meta.get(key) or {}
    if not isinstance(value, dict):
        raise LabelAugmentedFileError(f"metadata field {key} is not a map")
    return dict(value)


def check_probs(d: torch.Tensor) -> None:
    err = LabelAugmentedFileError
    if not finite(d):
        raise err("dense labels contain NaN or Inf")
    if d.numel() and (float(d.min()) < -1e-4 or (d.sum(-1) - 1).abs().max() > 1e-2):
        raise err("dense labels are not probability vectors (each crop's row must sum to 1)")


def finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t.float()).all()) if t.numel() else True


def validate_set(la: Any) -> None:
    """Every check a loaded ladd.sets.augmented.LabelAugmentedSet must pass (shapes, dtypes,
    NaN/Inf, ranges, statistics), each failure one LabelAugmentedFileError line."""
    err = LabelAugmentedFileError
    if la.images.dim() != 4 or not la.images.is_floating_point():
        raise err(
            f"images must be float (M, C, H, W), got {la.images.dtype} {tuple(la.images.shape)}"
        )
    m, c = int(la.images.shape[0]), int(la.images.shape[1])
    if m == 0:
        raise err("the set holds no images (0 x ...): nothing to train on")
    if c != 3:
        raise err(f"images have {c} channel(s); LADD's labelers and models take 3-channel images")
    if la.images.shape[2] != la.images.shape[3] or la.images.shape[2] < 1:
        raise err(f"images must be square, got {tuple(la.images.shape[2:])}")
    stand_in = la.images.dim() == 4 and la.images.stride(0) == 0  # load_head's: one image
    if not finite(la.images[:1] if stand_in else la.images):
        raise err("images contain NaN or Inf")
    if la.labels.shape != (m,) or la.labels.dtype != torch.int64:
        raise err(f"labels must be int64 ({m},), got {la.labels.dtype} {tuple(la.labels.shape)}")
    try:
        if la.sampler:
            from ladd.samplers import parse_sampler

            parse_sampler(la.sampler)
        else:
            check_grid(la.n, la.r)
    except (ValueError, TypeError) as e:
        raise err(str(e)) from None
    crops = la.num_crops
    k = len(la.class_names)
    if k == 0:
        raise err("no class names")
    if int(la.labels.min()) < 0 or int(la.labels.max()) >= k:
        raise err(f"labels out of range 0..{k - 1}")
    if la.dense is not None:
        if la.dense.shape != (m, crops, k):
            raise err(
                f"dense labels must be (M, N*N, K) = ({m}, {crops}, {k}), "
                f"got {tuple(la.dense.shape)}"
            )
        if la.dense.dtype not in (torch.float32, torch.float16):
            raise err(f"dense labels must be float32 or float16, got {la.dense.dtype}")
        check_probs(la.dense.float())
    else:
        if la.encoded is None:
            raise err("no dense labels")
        try:
            la.encoded.check()
        except CodecError as e:
            raise err(str(e)) from None
        if tuple(la.encoded.shape) != (m, crops, k):
            raise err(
                f"{la.encoded.spec} dense labels must be (M, N*N, K) = ({m}, {crops}, {k}), "
                f"got {tuple(la.encoded.shape)}"
            )
        for _, chunk in la.encoded.chunks():
            check_probs(chunk)
    if len(la.mean) != c or len(la.std) != c:
        raise err(f"mean/std need {c} channels each")
    stats = [*la.mean, *la.std]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in stats):
        raise err(f"mean/std {la.mean}/{la.std} are not finite numbers")
    if not all(v > 0 for v in la.std):
        raise err(f"std {la.std} must be positive")
    if la.test_mean is not None:
        tm, ts = tuple(la.test_mean), tuple(la.test_std or ())
        if len(tm) != c or len(ts) != c:
            raise err(f"test mean/std need {c} channels each, got {len(tm)}/{len(ts)}")
        if not all(math.isfinite(v) for v in (*tm, *ts)) or not all(v > 0 for v in ts):
            raise err(f"test mean/std {tm}/{ts} must be finite, the std positive")
    for name in ("soft_labels", "full_soft"):
        t = getattr(la, name)
        if t is None:
            continue
        if t.shape != (m, k) or not t.is_floating_point():
            raise err(f"{name} must be float ({m}, {k}), got {t.dtype} {tuple(t.shape)}")
        if not finite(t):
            raise err(f"{name} contain NaN or Inf")
    if la.lr is not None and not (math.isfinite(la.lr) and la.lr > 0):
        raise err(f"learning rate {la.lr} must be a positive number")
    if not (math.isfinite(la.temperature) and la.temperature > 0):
        raise err(f"temperature {la.temperature} must be a positive number")
