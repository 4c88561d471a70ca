"""The core knows nothing of its front ends: importing any module of ladd/ never imports
Streamlit, Plotly or the CAM library (which loads only when a map is computed), and the modules
of ladd/ import each other without cycles."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import ladd

LADD = Path(ladd.__file__).resolve().parent


def every_module() -> list[str]:
    """Every module and package of ladd/, found by walking the package (not listed by hand)."""
    names = ["ladd"]
    for info in pkgutil.walk_packages([str(LADD)], prefix="ladd."):
        if not info.name.endswith(".__main__"):  # `python -m ladd`: importing it runs the CLI
            names.append(info.name)
    return sorted(names)


def test_the_walk_finds_the_modules_a_hand_list_once_missed():
    found = set(every_module())
    assert {"ladd.trainers.stacked", "ladd.distill", "ladd.flops", "ladd.progress"} <= found
    assert {"ladd.training.checkpoint", "ladd.plan", "ladd.sweep.runner"} <= found  # packages
    assert len(found) >= 30


def test_importing_the_core_never_imports_streamlit_plotly_or_gradcam():
    code = (
        "import importlib, sys\n"
        f"for m in {every_module()!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = [m for m in ('streamlit', 'plotly', 'pytorch_grad_cam') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def _imports(path: Path, module: str) -> set[str]:
    """The ladd modules `path` imports at any depth (function-level imports included)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("ladd")}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if base.startswith("ladd"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}
    return out


def test_no_import_cycle_inside_ladd():
    modules = set(every_module())
    files = {}
    for name in modules:
        rel = name.split(".")[1:]
        p = LADD.joinpath(*rel)
        files[name] = p / "__init__.py" if p.is_dir() else p.with_suffix(".py")
    graph = {m: {t for t in _imports(f, m) if t in modules and t != m} for m, f in files.items()}
    # A package's __init__ importing its own submodules is how registries fill (timm's layout):
    # count only edges that leave the package or go up to a parent.
    for m in graph:
        graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m)


def test_the_home_page_modules_never_import_torchvision():
    """Issue 25 item 7: torchvision (its io module alone took ~2.4 s) loads when an image file is
    first decoded or a torchvision download is asked for, not while the home page first renders."""
    code = (
        "import sys\n"
        "import ladd.demo, ladd.data.decode, ladd.sets, ladd.pipeline, app.cache, app.widgets, app.tasks\n"
        "assert 'torchvision' not in sys.modules, sorted(m for m in sys.modules if 'torchvision' in m)[:5]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
