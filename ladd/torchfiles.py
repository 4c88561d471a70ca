"""Reading torch.save files: tensors only, and no more memory than the file really holds.

`torch.load(..., weights_only=True)` runs no code from a file, but it believes what the file
declares: how large a zip record expands (a 3 MB `.pt` whose deflate-compressed record inflates
to gigabytes, or whose header merely says so), how many elements a legacy file's storages hold
(allocated before their data is read), and a tensor's shape and strides over its storage (a
stride-0 view of 4 bytes may claim 10^12 elements, which the first operation on it
materialises). `load_torch_file` checks each claim against the file's size before it costs
anything, within the caps of `ladd.limits`:

- a zip (torch >= 1.6): the entry count from the end record (LADD_MAX_ARCHIVE_ENTRIES), then
  every compressed record's declared size against the ratio and byte caps
  (LADD_MAX_ARCHIVE_RATIO, LADD_MAX_ARCHIVE_BYTES); torch.save stores records uncompressed,
  so its own files are never refused by them; a stored record must hold what it declares;
- a legacy pickle (torch < 1.6): its pickles are scanned without building anything (every
  class a placeholder), and the storages they declare must fit in the bytes that follow;
- after loading: the tensors together may not claim more than LADD_MAX_ARCHIVE_RATIO times
  the file's size (past 64 MiB): views that repeat their data are refused, not expanded.

Every refusal is an InputLimitError or a TorchFileError (both ValueErrors) whose one line names
the file. Callers map them to their own error types (`ladd.sets.safe_torch_load`).
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ladd.limits import RATIO_FLOOR_BYTES, InputLimitError, Limits, current_limits, format_bytes

__all__ = [
    "TorchFileError",
    "check_torch_file",
    "load_torch_file",
    "numpy_safe_globals",
]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER (legacy format)
_ELEMENT_BYTES = {  # legacy storage classes -> bytes per element (unknown: 1, the least)
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QInt32Storage": 4,
}


class TorchFileError(ValueError):
    """A torch file that declares more than it holds; the one-line message names the file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")


# numpy scalars (and only them) that result files pickle, e.g. DC's accuracies; torch.load with
# weights_only=True refuses them unless allowed. Both module spellings: numpy 2 writes
# numpy._core, numpy 1 wrote numpy.core.
_NUMPY_DTYPES = tuple(
    getattr(np.dtypes, name)
    for name in (
        "BoolDType",
        "Int8DType",
        "Int16DType",
        "Int32DType",
        "Int64DType",
        "UInt8DType",
        "UInt16DType",
        "UInt32DType",
        "UInt64DType",
        "Float16DType",
        "Float32DType",
        "Float64DType",
        "LongDType",
        "ULongDType",
        "LongLongDType",
        "ULongLongDType",
        "ByteDType",
        "UByteDType",
        "ShortDType",
        "UShortDType",
        "IntDType",
        "UIntDType",
    )
    if hasattr(np.dtypes, name)
)


def numpy_safe_globals() -> list[Any]:
    """numpy's numeric scalars and dtypes, for torch.serialization.safe_globals."""
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    return [
        (scalar, "numpy._core.multiarray.scalar"),
        (scalar, "numpy.core.multiarray.scalar"),
        np.dtype,
        *_NUMPY_DTYPES,
    ]


# ---------------------------------------------------------------------------- before loading


def check_torch_file(path: str | Path, limits: Limits | None = None) -> None:
    """Refuse a torch file whose declarations exceed what it holds (see the module doc);
    a file that is neither a zip nor a legacy pickle is left to torch.load to refuse."""
    limits = limits or current_limits()
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        _check_zip(path, limits)
    elif head[:1] == b"\x80":
        _check_legacy(path)


def _check_zip(path: Path, limits: Limits) -> None:
    from ladd.data.decode import zip_entry_count

    size = path.stat().st_size
    budget = limits.archive_budget(str(path), size)
    declared = zip_entry_count(path)
    if declared is not None:
        budget.check_entry_count(declared)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return  # torch.load reports a broken zip in its own words
    budget.check_entry_count(len(infos))
    for info in infos:
        if info.compress_size > size:
            raise TorchFileError(
                path,
                f"record {info.filename[:80]!r} declares {info.compress_size:,} stored bytes in "
                f"a file of {size:,} bytes (truncated or corrupt)",
            )
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise TorchFileError(
                    path,
                    f"record {info.filename[:80]!r} is stored uncompressed yet declares "
                    f"{info.file_size:,} bytes for {info.compress_size:,} (corrupt)",
                )
            continue
        budget.add_entry(info.file_size)  # a compressed record: its expanded size, before reading


class _Placeholder:
    """Any class a scanned pickle names: accepts every call and state, builds nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __new__(cls, *args: Any, **kwargs: Any) -> _Placeholder:
        return super().__new__(cls)

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _BoundedReader:
    """A file read by a scan: a read past the end is a claim the file cannot back."""

    def __init__(self, f: io.BufferedReader, size: int, path: Path) -> None:
        self.f, self.size, self.path = f, size, path

    def _left(self) -> int:
        return self.size - self.f.tell()

    def _check(self, n: int) -> None:
        if n > self._left():
            raise TorchFileError(
                self.path,
                f"its pickle declares a {n:,}-byte item with {max(0, self._left()):,} bytes left "
                "in the file (truncated, or a file that claims more than it holds)",
            )

    def read(self, n: int = -1) -> bytes:
        if n is not None and n >= 0:
            self._check(n)
        return self.f.read(n)

    def readinto(self, buffer: Any) -> int:
        self._check(memoryview(buffer).nbytes)
        return self.f.readinto(buffer)

    def readline(self) -> bytes:
        return self.f.readline(1 << 16)


class _ScanUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Python's own unpickler with every global a placeholder class: it walks a legacy torch
    file's pickles and collects the storages they declare; nothing named in them is built."""

    def __init__(self, reader: _BoundedReader) -> None:
        super().__init__(reader)  # type: ignore[arg-type]
        self.storages: dict[str, int] = {}  # key -> declared bytes

    def find_class(self, module: str, name: str) -> Any:
        return type(str(name)[:64] or "_", (_Placeholder,), {})

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            kind = getattr(pid[1], "__name__", "")
            numel = pid[4] if isinstance(pid[4], int) else 0
            self.storages[str(pid[2])] = max(0, numel) * _ELEMENT_BYTES.get(kind, 1)
        return _Placeholder()


def _check_legacy(path: Path) -> None:
    """The storages a legacy torch file declares must fit in the bytes after its pickles."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        reader = _BoundedReader(f, size, path)
        try:
            if _ScanUnpickler(reader).load() != LEGACY_MAGIC:
                return  # a plain pickle, not torch's legacy layout: torch.load decides
            _ScanUnpickler(reader).load()  # protocol version
            _ScanUnpickler(reader).load()  # sys_info
            main = _ScanUnpickler(reader)
            main.load()
            _ScanUnpickler(reader).load()  # the storage keys
        except TorchFileError:
            raise
        except Exception:  # not scannable: torch.load refuses it in its own words
            return
        left = size - f.tell()
    declared = sum(main.storages.values())
    if declared > left:
        raise TorchFileError(
            path,
            f"declares {format_bytes(declared)} of tensor data but holds {format_bytes(left)} "
            "after its pickles (truncated, or a file that claims more than it holds)",
        )


# ---------------------------------------------------------------------------- after loading


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor in nested dicts, lists and tuples (each container once)."""
    stack, seen = [obj], set()
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, (dict, list, tuple, set, frozenset)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)


def check_claimed_bytes(obj: Any, path: Path, size: int, limits: Limits) -> None:
    """Refuse tensors that together claim more than max_archive_ratio x the file's size."""
    total = 0
    for t in _tensors(obj):
        total += t.numel() * t.element_size()
    ratio = limits.max_archive_ratio
    if total > RATIO_FLOOR_BYTES and total > ratio * max(1, size):
        raise InputLimitError(
            f"{path}: its tensors claim {format_bytes(total)}, more than {ratio} times the "
            f"file's {format_bytes(size)} (views that repeat their data) "
            "(set LADD_MAX_ARCHIVE_RATIO to raise it)"
        )


def load_torch_file(path: str | Path, limits: Limits | None = None) -> Any:
    """torch.load(path, weights_only=True) on the CPU, numpy's numeric scalars allowed, with the
    file's claims checked before and after (module doc). torch's own errors propagate."""
    limits = limits or current_limits()
    path = Path(path)
    check_torch_file(path, limits)
    with warnings.catch_warnings(), ExitStack() as stack:
        warnings.simplefilter("ignore")  # torch's notes on pickle protocols are noise here
        stack.enter_context(torch.serialization.safe_globals(numpy_safe_globals()))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    check_claimed_bytes(obj, path, os.stat(path).st_size, limits)
    return obj
