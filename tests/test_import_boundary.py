"""The core knows nothing of its front ends: importing ladd never imports Streamlit (or the
CAM library, which loads only when a map is computed)."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "ladd",
    "ladd.dsa",
    "ladd.cam",
    "ladd.data",
    "ladd.demo",
    "ladd.dense",
    "ladd.deploy",
    "ladd.device",
    "ladd.sets",
    "ladd.labeler",
    "ladd.models",
    "ladd.store",
    "ladd.subsample",
]


def test_importing_the_core_never_imports_streamlit_plotly_or_gradcam():
    code = (
        "import importlib, sys\n"
        f"for m in {MODULES!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = [m for m in ('streamlit', 'plotly', 'pytorch_grad_cam') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
