"""Reading a store's files safely, and checking one FKD batch into a StoreBatch.

Every `.tar`/`.pt` of a store is a torch.save pickle. It is opened with
`torch.load(weights_only=True)` plus numpy's numeric scalars on an allow-list
(ladd.sets.safe_torch_load): SRe2L's CutMix boxes are numpy.int64 (`np.clip` of ints,
SRe2L relabel/utils_fkd.py:195-198), which weights_only refuses otherwise; anything else a file
pickles (code, other objects) is refused, never run, and no torch internals are patched. Before
a file is unpickled its size is held to LADD_MAX_ARCHIVE_BYTES, and a torch zip's entries are
counted against the archive caps (expanded bytes, ratio): a small file that expands to gigabytes
is refused as an archive bomb is. Values are checked after loading (shapes, ranges, NaN/Inf).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ladd.limits import InputLimitError, current_limits, format_bytes
from ladd.sets.base import DistilledFileError, safe_torch_load
from ladd.stores.base import StoreBatch, StoreError

__all__ = [
    "epoch_orders",
    "fkd_batch",
    "load_store_file",
    "read_json",
    "scalar_float",
    "scalar_int",
]

EPS = 1e-3  # slack on fractions stored in float16


def _check_size(path: Path) -> int:
    limits = current_limits()
    try:
        size = path.stat().st_size
    except OSError as err:
        raise StoreError(path, f"cannot be read ({err})") from err
    if size > limits.max_archive_bytes:
        raise StoreError(
            path,
            f"{format_bytes(size)} is over the limit of {format_bytes(limits.max_archive_bytes)} "
            "for one store file (set LADD_MAX_ARCHIVE_BYTES to raise it)",
        )
    return size


def _check_zip(path: Path, size: int) -> None:
    """Count a torch zip's entries against the archive caps before torch reads it."""
    if not zipfile.is_zipfile(path):
        return
    limits = current_limits()
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            budget = limits.archive_budget(str(path), size)
            budget.check_entry_count(len(infos))
            for info in infos:
                budget.add_entry(info.file_size)
                budget.add_bytes(info.file_size)
    except InputLimitError as err:
        raise StoreError(path, str(err).removeprefix(f"{path}: ")) from err
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise StoreError(path, f"corrupt torch file ({err})") from err


def load_store_file(path: Path) -> Any:
    """One store file's Python structure (lists, tensors, numbers, numpy scalars), loaded with
    weights_only=True within the size caps; StoreError (one line) otherwise."""
    size = _check_size(path)
    _check_zip(path, size)
    try:
        return safe_torch_load(path)
    except DistilledFileError as err:
        raise StoreError(path, err.problem) from err


def read_json(path: Path) -> Any:
    """A store's JSON file (the sampler's indices), within the size cap."""
    _check_size(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise StoreError(path, f"not a readable JSON file ({str(err)[:120]})") from err


# ---------------------------------------------------------------------------------------------
# Values


def scalar_float(value: Any, path: Path, what: str) -> float:
    """A Python float from a float, a numpy scalar or a 0-dim tensor (finite)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StoreError(path, f"{what} is a {type(value).__name__}, not a number")
    v = float(value)
    if not np.isfinite(v):
        raise StoreError(path, f"{what} is {v}")
    return v


def scalar_int(value: Any, path: Path, what: str) -> int:
    """A Python int from an int, a numpy integer or a 0-dim integer tensor."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, np.integer):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int):
        raise StoreError(path, f"{what} is a {type(value).__name__}, not an integer")
    return int(value)


def _tensor(obj: Any, path: Path, what: str, dims: int) -> torch.Tensor:
    if not isinstance(obj, torch.Tensor):
        raise StoreError(path, f"{what} is a {type(obj).__name__}, not a tensor")
    if obj.dim() != dims:
        raise StoreError(path, f"{what} has shape {tuple(obj.shape)}, expected {dims} dims")
    return obj


def _finite(t: torch.Tensor, path: Path, what: str) -> None:
    if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t.float()).all()):
        raise StoreError(path, f"{what} holds NaN or Inf")


def coords_tensor(obj: Any, path: Path, rows: int | None = None) -> torch.Tensor:
    """(B, 4) crop boxes as float32 fractions (top, left, height, width), checked."""
    t = _tensor(obj, path, "the crop coordinates", 2)
    if t.shape[1] != 4 or not t.is_floating_point():
        raise StoreError(path, f"the crop coordinates are {tuple(t.shape)} {t.dtype}, not (B, 4)")
    if rows is not None and t.shape[0] != rows:
        raise StoreError(path, f"{t.shape[0]} crop coordinates for {rows} rows")
    _finite(t, path, "the crop coordinates")
    t = t.float()
    if t.numel():
        lo, hi = float(t.min()), float((t[:, :2] + t[:, 2:]).max())
        if lo < -EPS or hi > 1 + EPS or float(t[:, 2:].min()) <= 0:
            raise StoreError(
                path, "the crop coordinates are not boxes inside the image (fractions in [0, 1])"
            )
    return t


def flip_tensor(obj: Any, path: Path, rows: int) -> torch.Tensor:
    t = _tensor(obj, path, "the flips", 1)
    if t.shape[0] != rows:
        raise StoreError(path, f"{t.shape[0]} flips for {rows} rows")
    if t.is_floating_point() or bool(((t != 0) & (t != 1)).any()):
        raise StoreError(path, "the flips are not booleans")
    return t.bool()


def label_tensor(obj: Any, path: Path, rows: int, what: str = "the soft labels") -> torch.Tensor:
    t = _tensor(obj, path, what, 2)
    if t.shape[0] != rows or not t.is_floating_point() or t.shape[1] < 1:
        raise StoreError(path, f"{what} are {tuple(t.shape)} {t.dtype}, not ({rows}, K) floats")
    _finite(t, path, what)
    return t


def mix_parts(
    index: Any, lam: Any, box: Any, path: Path, rows: int
) -> tuple[str | None, torch.Tensor | None, float | None, tuple[int, int, int, int] | None]:
    """(kind, index (B,) int64, lambda, box) from a batch's mix_index, mix_lam, mix_bbox:
    CutMix when a box is stored, Mixup when only index and lambda are (SRe2L utils_fkd.py:
    203-232), no mix when all three are None."""
    if index is None and lam is None and box is None:
        return None, None, None, None
    if index is None or lam is None:
        raise StoreError(path, "a mix is stored without its partner index or its ratio")
    idx = _tensor(index, path, "the mix partner index", 1)
    if idx.is_floating_point() or idx.shape[0] != rows:
        raise StoreError(path, f"the mix partner index is {tuple(idx.shape)} {idx.dtype}")
    idx = idx.long()
    if rows and (int(idx.min()) < 0 or int(idx.max()) >= rows):
        raise StoreError(path, "the mix partner index points outside the batch")
    ratio = scalar_float(lam, path, "the mix ratio")
    if not 0.0 <= ratio <= 1.0:
        raise StoreError(path, f"the mix ratio {ratio} is not in [0, 1]")
    if box is None:
        return "mixup", idx, ratio, None
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise StoreError(path, "the CutMix box is not four numbers (x1, y1, x2, y2)")
    x1, y1, x2, y2 = (scalar_int(v, path, "a CutMix box corner") for v in box)
    if min(x1, y1) < 0 or x2 < x1 or y2 < y1:
        raise StoreError(path, f"the CutMix box {(x1, y1, x2, y2)} is not a box")
    return "cutmix", idx, ratio, (x1, y1, x2, y2)


def fkd_batch(
    obj: Any,
    path: Path,
    rows: torch.Tensor,
    *,
    length: int = 6,
    rounding: str = "box",
    label_kind: str = "logits",
) -> StoreBatch:
    """A batch in SRe2L's list layout [coords, flip, mix_index, mix_lam, mix_bbox, labels, ...]
    (generate_soft_label.py:222-224; `length` elements), its images `rows`, checked."""
    if not isinstance(obj, (list, tuple)) or len(obj) != length:
        got = len(obj) if isinstance(obj, (list, tuple)) else type(obj).__name__
        raise StoreError(path, f"expected a list of {length} stored elements, found {got}")
    b = int(rows.shape[0])
    coords = coords_tensor(obj[0], path, b)
    flip = flip_tensor(obj[1], path, b)
    mix, idx, lam, box = mix_parts(obj[2], obj[3], obj[4], path, b)
    labels = label_tensor(obj[5], path, b)
    return StoreBatch(
        rows=rows,
        coords=coords,
        flip=flip,
        labels=labels,
        label_kind=label_kind,
        mix=mix,
        mix_index=idx,
        mix_lam=lam,
        mix_box=box,
        crop_rounding=rounding,
    )


def first_rows(obj: Any, path: Path) -> int:
    """How many rows a stored batch holds (its flips' length), before it is checked whole."""
    if isinstance(obj, (list, tuple)) and len(obj) >= 2 and isinstance(obj[1], torch.Tensor):
        return int(obj[1].shape[0]) if obj[1].dim() == 1 else -1
    raise StoreError(path, "not an FKD batch: expected a list [coords, flip, ...]")


def epoch_orders(raw: Any, path: Path, epochs: int) -> list[torch.Tensor]:
    """The image order of each of `epochs` epochs from a map epoch -> list of image indices (a
    family's sampler file: LPLD's JSON, HALD's dict): one long tensor an epoch, each list of
    plain ints, no index negative, no list longer than the images cap; StoreError naming the
    file and the epoch otherwise."""
    if not isinstance(raw, dict):
        raise StoreError(path, "is not a map of epoch -> image indices")
    limits = current_limits()
    orders: list[torch.Tensor] = []
    for e in range(epochs):
        lst = raw.get(str(e))
        if not isinstance(lst, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in lst
        ):
            raise StoreError(path, f"epoch {e} has no list of image indices")
        limits.check_images(len(lst), str(path))
        t = torch.tensor(lst, dtype=torch.long)
        if t.numel() and int(t.min()) < 0:
            raise StoreError(path, f"epoch {e} lists a negative image index")
        orders.append(t)
    return orders
