"""Where compiled kernels live: the compile cache's folder (one per torch version), the folder a
compiled step uses, and, for a front end that owns its process, pointing inductor at it. Not a
training layer: the command line and the dashboard set the cache up before they plan;
ladd.trainers.compile keeps its index of compiled steps there.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["active_compile_cache", "compile_cache_dir", "use_compile_cache"]


def compile_cache_dir(root: str | Path | None = None) -> Path:
    """Where compiled kernels are kept: `root` when given, else env LADD_COMPILE_CACHE, else
    `<decoded-data cache>/compile` (env LADD_CACHE_DIR, else ./ladd-workspace/cache/compile).
    One folder per torch version, since kernels of one version do not serve another."""
    if root is None:
        env = os.environ.get("LADD_COMPILE_CACHE")
        if env:
            root = Path(env)
        else:
            from ladd.data.cache import default_cache_dir

            root = default_cache_dir() / "compile"
    version = torch.__version__.replace("+", "_")
    return Path(root).expanduser().resolve() / f"torch-{version}"


def active_compile_cache(folder: str | Path | None = None) -> Path:
    """The compile cache a compiled step uses (its index lives there), created, with no change
    to the process: `folder` when given, else the inductor cache the process points at when a
    front end or the user set one (TORCHINDUCTOR_CACHE_DIR), else `compile_cache_dir()`."""
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if folder is None and current and Path(current).resolve() != _torch_default_dir().resolve():
        path = Path(current).resolve()
    else:
        path = Path(folder).expanduser().resolve() if folder is not None else compile_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def use_compile_cache(folder: str | Path | None = None) -> Path:
    """For a front end (the command line, the dashboard), which owns its process: point
    inductor's on-disk caches at `folder` (default `compile_cache_dir()`) and create it.

    Inductor reads its cache location from the environment (TORCHINDUCTOR_CACHE_DIR) for the
    whole process, so this sets that variable; the library itself never does (it reads the
    folder with `active_compile_cache`). An explicit TORCHINDUCTOR_CACHE_DIR that the user set
    (not torch's own per-user default in the temp folder) wins and is returned.
    """
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if folder is None and current and Path(current).resolve() != _torch_default_dir().resolve():
        return active_compile_cache()
    path = active_compile_cache(folder if folder is not None else compile_cache_dir())
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    return path


def _torch_default_dir() -> Path:
    """Inductor's own default cache folder (per user, in the temp folder)."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # older layouts: the same rule, spelled here
        import getpass
        import tempfile

        return Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}"
    return Path(default_cache_dir())
