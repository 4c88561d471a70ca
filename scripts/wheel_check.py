"""Build the wheel and sdist, install the wheel into a fresh venv, and use it there (`make wheel-check`).

What a new user gets from `pip install "ladd-studio[cli]"`, checked without the app's or Ray's
packages: the fresh venv sees torch, torchvision, numpy and Pillow (and what they depend on)
through a folder of links into this project's venv, added by a .pth file, so that pip counts
them as installed and a multi-GB CUDA wheel is not copied; every other dependency the wheel
declares is installed by pip from the package index as a user's would be. A library import of
something undeclared (tqdm, click outside the cli extra, streamlit, ...) fails here. Then, from a
folder outside the clone: `import ladd` (the installed copy, Streamlit not imported), the guide's
plain-loop example, and `ladd --help`.

    python scripts/wheel_check.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LINKED = ("torch", "torchvision", "numpy", "pillow")  # too large to install again, linked
NEVER = {"streamlit", "ray"}  # must not reach the fresh venv


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names: tuple[str, ...]) -> dict[str, md.Distribution]:
    """The installed distributions `names` need, their requirements' extras followed."""
    found: dict[str, md.Distribution] = {}
    done: set[tuple[str, str]] = set()
    todo: list[tuple[str, str]] = [(n, "") for n in names]
    while todo:
        name, extra = todo.pop()
        name = _norm(name)
        if (name, extra) in done:
            continue
        done.add((name, extra))
        dist = found.setdefault(name, md.distribution(name))
        env = {**default_environment(), "extra": extra}
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(env):
                todo += [(req.name, "")] + [(req.name, e) for e in req.extras]
    return found


def link_tree(dists: dict[str, md.Distribution], folder: Path) -> None:
    """Links to each distribution's top-level files and folders and its dist-info in `folder`."""
    folder.mkdir(parents=True)
    for dist in dists.values():
        base = Path(str(dist.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in sorted(tops):
            src, dst = base / top, folder / top
            if src.exists() and not dst.exists():
                dst.symlink_to(src)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = ap.parse_args()
    t0 = time.monotonic()
    work = args.keep or Path(tempfile.mkdtemp(prefix="ladd-wheel-"))
    try:
        dist = work / "dist"
        run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)])
        wheel = next(dist.glob("ladd_studio-*.whl"))
        sdist = next(dist.glob("ladd_studio-*.tar.gz"))
        names = zipfile.ZipFile(wheel).namelist()
        for need in ("ladd/py.typed", "ladd/__init__.py"):
            assert need in names, f"the wheel lacks {need}"
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "no LICENSE"
        assert not any(n.startswith(("app/", "pages/", "tests/")) for n in names), names[:5]
        meta = (
            zipfile.ZipFile(wheel)
            .read(next(n for n in names if n.endswith(".dist-info/METADATA")))
            .decode()
        )
        assert "License-Expression: MIT" in meta, "licence metadata"
        print(f"built {wheel.name} ({wheel.stat().st_size // 1024} KiB) and {sdist.name}")

        deps = closure(LINKED)
        assert not NEVER & set(deps), f"{NEVER & set(deps)} would be linked"
        link_tree(deps, work / "linked")
        venv = work / "venv"
        run([sys.executable, "-m", "venv", str(venv)])
        py = venv / "bin" / "python"
        site = Path(
            subprocess.check_output(
                [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
            ).strip()
        )
        (site / "linked-deps.pth").write_text(f"{work / 'linked'}\n", encoding="utf-8")
        run([py, "-m", "pip", "install", "--quiet", f"{wheel}[cli]"])
        for name in NEVER:
            probe = subprocess.run([py, "-c", f"import {name}"], capture_output=True)
            assert probe.returncode != 0, f"{name} is importable in the fresh venv"

        outside = work / "outside"  # not the clone: `import ladd` must find the installed copy
        outside.mkdir()
        shutil.copy(ROOT / "docs" / "examples" / "plain_loop.py", outside / "plain_loop.py")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        smoke = (
            "import sys, ladd; "
            f"assert ladd.__file__.startswith({str(venv)!r}), ladd.__file__; "
            "assert 'streamlit' not in sys.modules; "
            "print('import ladd:', ladd.__version__, len(ladd.__all__), 'public names')"
        )
        run([py, "-c", smoke], cwd=outside, env=env)
        run([py, "plain_loop.py"], cwd=outside, env=env)
        run([venv / "bin" / "ladd", "--help"], cwd=outside, env=env, stdout=subprocess.DEVNULL)
        print(f"wheel check passed in {time.monotonic() - t0:.0f} s")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
