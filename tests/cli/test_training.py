"""The training commands (ladd.cli.training): the cost note from the plan's figures, and the
old `--full-labels set` surfaced as one warning line, not a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ladd.cli import app
from ladd.cli.training import cost_note

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


def _plan(epochs: int):
    """Table 3's LADD-RDED-I at IPC 10 (10,000 images at 224 px, N = 5) as a settled plan."""
    from ladd.models import ModelSpec
    from ladd.plan import SetFacts, TrainPlan
    from ladd.training import TrainConfig

    cfg = TrainConfig(arch="tv_resnet18", mode="ladd", epochs=epochs, seeds=(0,),
                      protocol="rded", lr=0.001, precision="bf16", n=5, r=0.625)  # fmt: skip
    facts = SetFacts(
        digest="0" * 20, images=10_000, num_classes=1000, image_size=224, channels=3,
        label_augmented=True, n=5, r=0.625, codec="topk:3,uint8,uniform", sampler=None, own_lr=None,
        distill_arch="tv_resnet18", format="ladd", source=None, input_space={}, test_space={},
    )  # fmt: skip
    return TrainPlan(
        config=cfg, spec=ModelSpec("tv_resnet18", 1000, 224), device="cuda", engine="sequential",
        compile="off", set=facts, key="k",
    )  # fmt: skip


def test_a_long_training_is_announced_with_its_estimated_time(capsys) -> None:
    """`ladd train` notes the cost model's estimate before a long run (here on one GPU and on 8
    ranks), from the plan's figures, and says what it rests on; nothing for a short run."""
    cost_note(_plan(300), 8)
    err = capsys.readouterr().err
    assert "estimated training time ~3.6 cuda hours, ~0.5 h on 8 ranks" in " ".join(err.split())
    assert "ESTIMATED, not measured" in err
    cost_note(_plan(1), 1)
    assert capsys.readouterr().err == ""


def test_full_labels_set_trains_as_set_soft_with_one_warning_line(shapes_inputs) -> None:
    args = ["train", shapes_inputs["set"], "--source", "shapes", "--mode", "baseline",
            "--full-labels", "set", "--epochs", "1", "--seeds", "1", "--width", "8",
            "--workspace", shapes_inputs["workspace"], "--device", "cpu", "--json"]  # fmt: skip
    res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = [x for x in res.stderr.splitlines() if "deprecated" in x]
    assert lines == [
        "warning: full_labels 'set' is deprecated: say 'set_soft' (the set's own soft labels)"
    ]
    assert "Traceback" not in res.output and "DeprecationWarning" not in res.output
    run_id = json.loads(res.stdout.strip().splitlines()[-1])["run_id"]
    shown = runner.invoke(app, ["runs", "show", str(run_id), "--workspace",
                                str(shapes_inputs["workspace"])])  # fmt: skip
    assert json.loads(shown.stdout)["config"]["train"]["full_labels"] == "set_soft"


def test_full_labels_set_warns_under_pythons_default_warning_filters(tmp_path) -> None:
    """Outside pytest Python hides DeprecationWarnings not raised in __main__: the command line
    still shows this one, as one line, before the command's own error."""
    proc = subprocess.run(
        [sys.executable, "-m", "ladd", "train", str(tmp_path / "missing"), "--full-labels", "set",
         "--workspace", str(tmp_path / "ws")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "warning: full_labels 'set' is deprecated: say 'set_soft' (the set's own soft labels)",
        f"error: {tmp_path / 'missing'}: no such file or folder",
    ]


def test_evaluate_refuses_an_option_no_architecture_takes(shapes_inputs) -> None:
    args = ["evaluate", shapes_inputs["set"], "--archs", "alexnet", "--width", "8",
            "--workspace", shapes_inputs["workspace"], "--device", "cpu"]  # fmt: skip
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 1 and "width" in res.stderr


def test_gpus_inside_a_torchrun_job_is_one_line(shapes_inputs, monkeypatch) -> None:
    """`--gpus` launches ranks (ladd.torchrun.launch_local_ranks); a process that
    is a rank already is told so in one line."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    args = ["train", shapes_inputs["set"], "--gpus", "2", "--device", "cpu",
            "--workspace", shapes_inputs["workspace"]]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["ladd", *map(str, args)])  # what --gpus launches again
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 1
    assert res.stderr.strip() == (
        "error: --gpus inside a torchrun job: torchrun starts the ranks already"
    )
