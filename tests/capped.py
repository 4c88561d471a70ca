"""Running hostile inputs in a child process whose address space is capped.

The child first imports what the scenarios need, then caps its address space (RLIMIT_AS) at
what those imports mapped plus `headroom` (torch alone maps ~3.5 GB of virtual memory, so a
fixed cap would be either too tight to import or too loose to catch anything), and runs each
scenario with 30 s of time. A regression that allocates what a file claims then fails with a
MemoryError (or a timeout) in the child instead of taking the machine down. Each scenario's
outcome comes back as {"done": repr(value)} or {"error": type, "message": text}, plus what it
wrote to stderr.

    results = run_capped(SCENARIOS, {"BOMB": path})  # SCENARIOS defines @scenario functions
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

GIB = 1024**3
HEADROOM = 1 * GIB  # address space the child may map beyond its imports
ROOT = Path(__file__).resolve().parents[1]

HARNESS = """
import contextlib, io, json, os, resource, signal, sys
import torch, torchvision.io
IMPORTS
from torch import nn

def _mapped():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024

_cap = _mapped() + HEADROOM
resource.setrlimit(resource.RLIMIT_AS, (_cap, _cap))

def _alarm(signum, frame):
    raise TimeoutError("still running after 30 s")

signal.signal(signal.SIGALRM, _alarm)
results = {}

def scenario(name, env=None):
    def run(fn):
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        captured = io.StringIO()
        signal.alarm(30)  # a walk that loops fails here instead of hanging the suite
        try:
            with contextlib.redirect_stderr(captured):
                value = fn()
            results[name] = {"done": repr(value)}
        except BaseException as e:
            results[name] = {"error": type(e).__name__, "message": str(e)}
        finally:
            signal.alarm(0)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        results[name]["stderr"] = captured.getvalue()
    return run

@scenario("allocate_2g")
def _():
    return int(torch.empty(2 * 1024**3, dtype=torch.uint8).fill_(1).sum())

@scenario("allocate_100m")
def _():
    return int(torch.ones(100 * 1024**2, dtype=torch.uint8).sum())
"""

DEFAULT_IMPORTS = "import ladd.cli, ladd.data, ladd.dense, ladd.sets  # the baseline"


def run_capped(
    scenarios: str,
    paths: dict[str, Path | str],
    *,
    imports: str = DEFAULT_IMPORTS,
    headroom: int = HEADROOM,
) -> dict:
    """Run `scenarios` (code defining @scenario functions; `paths` become its globals) in one
    capped child with the default caps (no LADD_MAX_* variable); their results by name. The
    harness's own two scenarios, allocate_2g (must fail) and allocate_100m (must pass), come
    back too: a test checks them to know the cap is real."""
    if not sys.platform.startswith("linux"):
        import pytest

        pytest.skip("RLIMIT_AS and /proc/self/status are Linux's")
    prelude = f"HEADROOM = {headroom}\n" + "".join(f"{k} = {str(v)!r}\n" for k, v in paths.items())
    code = prelude + HARNESS.replace("IMPORTS", imports) + scenarios
    code += '\nprint("RESULTS " + json.dumps(results))\n'
    env = {k: v for k, v in os.environ.items() if not k.startswith("LADD_MAX_")}  # defaults
    env.update(
        OMP_NUM_THREADS="1",
        MALLOC_ARENA_MAX="2",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULTS "))
