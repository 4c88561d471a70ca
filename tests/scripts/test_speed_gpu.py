"""scripts/speed_gpu.sh rehearsed on the CPU (TINY=1): every stage runs at smoke sizes and writes
its records into one JSON list that bench.speed_report renders; the budget skips what it cannot
fit. (Timings on this CPU mean nothing; the plumbing is what is checked.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "speed_gpu.sh"
pytestmark = pytest.mark.slow


def _session(out: Path, work: Path, **extra: str) -> str:
    env = {
        **os.environ,
        "TINY": "1",
        "DEVICE": "cpu",
        "OUT": str(out),
        "SPEED_WORK": str(work),
        "OMP_NUM_THREADS": "1",
        # the script calls python3: make it this interpreter (the venv's)
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **extra,
    }
    env.pop("LADD_SHARED_DATA", None)  # the rehearsal needs no CIFAR-10 (shapes at 32 px)
    subprocess.run(["bash", str(SCRIPT)], env=env, check=True, timeout=2400)
    return (out / "session.log").read_text()


def test_every_stage_runs_and_the_report_renders_its_records(tmp_path: Path) -> None:
    out = tmp_path / "out"
    log = _session(out, tmp_path / "work", BUDGET="3000")
    stages = ("info", "prep32", "e2e32", "short", "dense", "eval", "parity", "levers32", "cost")
    for name in stages:
        assert f"end {name} rc=0" in log, log
    assert "session done" in log
    assert "e2e128" not in log and "levers128" not in log  # the rehearsal is 32 px only
    recs = json.loads((out / "speed.json").read_text())
    kinds = {r.get("kind") for r in recs}
    assert {"e2e", "dense", "eval", "lever", "cost"} <= kinds
    assert any(r["config"] == "accuracy-parity" for r in recs)
    for r in recs:
        assert r["schema"] == "ladd-bench/1" and r["date"] and r["command"] and r["card"]
    e2e = {r["run"]: r for r in recs if r.get("kind") == "e2e"}
    assert {"reference-1seed", "ours-cold", "ours-warm", "summary", "summary-short"} <= set(e2e)
    assert all(e2e[k]["wall_s"] > e2e[k]["train_s"] > 0 for k in ("ours-cold", "ours-warm"))
    # the short stage: 1 seed, every run measured, the engine each short run used on record
    shorts = [r for r in recs if r.get("run") == "summary-short" and r["seeds"] == 1]
    assert len(shorts) == 1 and shorts[0]["measured"] and shorts[0]["engine"]
    runs = {r["run"]: r for r in recs if r.get("kind") == "e2e" and r.get("args")}
    assert runs["ours-2ep-cold"]["engine"] and "--seeds" in runs["ours-2ep-cold"]["args"]
    stages = (out / "stages.txt").read_text()
    assert "### `ladd train`" in stages and "### Cost model" in stages
    assert "### Levers" in stages and "### Dense labels" in stages
    assert sorted(p.name for p in out.iterdir()) == ["session.log", "speed.json", "stages.txt"]


def test_a_spent_budget_skips_stages_instead_of_overrunning(tmp_path: Path) -> None:
    log = _session(tmp_path / "out", tmp_path / "work", BUDGET="5")
    assert "skip info: budget spent" in log and "skip cost: budget spent" in log
    assert "start " not in log and "session done" in log
