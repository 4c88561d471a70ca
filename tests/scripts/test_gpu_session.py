"""scripts/gpu_session.sh rehearsed on the CPU (TINY=1): the study stage writes records on real
CIFAR-10, packs them for the device tool, and a rerun resumes instead of retraining.

Needs env LADD_SHARED_DATA naming a folder with cifar10-jpg.tar.xz (../shared/data).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = os.environ.get("LADD_SHARED_DATA")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not SHARED or not (Path(SHARED) / "cifar10-jpg.tar.xz").is_file(),
        reason="set LADD_SHARED_DATA to a folder holding cifar10-jpg.tar.xz (../shared/data)",
    ),
]


def _session(out: Path) -> str:
    env = {
        **os.environ,
        "TINY": "1",
        "STAGES": "study",
        "OUT": str(out),
        "DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
        # the script calls python3: make it this interpreter (the venv's)
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_session.sh")], env=env, check=True, timeout=1200
    )
    return (out / "session.log").read_text()


def _records(out: Path) -> dict[str, dict]:
    with tarfile.open(out / "results.tgz") as tar:
        names = [m for m in tar.getmembers() if m.name.endswith(".json")]
        return {Path(m.name).name: json.load(tar.extractfile(m)) for m in names}


def test_study_stage_writes_packed_records_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    log = _session(out)
    assert "end study rc=0" in log and "session done" in log
    recs = _records(out)
    assert sorted(recs) == sorted(
        f"cpu-1-random-ipc{ipc}-convnet_d3-{mode}-n5-r0.625-lab{lab}.json"
        for ipc in (1, 10)
        for mode, lab in (("baseline", 0), ("ladd", 1))
    )
    for r in recs.values():
        assert r["epochs"] == 2 and r["seeds"] == 2 and len(r["per_seed"]) == 2
        assert 0.0 <= r["mean"] <= 1.0 and "--distillers random" in r["command"]
        if r["mode"] == "ladd":  # the labeler behind the dense labels, for the discussion
            assert 0.1 < r["labeler_accuracy"] < 1.0
    study_log = (out / "study.txt").read_text()
    assert "training the labeler (1 epochs)" in study_log
    assert "1-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1: " in study_log  # its progress lines
    assert "(100%)" in study_log
    assert not (out / "results").exists()  # packed: the device tool returns only a few files

    # A second session on the same workspace resumes: nothing is trained again.
    (out / "results").mkdir()
    with tarfile.open(out / "results.tgz") as tar:
        tar.extractall(out / "results", filter="data")
    (out / "results.tgz").unlink()
    _session(out)
    again = (out / "study.txt").read_text()
    assert "training the labeler" not in again and "distilling" not in again
    assert _records(out) == recs

    # A study asking for another protocol refuses to pass the old records off as its own.
    cmd = [sys.executable, str(ROOT / "scripts" / "study.py"), "--profile", "cpu", "--epochs", "3"]
    cmd += ["--seeds", "2", "--labeler-epochs", "1", "--parts", "1", "--distillers", "random"]
    cmd += ["--out", str(out / "results"), "--workspace", str(out / "workspace")]
    (out / "results").mkdir()
    with tarfile.open(out / "results.tgz") as tar:
        tar.extractall(out / "results", filter="data")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd + ["--device", "cpu"], env=env, capture_output=True, text=True)
    assert res.returncode != 0
    assert (
        "(epochs, seeds, width, protocol) = (2, 2, 32, 'mtt')" in res.stderr
        and "asks for (3, 2, 32, 'mtt')" in res.stderr
    )

    # Table 6's ConvNet-D3 rows are table 1's run groups: reused, not trained again (a
    # baseline uses no labeler, so the labeler epoch does not tell the two apart).
    cmd = [sys.executable, str(ROOT / "scripts" / "study.py"), "--profile", "cpu", "--epochs", "2"]
    cmd += ["--seeds", "2", "--labeler-epochs", "1", "--parts", "6", "--distiller", "random"]
    cmd += ["--archs", "convnet_d3", "--out", str(out / "results")]
    cmd += ["--workspace", str(out / "workspace"), "--device", "cpu"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert "6-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1: the part 1 run stands in" in res.stdout
    assert "6-random-ipc10-convnet_d3-baseline-n5-r0.625-lab0: the part 1 run stands in" in (
        res.stdout
    )
    made = sorted(p.name for p in (out / "results").glob("cpu-6-*.json"))
    assert made == [
        "cpu-6-random-ipc10-convnet_d3-baseline-n5-r0.625-lab0.json",
        "cpu-6-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1.json",
    ]
    for name in made:  # both borrowed, and marked so
        assert json.loads((out / "results" / name).read_text())["borrowed"] == "the table 1 run"
    assert "train 1/" not in res.stdout + res.stderr  # nothing trained

    # Part 7 (issue 26): LADD with its labels in each codec; float32 is table 1's run group,
    # the others train, each record with its codec's label bytes; baseline and baseline++ beside.
    cmd = [sys.executable, str(ROOT / "scripts" / "study.py"), "--profile", "cpu", "--epochs", "2"]
    cmd += ["--seeds", "2", "--labeler-epochs", "1", "--parts", "7", "--distiller", "random"]
    cmd += ["--codecs", "float32;topk:1,uint8", "--out", str(out / "results")]
    cmd += ["--workspace", str(out / "workspace"), "--device", "cpu"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert "7-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1: the part 1 run stands in" in res.stdout
    part7 = {p.name: json.loads(p.read_text()) for p in (out / "results").glob("cpu-7-*.json")}
    topk = part7["cpu-7-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1-topk_1_uint8_uniform.json"]
    assert topk["codec"] == "topk:1,uint8,uniform" and "borrowed" not in topk
    assert topk["label_bytes_per_image"] == 25 * 2  # one (uint8 index, uint8 value) per crop
    full = part7["cpu-7-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1.json"]
    assert full["codec"] == "float32" and full["label_bytes_per_image"] == 25 * 10 * 4
    labels = sorted(r.get("label", "") for r in part7.values() if r["mode"] == "baseline")
    assert labels == ["baseline", "baseline++"]
