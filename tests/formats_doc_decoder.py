"""A label-augmented file decoder written from docs/formats.md alone (not a test module).

It reads the safetensors container byte by byte and every codec as the document states it,
with numpy only: no LADD import, no torch, not even the safetensors package, so that what it
gets right is what the document says (tests/test_formats_doc.py checks it against LADD's own
reader for a file of every codec). Section names below are docs/formats.md's.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# "The container": dtype names -> numpy little-endian dtypes (BF16 handled apart)
DTYPES = {
    "U8": np.dtype("u1"),
    "I16": np.dtype("<i2"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
}


def read_container(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor of a safetensors file (BF16 widened to float32) and its metadata."""
    raw = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    data = raw[8 + length :]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        chunk = data[begin:end]
        if entry["dtype"] == "BF16":  # the upper 16 bits of a float32
            bits = np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(chunk, dtype=DTYPES[entry["dtype"]])
        tensors[name] = arr.reshape(entry["shape"])
    return tensors, meta


@dataclass
class Decoded:
    """What a label-augmented file holds, decoded: float32 arrays."""

    meta: dict[str, Any]
    images: np.ndarray  # (M, C, H, W) normalised
    labels: np.ndarray  # (M,)
    dense: np.ndarray  # (M, N*N, K) probabilities
    full_soft: np.ndarray | None  # (M, K)
    soft_labels: np.ndarray | None  # (M, K)


def _normalise(pixels: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """Images (section "Tensors"): (p / 255 - mean[c]) / std[c], every step in float32."""
    m = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    x = pixels.astype(np.float32) / np.float32(255.0)
    return (x - m) / s


def decode_rows(name: str, params: dict[str, Any], payload: dict[str, np.ndarray], k: int):
    """One codec's payload (leading dims (...)) -> float32 probabilities (..., K)."""
    if name in ("float32", "float16", "bfloat16"):
        return payload["probs"].astype(np.float32)
    if name == "int8":
        lo = payload["lo"].astype(np.float32)[..., None]
        step = payload["step"].astype(np.float32)[..., None]
        x = lo + payload["codes"].astype(np.float32) * step
        p = np.exp(x) if params["mode"] == "log" else np.maximum(x, np.float32(0))
        return p / np.maximum(p.sum(-1, keepdims=True), np.float32(1e-12))
    if name == "topk":
        index = payload["index"].astype(np.int64)
        if payload["index"].dtype == np.dtype("<i2"):
            index &= 0xFFFF  # 16-bit indices are unsigned
        value = payload["value"].astype(np.float32)
        if payload["value"].dtype == np.uint8:
            value = value / np.float32(255)
        kept = index.shape[-1]
        s = value.sum(-1, keepdims=True)
        out = np.zeros((*index.shape[:-1], k), dtype=np.float32)
        if params["residual"] == "renorm" or kept == k:
            value = value / np.maximum(s, np.float32(1e-12))
        else:
            fill = np.maximum(np.float32(1) - s, np.float32(0)) / np.float32(k - kept)
            out += fill
            value = np.where(s > 1, value / np.maximum(s, np.float32(1)), value)
        np.put_along_axis(out, index, value, axis=-1)
        return out
    raise ValueError(f"codec {name!r} is not in docs/formats.md")


def decode_file(path: Path) -> Decoded:
    """A label-augmented file decoded as docs/formats.md says."""
    tensors, header_meta = read_container(path)
    assert header_meta["format"] == "ladd.label_augmented/1"
    meta = json.loads(header_meta["ladd_set"])
    k = len(meta["class_names"])
    codec = meta.get("codec") or {"name": str(tensors["dense"].dtype), "params": {}}
    name, params = codec["name"], codec["params"]
    images = tensors["images"]
    if meta.get("pixels") == "uint8":
        images = _normalise(images, meta["mean"], meta["std"])
    if name in ("float32", "float16"):
        dense = tensors["dense"].astype(np.float32)
        full = tensors.get("full_soft")
        full_soft = None if full is None else full.astype(np.float32)
    else:
        payload = {n[6:]: t for n, t in tensors.items() if n.startswith("dense.")}
        dense = decode_rows(name, params, payload, k)
        coded = {n[10:]: t for n, t in tensors.items() if n.startswith("full_soft.")}
        full_soft = decode_rows(name, params, coded, k)[:, 0] if coded else None
    soft = tensors.get("soft_labels")
    return Decoded(meta, images, tensors["labels"], dense, full_soft, soft)


# "Which crop a row labels"


def _half_up(x: float) -> int:
    return math.floor(x + 0.5)


def crop_boxes(size: int, n: int, r: float) -> list[tuple[int, int, int, int]]:
    """The N*N crops (top, left, height, width), row j = row * N + col."""
    side = min(size, max(1, _half_up(r * size)))
    if n == 1:
        offsets = [_half_up((size - side) / 2)]
    else:
        offsets = [_half_up(k * (size - side) / (n - 1)) for k in range(n)]
    return [(offsets[j // n], offsets[j % n], side, side) for j in range(n * n)]


def resize_bilinear(img: np.ndarray, size: int) -> np.ndarray:
    """(C, h, w) -> (C, size, size): half-pixel centres, input coordinate clamped below at 0,
    no antialiasing; an image already that size is returned as it is."""
    c, h, w = img.shape
    if (h, w) == (size, size):
        return img

    def taps(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.maximum((np.arange(size, dtype=np.float64) + 0.5) * n_in / size - 0.5, 0.0)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (src - i0).astype(np.float32)

    y0, y1, wy = taps(h)
    x0, x1, wx = taps(w)
    rows = img[:, y0, :] * (1 - wy)[None, :, None] + img[:, y1, :] * wy[None, :, None]
    return rows[:, :, x0] * (1 - wx)[None, None, :] + rows[:, :, x1] * wx[None, None, :]


def crops_of(image: np.ndarray, n: int, r: float) -> np.ndarray:
    """(C, S, S) normalised -> (N*N, C, S, S): every crop cut and resized to S x S."""
    size = image.shape[-1]
    return np.stack(
        [
            resize_bilinear(image[:, t : t + hh, lft : lft + ww], size)
            for t, lft, hh, ww in crop_boxes(size, n, r)
        ]
    )
