"""Saving uploaded distilled-set files into the workspace (uploads/<digest>/), safely.

Accepted: one label-augmented .safetensors file; MTT/DATM tensors (images_best.pt,
labels_best.pt, lr_best.pt); or a .zip of a run folder or of a JPEG/PNG class-folder tree
(SRe2L / RDED layout).

Everything is written into a hidden staging folder beside uploads/ and moved into
uploads/<digest>/ only once the whole upload is accepted, so a refused upload leaves no file
behind (and nothing half-written ever shows up as a set). Bytes are counted while they are
written: the uploaded files and the unzipped members together stay under max_upload_bytes, and
a zip's entry count, compression ratio and expanded size are checked as it is extracted, by
actual bytes written, not only by what its headers declare (ladd.limits).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from ladd.files import atomic_write
from ladd.limits import ArchiveBudget, InputLimitError, Limits, current_limits, format_bytes

ALLOWED = (".pt", ".pth", ".safetensors", ".zip", ".json", ".jpg", ".jpeg", ".png")
CHUNK = 1024**2  # bytes per read and write


class UploadError(ValueError):
    """An upload the dashboard refuses."""


class _Budget:
    """Bytes one upload has written so far, against max_upload_bytes."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.written = 0

    def add(self, count: int, name: str) -> None:
        self.written += count
        if self.written > self.limits.max_upload_bytes:
            raise UploadError(
                f"{name}: the upload is over the limit of "
                f"{format_bytes(self.limits.max_upload_bytes)} "
                "(set LADD_MAX_UPLOAD_BYTES to raise it)"
            )

    @property
    def left(self) -> int:
        return self.limits.max_upload_bytes - self.written


def _chunks(f: Any) -> Any:
    """An uploaded file's bytes in chunks (Streamlit's UploadedFile is a seekable stream)."""
    read = getattr(f, "read", None)
    if read is None:  # anything with only getvalue()
        data = f.getvalue()
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]
        return
    if hasattr(f, "seek"):
        f.seek(0)
    while chunk := read(CHUNK):
        yield chunk


def save_upload(files: list[Any], uploads_dir: Path, limits: Limits | None = None) -> Path:
    """Store uploaded files (objects with .name and .read() or .getvalue()); return what to load.

    A single .safetensors file is returned as that file; anything else as its folder. Raises
    UploadError (and leaves nothing in `uploads_dir`) when a file type is not accepted, a cap
    is exceeded, a zip is unsafe or unreadable, or the result is not a set LADD can read.
    """
    limits = limits or current_limits()
    if not files:
        raise UploadError("no files uploaded")
    names = [PurePosixPath(f.name).name for f in files]
    for f, name in zip(files, names, strict=True):
        if not name or Path(name).suffix.lower() not in ALLOWED:
            raise UploadError(f"{f.name}: unsupported file type (use {', '.join(ALLOWED)})")
    if len(set(names)) != len(names):
        raise UploadError("two uploaded files have the same name")
    uploads_dir.mkdir(parents=True, exist_ok=True)
    # beside uploads/ (not in it), so that the set listing never sees a half-written upload
    staging = uploads_dir.parent / f".upload-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        budget = _Budget(limits)
        digest = hashlib.sha256()
        for f in sorted(files, key=lambda f: f.name):
            name = PurePosixPath(f.name).name
            digest.update(f.name.encode())

            def write(tmp: str, f: Any = f, name: str = name) -> None:
                with open(tmp, "wb") as out:
                    for chunk in _chunks(f):
                        budget.add(len(chunk), name)  # stops at the cap, mid-file
                        digest.update(chunk)
                        out.write(chunk)

            atomic_write(staging / name, write)
        for name in names:
            if name.lower().endswith(".zip"):
                _extract(staging / name, staging, limits, budget)
                (staging / name).unlink()
        _check_readable(staging)
        folder = uploads_dir / digest.hexdigest()[:12]
        try:
            os.rename(staging, folder)
        except OSError:
            if not folder.is_dir():
                raise
            shutil.rmtree(staging)  # the same upload again: keep the first copy
        return loadable(folder)
    except InputLimitError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise UploadError(str(err)) from None
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise UploadError(f"cannot store the upload ({err})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def loadable(folder: Path) -> Path:
    """What to load from an upload folder: its lone .safetensors file or lone subfolder, or
    the folder itself (an MTT run folder or a class-folder tree)."""
    entries = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].suffix == ".safetensors":
        return entries[0]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]  # a zip holding one run folder
    return folder


def _check_readable(staging: Path) -> None:
    """Refuse an upload that no set reader recognises, or whose torch files do not load as
    tensors (a pickle carrying code, a file that claims more than it holds): every load of it
    would refuse it, and it would only clutter the set list."""
    from ladd.sets.base import DistilledFileError, find_reader, is_torch_file, safe_torch_load

    target = loadable(staging)
    if target.is_file() and target.name == "images_best.pt":
        target = target.parent
    try:
        find_reader(target)
        for path in sorted(p for p in staging.rglob("*") if p.is_file() and is_torch_file(p)):
            safe_torch_load(path)  # weights_only: refused, never run
    except DistilledFileError as err:
        message = str(err).replace(str(staging), "the upload")
        raise UploadError(message) from None


def _member_path(zip_name: str, member: str) -> PurePosixPath:
    name = PurePosixPath(member.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts or not name.parts or ":" in name.parts[0]:
        raise UploadError(f"{zip_name}: unsafe member path {member!r}")
    return name


def _copy(src: BinaryIO, dst: Path, budget: ArchiveBudget, total: _Budget, name: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as out:
            while chunk := src.read(CHUNK):
                budget.add_bytes(len(chunk))  # actual bytes, whatever the header declared
                total.add(len(chunk), name)
                out.write(chunk)

    atomic_write(dst, write)


def _extract(zip_path: Path, dest: Path, limits: Limits, total: _Budget) -> None:
    """Unzip into `dest` member by member, counting entries and bytes as they are written."""
    from ladd.data.decode import zip_entry_count

    budget = ArchiveBudget(limits, zip_path.name, zip_path.stat().st_size, total.left)
    declared = zip_entry_count(zip_path)
    if declared is not None:
        budget.check_entry_count(declared)  # before zipfile parses the whole directory
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as err:
        raise UploadError(f"{zip_path.name}: not a readable zip file ({err})") from None
    with zf:
        infos = zf.infolist()
        budget.check_entry_count(len(infos))
        members = [(info, _member_path(zip_path.name, info.filename)) for info in infos]
        for info, rel in members:
            if rel.parts[0] == "__MACOSX":
                continue
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            budget.add_entry(info.file_size)  # the declared size, before anything is written
            if target.exists():
                raise UploadError(f"{zip_path.name}: {info.filename!r} is listed twice")
            try:
                with zf.open(info) as src:
                    _copy(src, target, budget, total, zip_path.name)
            except (zipfile.BadZipFile, NotImplementedError, EOFError) as err:
                raise UploadError(
                    f"{zip_path.name}: cannot unzip {info.filename!r} ({err})"
                ) from None
