"""Writing files so that a crash or a concurrent writer never leaves half of one.

Every file the project writes goes through `atomic_write`: the bytes go to a temporary file with
a unique name in the target's folder, are flushed to disk (fsync), get the mode an ordinary
`open()` would have given them under the current umask, and are moved into place with
`os.replace` (atomic on POSIX and Windows). Readers see the old file or the new one, never a
mix; two writers of the same target each write their own temporary file and the last rename
wins. `tempfile.mkstemp` alone would leave every file mode 0600 whatever the umask, so that
models, sets and exports in a workspace shared by a group would be unreadable to it.

Every step that writes an artifact (a set, a labeler folder, an export, a report) first claims
its output with `claim_output`: one writer at a time holds it (a lock beside it, released when
the process ends however it ends), an existing artifact is replaced only with `force` and then
leaves none of its old files behind, an input of the step is never its output, and the
workspace's own files (the runs database, runs/, cache/, checkpoints/) are never an output.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "OutputBusyError",
    "SET_FOLDER_FILES",
    "WORKSPACE_FILES",
    "atomic_write",
    "check_not_workspace_file",
    "check_output",
    "claim_output",
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


# ---------------------------------------------------------------------------------------------
# Claiming an output


class OutputBusyError(FileExistsError):
    """Another process is writing the same output right now."""


# A workspace's own files and folders (ladd.store): never any command's output.
DATABASE_NAMES = tuple(f"runs.sqlite{x}" for x in ("", "-wal", "-shm", "-journal"))
WORKSPACE_FILES = (*DATABASE_NAMES, "runs", "cache", "checkpoints")
WORKSPACE_FOLDERS = ("labelers", "sets", "experts", "uploads", "sweeps")  # hold outputs; not one
# What an artifact folder may hold (the replaced folder's files go only when all are these).
SET_FOLDER_FILES = (
    "images_*.pt",
    "labels_*.pt",
    "lr_*.pt",
    "ladd_meta.json",
    "distill.json",
    "mtt_checkpoint.safetensors",
    ".*.tmp",
)


def _workspace_roots(target: Path, workspace: str | Path | None) -> list[Path]:
    roots = [Path(workspace).expanduser().resolve()] if workspace is not None else []
    env = os.environ.get("LADD_WORKSPACE")
    if env:
        roots.append(Path(env).expanduser().resolve())
    for parent in (target, *target.parents):  # any folder that holds a runs database is one
        if (parent / "runs.sqlite").exists():
            roots.append(parent)
    return roots


def check_not_workspace_file(path: str | Path, workspace: str | Path | None = None) -> None:
    """FileExistsError when `path` is a workspace itself or one of its own files: the runs
    database (and its -wal/-shm/-journal), runs/, cache/, checkpoints/ or anything in them, the
    cache of LADD_CACHE_DIR, or a top folder such as sets/. Workspaces: `workspace`,
    LADD_WORKSPACE, and any folder above `path` that holds a runs.sqlite."""
    target = Path(path).expanduser().resolve()
    if target.name in DATABASE_NAMES:
        raise FileExistsError(f"{path} is a runs database; write to another file")
    cache = os.environ.get("LADD_CACHE_DIR")
    if cache:
        root = Path(cache).expanduser().resolve()
        if target == root or root in target.parents:
            raise FileExistsError(
                f"{path} is in the decoded-data cache {root}; choose another --out"
            )
    for root in _workspace_roots(target, workspace):
        if target == root or target in root.parents:
            raise FileExistsError(f"{path} holds the workspace {root}; choose another --out")
        if root not in target.parents:
            continue
        rel = target.relative_to(root).parts
        if rel[0] in WORKSPACE_FILES:
            raise FileExistsError(
                f"{path} is the workspace's own {rel[0]} (in {root}); LADD manages it: "
                "choose another --out"
            )
        if len(rel) == 1 and rel[0] in WORKSPACE_FOLDERS:
            raise FileExistsError(f"{path} is the workspace's {rel[0]} folder; name a file in it")


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def _exclusive_lock(target: Path) -> Iterator[None]:
    """Hold `.<name>.lock` beside `target` (flock: released when the process ends, even by
    kill -9); OutputBusyError naming the holder's pid when another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): one writer is not enforced
        yield
        return
    lock = _lock_path(target)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputBusyError(
                f"{target} is being written by another process (pid {holder}); wait for it "
                "to finish or choose another output"
            ) from None
        try:  # the holder before us may have removed the file we locked: lock the new one
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()  # still holding it: the next writer re-checks the inode it locked
        os.close(fd)


def check_output(
    path: str | Path,
    *,
    inputs: Iterable[str | Path | None] = (),
    force: bool = False,
    exist_ok: bool = False,
    members: tuple[str, ...] | None = None,
    workspace: str | Path | None = None,
) -> dict[Path, tuple[int, int]]:
    """The checks of `claim_output` without holding anything (a step calls it first to refuse
    at once, before its slow part): FileExistsError (one line) for an input of the step, the
    workspace's own files, an existing output without `force` (unless `exist_ok`), a folder
    holding files that are not `members`. Returns the existing folder's files that `force`
    will replace, each with its (device, inode)."""
    target = Path(path).expanduser().resolve()
    for item in inputs:
        if item is not None and Path(item).expanduser().resolve() == target:
            raise FileExistsError(
                f"{path} is an input of this step; writing the output there would replace it "
                "(choose another --out)"
            )
    check_not_workspace_file(target, workspace)
    old: dict[Path, tuple[int, int]] = {}
    if not target.exists() or exist_ok:
        return old
    if not force:
        raise FileExistsError(f"{path} already exists; pass --force to replace it")
    if target.is_dir():
        found = list(target.iterdir())
        others = [
            p.name
            for p in found
            if members is None or not any(fnmatch.fnmatch(p.name, m) for m in members)
        ]
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise FileExistsError(
                f"{path} holds files that are not this artifact's ({shown}); --force replaces "
                "only an artifact's own folder: choose another --out"
            )
        for p in found:
            st = p.lstat()
            old[p] = (st.st_dev, st.st_ino)
    return old


@contextlib.contextmanager
def claim_output(
    path: str | Path,
    *,
    inputs: Iterable[str | Path | None] = (),
    force: bool = False,
    exist_ok: bool = False,
    members: tuple[str, ...] | None = None,
    workspace: str | Path | None = None,
) -> Iterator[Path]:
    """Hold `path` as this process's output while the `with` block writes it.

    Refused (FileExistsError, one line): what `check_output` refuses, checked again under the
    lock, and an output another process holds (OutputBusyError: two writers of one --out
    never both succeed; the second is refused at once). With `force` an existing folder is
    replaced only when every file in it matches `members` (the artifact's own file names, so
    `--out ~/Documents --force` deletes nothing), and when the block succeeds its old files
    that the new artifact did not rewrite are deleted: no file of the old artifact stays
    beside the new one (a file is replaced whole by its atomic write). Until then, and when
    the block fails or the process is killed, the old files stay where they were.
    """
    target = Path(path).expanduser().resolve()
    check_output(
        path, inputs=inputs, force=force, exist_ok=exist_ok, members=members,
        workspace=workspace,
    )  # fmt: skip
    with _exclusive_lock(target):
        old = check_output(
            path, inputs=inputs, force=force, exist_ok=exist_ok, members=members,
            workspace=workspace,
        )  # fmt: skip
        yield target
        for p, ident in old.items():  # not rewritten (same inode): a file of the old artifact
            with contextlib.suppress(OSError):
                st = p.lstat()
                if (st.st_dev, st.st_ino) == ident:
                    _remove(p)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
