"""Which server paths the dashboard may read: the workspace and folders the user configured.

A path typed into the dashboard is resolved (symlinks followed) and must lie inside the workspace
(env LADD_WORKSPACE, default ./ladd-workspace) or one of the folders listed in env
LADD_ALLOWED_DIRS (separated by os.pathsep) or LADD_SHARED_DATA. Anything else is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from ladd.store import DEFAULT_WORKSPACE


class PathNotAllowed(ValueError):
    """A path outside the workspace and the configured folders."""


def workspace_root() -> Path:
    """The workspace folder (absolute; created on first use by ladd.store)."""
    root = os.environ.get("LADD_WORKSPACE") or DEFAULT_WORKSPACE
    return Path(root).expanduser().resolve()


def allowed_roots() -> list[Path]:
    """The workspace first, then every configured folder that exists."""
    roots = [workspace_root()]
    extra = os.environ.get("LADD_ALLOWED_DIRS", "").split(os.pathsep)
    extra.append(os.environ.get("LADD_SHARED_DATA", ""))
    for item in extra:
        item = item.strip()
        if not item:
            continue
        p = Path(item).expanduser().resolve()
        if p.is_dir() and p not in roots:
            roots.append(p)
    return roots


def is_allowed(path: str | Path) -> bool:
    """True when `path` (resolved) is inside one of the allowed roots."""
    p = Path(path).expanduser().resolve()
    return any(p == root or p.is_relative_to(root) for root in allowed_roots())


def check_path(path: str | Path, *, must_exist: bool = True) -> Path:
    """The resolved path if the dashboard may read it; PathNotAllowed / FileNotFoundError if not.

    Relative paths are taken relative to the workspace.
    """
    text = str(path).strip()
    if not text:
        raise PathNotAllowed("no path given")
    p = Path(text).expanduser()
    if not p.is_absolute():
        p = workspace_root() / p
    p = p.resolve()
    if not is_allowed(p):
        roots = ", ".join(str(r) for r in allowed_roots())
        raise PathNotAllowed(
            f"{p} is outside the folders the dashboard may read ({roots}); "
            "add its folder to LADD_ALLOWED_DIRS to allow it"
        )
    if must_exist and not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    return p
