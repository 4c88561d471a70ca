"""scripts/sweep_gpu.py (run by scripts/sweep_gpu.sh on the device machine) rehearsed on the
CPU at smoke sizes (SWEEP_TINY): the serial loop and the Ray executor run the same cells to the
same accuracies and the record says so. The script runs in this process on the test run's one
Ray instance (it uses an instance it finds up and leaves it up)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_shell_wrapper_runs_the_python_script():
    """What sweep_gpu.sh adds is plumbing (the path, the data, a cap, a copy of the output):
    it parses, and it runs scripts/sweep_gpu.py under its cap."""
    sh = ROOT / "scripts" / "sweep_gpu.sh"
    assert subprocess.run(["bash", "-n", str(sh)], capture_output=True).returncode == 0
    text = sh.read_text()
    assert 'timeout --kill-after=10 "${CAP:-590}" python3 -u scripts/sweep_gpu.py' in text
    assert 'export PYTHONPATH=".' in text and 'exit "${PIPESTATUS[0]}"' in text


@pytest.mark.slow
def test_gpu_script_rehearses_on_the_cpu(tmp_path, monkeypatch, capsys, ray_instance):
    monkeypatch.setenv("SWEEP_TINY", "1")
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    monkeypatch.setenv("LADD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    sys.modules.pop("sweep_gpu", None)
    import sweep_gpu

    try:
        assert sweep_gpu.main() == 0
    finally:
        sys.modules.pop("sweep_gpu", None)
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "out" / "sweep_gpu.json").read_text())
    assert record["tiny"] is True
    assert [r["executor"] for r in record["runs"]] == ["serial", "ray-gpu1"]
    serial, ray_ = record["runs"]
    assert serial["status"] == ray_["status"] == "done"
    assert serial["ran"] == ray_["ran"] == 2
    assert serial["accuracy"] == ray_["accuracy"]  # same cells, same seeds, CPU: same numbers
    assert "serial" in out and "ray-gpu1" in out
    assert ray_instance.is_initialized()  # the script left the suite's instance up
    shutil.rmtree(tmp_path / "out", ignore_errors=True)
