"""Saving uploaded distilled-set files into the workspace (uploads/<digest>/), safely.

Accepted: one label-augmented .safetensors file; MTT/DATM tensors (images_best.pt,
labels_best.pt, lr_best.pt); or a .zip of a run folder or of a JPEG/PNG class-folder tree
(SRe2L / RDED layout). Zip members are checked: no absolute paths, no "..", bounded total size.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

MAX_UNZIPPED = 2 * 1024**3  # bytes a zip may expand to
ALLOWED = (".pt", ".pth", ".safetensors", ".zip", ".json", ".jpg", ".jpeg", ".png")


class UploadError(ValueError):
    """An upload the dashboard refuses."""


def save_upload(files: list[Any], uploads_dir: Path) -> Path:
    """Store uploaded files (objects with .name and .getvalue()); return what to load.

    A single .safetensors file is returned as that file; anything else as its folder.
    """
    if not files:
        raise UploadError("no files uploaded")
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.name):
        digest.update(f.name.encode())
        digest.update(f.getvalue())
    folder = uploads_dir / digest.hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        name = PurePosixPath(f.name).name
        if not name or Path(name).suffix.lower() not in ALLOWED:
            raise UploadError(f"{f.name}: unsupported file type (use {', '.join(ALLOWED)})")
        target = folder / name
        target.write_bytes(f.getvalue())
        if target.suffix.lower() == ".zip":
            _extract(target, folder)
            target.unlink()
    return loadable(folder)


def loadable(folder: Path) -> Path:
    """What to load from an upload folder: its lone .safetensors file or lone subfolder, or
    the folder itself (an MTT run folder or a class-folder tree)."""
    entries = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].suffix == ".safetensors":
        return entries[0]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]  # a zip holding one run folder
    return folder


def _extract(zip_path: Path, dest: Path) -> None:
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as err:
        raise UploadError(f"{zip_path.name}: not a readable zip file ({err})") from None
    with zf:
        total = 0
        for info in zf.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts:
                raise UploadError(f"{zip_path.name}: unsafe member path {info.filename!r}")
            total += info.file_size
            if total > MAX_UNZIPPED:
                raise UploadError(f"{zip_path.name}: expands to more than {MAX_UNZIPPED >> 30} GiB")
        members = [i for i in zf.infolist() if not i.filename.startswith("__MACOSX")]
        zf.extractall(dest, members=members)
