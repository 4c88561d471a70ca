"""scripts/gpu_session.sh rehearsed on the CPU (TINY=1): the study stage writes records on real
CIFAR-10, packs them for the device tool, and a rerun resumes instead of retraining. The
session runs as the device machine runs it (bash); the later calls of scripts/study.py run in
this process (its main(), its command line set), as `python scripts/study.py ...` runs it.

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


def _study(*args: str) -> None:
    """`PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/study.py ARGS`, in this process."""
    import contextlib
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("study", ROOT / "scripts" / "study.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["study"] = mod  # dataclasses look their module up there
    argv, threads = sys.argv, torch.get_num_threads()
    sys.argv = ["scripts/study.py", *args]
    torch.set_num_threads(1)
    try:
        spec.loader.exec_module(mod)
        with contextlib.chdir(ROOT):
            mod.main()
    finally:
        sys.argv = argv
        torch.set_num_threads(threads)
        sys.modules.pop("study", None)


def _records(out: Path) -> dict[str, dict]:
    with tarfile.open(out / "results.tgz") as tar:
        names = [m for m in tar.getmembers() if m.name.endswith(".json")]
        return {Path(m.name).name: json.load(tar.extractfile(m)) for m in names}


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[Path, str]:
    """One rehearsed session (its out folder and log), shared by the tests below in order:
    each later test goes on from what the one before it left."""
    out = tmp_path_factory.mktemp("gpu-session") / "out"
    return out, _session(out)


def test_study_stage_writes_packed_records(session) -> None:
    out, log = session
    assert "end study rc=0" in log and "session done" in log
    recs = _records(out)
    assert sorted(recs) == sorted(
        f"cpu-1-random-ipc{ipc}-convnet_d3-{mode}-n5-r0.625-lab{lab}.json"
        for ipc in (1, 10)
        for mode, lab in (("baseline", 0), ("ladd", 1))
    )
    for r in recs.values():
        assert r["epochs"] == 1 and r["seeds"] == 2 and len(r["per_seed"]) == 2
        assert 0.0 <= r["mean"] <= 1.0 and "--distillers random" in r["command"]
        if r["mode"] == "ladd":  # the labeler behind the dense labels, for the discussion
            assert 0.1 < r["labeler_accuracy"] < 1.0
    study_log = (out / "study.txt").read_text()
    assert "training the labeler (1 epochs)" in study_log
    assert "1-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1: " in study_log  # its progress lines
    assert "(100%)" in study_log
    assert not (out / "results").exists()  # packed: the device tool returns only a few files


def test_a_second_session_resumes(session) -> None:
    """A second session on the same workspace: nothing is trained again."""
    out, _ = session
    recs = _records(out)
    (out / "results").mkdir()
    with tarfile.open(out / "results.tgz") as tar:
        tar.extractall(out / "results", filter="data")
    (out / "results.tgz").unlink()
    _session(out)
    again = (out / "study.txt").read_text()
    assert "training the labeler" not in again and "distilling" not in again
    assert _records(out) == recs


def test_later_studies_refuse_another_protocol_and_reuse_part_1(session, capsys) -> None:
    """A study asking for another protocol refuses to pass the old records off as its own;
    parts 6 and 7 reuse part 1's run groups and train only what they add."""
    out, _ = session
    cmd = ["--profile", "cpu", "--epochs", "3"]
    cmd += ["--seeds", "2", "--labeler-epochs", "1", "--parts", "1", "--distillers", "random"]
    cmd += ["--out", str(out / "results"), "--workspace", str(out / "workspace")]
    (out / "results").mkdir()
    with tarfile.open(out / "results.tgz") as tar:
        tar.extractall(out / "results", filter="data")
    with pytest.raises(SystemExit) as refused:
        _study(*cmd, "--device", "cpu")
    said = str(refused.value.code)
    assert "(epochs, seeds, width, protocol) = (1, 2, 32, 'mtt')" in said
    assert "asks for (3, 2, 32, 'mtt')" in said
    capsys.readouterr()

    # Table 6's ConvNet-D3 rows are table 1's run groups: reused, not trained again (a
    # baseline uses no labeler, so the labeler epoch does not tell the two apart).
    cmd = ["--profile", "cpu", "--epochs", "1"]
    cmd += ["--seeds", "2", "--labeler-epochs", "1", "--parts", "6", "--distiller", "random"]
    cmd += ["--archs", "convnet_d3", "--out", str(out / "results")]
    cmd += ["--workspace", str(out / "workspace"), "--device", "cpu"]
    _study(*cmd)
    res = capsys.readouterr()
    assert "6-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1: the part 1 run stands in" in res.out
    assert "6-random-ipc10-convnet_d3-baseline-n5-r0.625-lab0: the part 1 run stands in" in (
        res.out
    )
    made = sorted(p.name for p in (out / "results").glob("cpu-6-*.json"))
    assert made == [
        "cpu-6-random-ipc10-convnet_d3-baseline-n5-r0.625-lab0.json",
        "cpu-6-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1.json",
    ]
    for name in made:  # both borrowed, and marked so
        assert json.loads((out / "results" / name).read_text())["borrowed"] == "the table 1 run"
    assert "train 1/" not in res.out + res.err  # nothing trained

    # Part 7 (issue 26): LADD with its labels in each codec; float32 is table 1's run group,
    # the others train, each record with its codec's label bytes; baseline and baseline++ beside.
    cmd = ["--profile", "cpu", "--epochs", "1"]
    cmd += ["--seeds", "2", "--labeler-epochs", "1", "--parts", "7", "--distiller", "random"]
    cmd += ["--codecs", "float32;topk:1,uint8", "--out", str(out / "results")]
    cmd += ["--workspace", str(out / "workspace"), "--device", "cpu"]
    _study(*cmd)
    res = capsys.readouterr()
    assert "7-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1: the part 1 run stands in" in res.out
    part7 = {p.name: json.loads(p.read_text()) for p in (out / "results").glob("cpu-7-*.json")}
    topk = part7["cpu-7-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1-topk_1_uint8_uniform.json"]
    assert topk["codec"] == "topk:1,uint8,uniform" and "borrowed" not in topk
    assert topk["label_bytes_per_image"] == 25 * 2  # one (uint8 index, uint8 value) per crop
    full = part7["cpu-7-random-ipc10-convnet_d3-ladd-n5-r0.625-lab1.json"]
    assert full["codec"] == "float32" and full["label_bytes_per_image"] == 25 * 10 * 4
    labels = sorted(r.get("label", "") for r in part7.values() if r["mode"] == "baseline")
    assert labels == ["baseline", "baseline++"]
