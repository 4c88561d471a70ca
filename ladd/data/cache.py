"""The decoded-image cache: uint8 tensors in safetensors files, with a JSON sidecar.

Decoding JPEGs is the slow part of loading a source (tens of seconds for CIFAR-10, minutes for
an ImageNet subset); reading back the decoded tensors takes a fraction of a second. Each entry
is two files, `<key>.safetensors` (images, labels) and `<key>.json` (class names, mean, std,
and a fingerprint of what it was decoded from). Both are written through ladd.files (temporary
file, fsync, rename), so a crashed or concurrent writer never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ladd.files import save_tensors, write_json

CACHE_FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """Where decoded sources are cached when no `cache_dir` is passed: env LADD_CACHE_DIR, else
    the user's cache folder, `$XDG_CACHE_HOME/ladd` (default `~/.cache/ladd`), as torch.hub
    keeps its files under ~/.cache/torch. Never relative to the current folder: a script run
    from another folder finds the same cache. (The command line and the dashboard cache in
    their workspace, `ladd-workspace/cache`: ladd.store.Workspace.cache_dir.)"""
    env = os.environ.get("LADD_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ladd"


def resolve_cache_dir(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else default_cache_dir()


def path_digest(path: str | Path, length: int = 10) -> str:
    """A short stable hash of a path's absolute form, for cache keys."""
    text = str(Path(path).expanduser().resolve())
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def file_fingerprint(path: str | Path) -> str:
    """Size and modification time of a file or folder: changes when it is replaced."""
    stat = Path(path).stat()
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key)


@dataclass
class CachedSplit:
    """One cache entry read back."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    meta: dict


def entry_paths(cache_dir: str | Path, key: str) -> tuple[Path, Path]:
    """(tensor file, JSON sidecar) for a cache key."""
    base = Path(cache_dir) / _slug(key)
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def save_split(
    cache_dir: str | Path, key: str, images: torch.Tensor, labels: torch.Tensor, meta: dict
) -> Path:
    """Store one decoded split; returns the tensor file's path."""
    tensor_path, meta_path = entry_paths(cache_dir, key)
    tensors = {
        "images": images.detach().to("cpu", torch.uint8).contiguous(),
        "labels": labels.detach().to("cpu", torch.int64).contiguous(),
    }
    save_tensors(tensor_path, tensors)
    sidecar = dict(meta, count=int(labels.shape[0]), version=CACHE_FORMAT_VERSION)
    write_json(meta_path, sidecar)  # written last: its presence marks a whole entry
    return tensor_path


def load_split(cache_dir: str | Path, key: str) -> CachedSplit | None:
    """Read a cache entry, or None when absent, stale (other format version) or unreadable."""
    tensor_path, meta_path = entry_paths(cache_dir, key)
    if not (meta_path.is_file() and tensor_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("version") != CACHE_FORMAT_VERSION:
            return None
        tensors = load_file(tensor_path)
        images, labels = tensors["images"], tensors["labels"]
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        warnings.warn(f"ignoring unreadable cache entry {tensor_path}: {err}", stacklevel=2)
        return None
    if int(labels.shape[0]) != meta.get("count") or images.shape[0] != labels.shape[0]:
        warnings.warn(f"ignoring inconsistent cache entry {tensor_path}", stacklevel=2)
        return None
    return CachedSplit(images, labels, meta)
