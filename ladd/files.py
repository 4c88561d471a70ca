"""Writing files so that a crash or a concurrent writer never leaves half of one.

Every file the project writes goes through `atomic_write`: the bytes go to a temporary file with
a unique name in the target's folder, are flushed to disk (fsync), get the mode an ordinary
`open()` would have given them under the current umask, and are moved into place with
`os.replace` (atomic on POSIX and Windows). Readers see the old file or the new one, never a
mix; two writers of the same target each write their own temporary file and the last rename
wins. `tempfile.mkstemp` alone would leave every file mode 0600 whatever the umask, so that
models, sets and exports in a workspace shared by a group would be unreadable to it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "atomic_write",
    "default_file_mode",
    "json_default",
    "save_tensors",
    "torch_save",
    "write_bytes",
    "write_json",
    "write_text",
]


def default_file_mode() -> int:
    """The mode `open(path, "w")` gives a new file: 0o666 less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform opens folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(target: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` on a fresh temporary file beside `target`, then move it into place.

    The temporary name is unique (concurrent writers never share it), the data is fsynced
    before the rename, and the file ends with the umask's mode. On any error (or Ctrl-C) the
    temporary file is removed and `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def json_default(obj: Any) -> Any:
    """JSON for the types our records hold: tensors, paths, sets/tuples, objects with to_dict."""
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Atomically write bytes."""
    return atomic_write(target, lambda tmp: Path(tmp).write_bytes(data))


def write_text(target: str | Path, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write(target, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(target: str | Path, obj: Any, *, indent: int | None = 1) -> Path:
    """Atomically write `obj` as JSON (tensors, paths and dataclasses with to_dict allowed)."""
    return write_text(target, json.dumps(obj, indent=indent, default=json_default))


def save_tensors(
    target: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> Path:
    """Atomically write a safetensors file (tensors moved to the CPU, made contiguous)."""
    from safetensors.torch import save_file

    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return atomic_write(target, lambda tmp: save_file(flat, tmp, metadata=metadata))


def torch_save(target: str | Path, obj: Any) -> Path:
    """Atomically write a torch.save file (the MTT layout other tools read; tensors only)."""
    return atomic_write(target, lambda tmp: torch.save(obj, tmp))
