"""Which server paths the dashboard may read: the workspace and folders the user configured.

A path typed into the dashboard is resolved (symlinks followed) and must lie inside the workspace
(env LADD_WORKSPACE, default ./ladd-workspace) or one of the folders listed in env
LADD_ALLOWED_DIRS (separated by os.pathsep) or LADD_SHARED_DATA. Anything else is refused,
including a folder whose class folders are symlinks to elsewhere (check_tree) and a set whose
recorded source is `imagefolder:<path outside>` (check_source).
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
    if p.is_dir():
        check_tree(p)
    return p


def check_tree(folder: Path) -> None:
    """PathNotAllowed when a folder the dashboard reads reaches outside the allowed roots
    through a symlink anywhere below it (a class folder or a file linked to elsewhere).

    Every symlink is resolved; linked folders inside the roots are searched too, each once
    (a link loop ends the search of that branch, as it ends the readers' walk).
    """
    roots = allowed_roots()
    seen: set[tuple[int, int]] = set()
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            st = os.stat(current)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(current) as it:
                entries = list(it)
        except OSError:
            continue  # unreadable: the reader will say so
        for entry in entries:
            if entry.is_symlink():
                try:
                    target = Path(entry.path).resolve()
                except (OSError, RuntimeError):  # a loop of links leads nowhere: not read
                    continue
                if not any(target == root or target.is_relative_to(root) for root in roots):
                    raise PathNotAllowed(
                        f"{entry.path} is a symlink to {target}, outside the folders the "
                        "dashboard may read; add that folder to LADD_ALLOWED_DIRS to allow it"
                    )
                if target.is_dir():
                    stack.append(target)
            elif entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))


def check_source(name: str) -> str:
    """The source name a dashboard job may load: `imagefolder:<path>` only inside the allowed
    roots (a set's recorded source is data, not a permission); registered names unchanged.

    Returns the name with an imagefolder path resolved (as ladd resolves it: relative to the
    current folder), so that the checked path is the one loaded.
    """
    from ladd.data import IMAGEFOLDER_PREFIX

    if not name.startswith(IMAGEFOLDER_PREFIX):
        return name
    text = name[len(IMAGEFOLDER_PREFIX) :].strip()
    if not text:
        raise PathNotAllowed("imagefolder: names no folder")
    p = Path(text).expanduser().resolve()
    if not is_allowed(p):
        roots = ", ".join(str(r) for r in allowed_roots())
        raise PathNotAllowed(
            f"the source {p} is outside the folders the dashboard may read ({roots}); "
            "add its folder to LADD_ALLOWED_DIRS to allow it"
        )
    if p.is_dir():
        check_tree(p)
    return f"{IMAGEFOLDER_PREFIX}{p}"
