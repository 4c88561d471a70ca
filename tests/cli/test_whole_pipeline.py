"""Every command group end to end on `shapes` through the command line: a labeler, a
random-real set, dense labels, their overhead and statistics, training, cross-architecture
evaluation, and the runs database; JSON output and the engine line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ladd.cli import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_whole_pipeline_on_shapes(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    common = ["--workspace", ws, "--device", "cpu"]
    res = invoke(
        "train-labeler",
        "--source",
        "shapes",
        "--epochs",
        "2",
        "--save-at",
        "1,2",
        "--limit-per-class",
        "30",
        "--width",
        "8",
        "--out",
        tmp_path / "lab",
        *common,
        "--json",
    )
    assert res.exit_code == 0, res.output
    lab = json.loads(res.stdout.strip().splitlines()[-1])
    assert [c["epoch"] for c in lab["checkpoints"]] == [1, 2]
    ckpt = lab["checkpoints"][-1]["path"]

    res = invoke(
        "random-real",
        "--source",
        "shapes",
        "--ipc",
        "2",
        "--out",
        tmp_path / "rr",
        "--workspace",
        ws,
    )
    assert res.exit_code == 0, res.output
    res = invoke("info", tmp_path / "rr")
    assert res.exit_code == 0 and "ipc" in res.output

    la_file = tmp_path / "la.safetensors"
    res = invoke(
        "augment",
        tmp_path / "rr",
        "--labeler",
        ckpt,
        "--n",
        "3",
        "--r",
        "0.625",
        "--out",
        la_file,
        *common,
    )
    assert res.exit_code == 0, res.output
    assert str(la_file) in res.output and la_file.is_file()
    # Without --codec the file stores its labels in the default codec (top-3 uint8, the study's
    # pick), and says so in its header.
    from ladd.codecs import DEFAULT_CODEC, parse_codec
    from ladd.sets.augmented import file_codec

    assert file_codec(la_file) == parse_codec(DEFAULT_CODEC).spec == "topk:3,uint8,uniform"

    res = invoke("overhead", la_file)
    assert res.exit_code == 0
    assert re.fullmatch(r"overhead: \d+\.\d\d%", res.output.strip().splitlines()[-1])

    res = invoke("info", la_file)
    assert res.exit_code == 0 and "hard + dense" in res.output
    res = invoke("stats", la_file, "--labeler", tmp_path / "lab", "--device", "cpu")
    assert res.exit_code == 0 and "agreement" in res.output

    res = invoke(
        "train",
        la_file,
        "--source",
        "shapes",
        "--mode",
        "ladd",
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--width",
        "8",
        *common,
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(out) >= {
        "accuracy_mean",
        "accuracy_std",
        "per_seed",
        "per_class",
        "seconds",
        "flops",
        "run_id",
    }
    assert len(out["per_seed"]) == 2 and len(out["per_class"]) == 10 and out["flops"] > 0
    # how the fast trainer ran, for the end-to-end benchmark (compile vs train seconds)
    assert out["engine"]["engine"] in ("stacked", "sequential")
    assert 0.0 <= out["engine"]["seconds_train"] <= out["seconds"]
    # and in words, for a person at the terminal
    line = next(x for x in res.stdout.splitlines() if x.startswith("engine: "))
    assert out["engine"]["engine"] in line and "s training" in line
    run_dir = ws / "runs" / str(out["run_id"])
    assert (run_dir / "model_seed0.safetensors").is_file() and (
        run_dir / "model_seed1.safetensors"
    ).is_file()

    res = invoke(
        "evaluate",
        la_file,
        "--archs",
        "convnet_d1,convnet_d2",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--width",
        "8",
        *common,
        "--json",
    )
    assert res.exit_code == 0, res.output
    ev = json.loads(res.stdout.strip().splitlines()[-1])
    assert [r["arch"] for r in ev["table"]] == ["convnet_d1", "convnet_d2"]

    res = invoke("train", la_file, "--mode", "nonsense", "--epochs", "1", *common)
    assert res.exit_code == 1 and "unknown mode" in res.output

    res = invoke("runs", "list", "--workspace", ws)
    assert res.exit_code == 0
    for kind in ("labeler", "augment", "train", "evaluate"):
        assert kind in res.output
    res = invoke("runs", "show", str(out["run_id"]), "--workspace", ws)
    assert json.loads(res.stdout.strip().splitlines()[-1])["status"] == "done"
    res = invoke("runs", "export", tmp_path / "runs.csv", "--workspace", ws)
    assert res.exit_code == 0 and (tmp_path / "runs.csv").read_text().count("\n") >= 5
    assert invoke("runs", "show", "999", "--workspace", ws).exit_code == 1
