"""The command line: help everywhere, the whole pipeline on `shapes`, JSON output, clear errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ladd.cli import app

runner = CliRunner()
COMMANDS = [
    "info",
    "sources",
    "models",
    "random-real",
    "train-labeler",
    "import-labeler",
    "augment",
    "overhead",
    "stats",
    "train",
    "evaluate",
    "runs",
    "runs list",
    "runs show",
    "runs export",
]


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: str) -> object:
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_on_every_command(command: str) -> None:
    res = invoke(*command.split(), "--help")
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output


def test_shared_options_come_from_one_definition() -> None:
    """--device, --workspace and --debug are one definition (ladd.cli._job_options /
    _place_options): every command that takes one spells it, defaults it and helps it alike,
    and every command that runs on a device takes all three."""
    import typer.main

    def walk(group, prefix=""):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from walk(cmd, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}", cmd

    seen: dict[str, set] = {"--device": set(), "--workspace": set(), "--debug": set()}
    for name, cmd in walk(typer.main.get_command(app)):
        opts = {o: p for p in cmd.params for o in getattr(p, "opts", ())}
        if "--device" in opts:
            assert {"--workspace", "--debug"} <= set(opts), name
        for flag, forms in seen.items():
            if flag in opts:
                p = opts[flag]
                forms.add((tuple(p.opts), str(p.default), p.help))
    assert all(len(forms) == 1 for forms in seen.values()), seen
    assert {name for name, _ in walk(typer.main.get_command(app))} >= set(COMMANDS) - {"runs"}


def test_module_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ladd.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "train-labeler" in proc.stdout and "overhead" in proc.stdout


def test_listings() -> None:
    assert "shapes" in invoke("sources").output
    assert "convnet_d3" in invoke("models").output


def test_bad_file_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    res = invoke("info", bad)
    assert res.exit_code == 1
    assert "error:" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    with pytest.raises(Exception, match="not a recognised"):
        invoke("info", bad, "--debug")  # --debug lets the traceback through
    res = invoke("overhead", tmp_path / "missing.safetensors")
    assert res.exit_code == 1 and "no such file" in res.output


def test_bad_arguments_exit_nonzero(tmp_path: Path) -> None:
    assert invoke("train-labeler", "--source", "shapes", "--epochs", "0").exit_code == 2
    res = invoke("train-labeler", "--source", "shapes", "--save-at", "a,b", "--workspace", tmp_path)
    assert res.exit_code == 2 and "integers" in res.output
    res = invoke("train-labeler", "--source", "nope", "--workspace", tmp_path, "--epochs", "1")
    assert res.exit_code == 1 and "nope" in res.output


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
    # Without --codec the file stores its labels in the default codec (top-5 uint8, the study's
    # paired pick), and says so in its header.
    from ladd.codecs import DEFAULT_CODEC, parse_codec
    from ladd.sets.augmented import file_codec

    assert file_codec(la_file) == parse_codec(DEFAULT_CODEC).spec == "topk:5,uint8,uniform"

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


def test_sigterm_marks_a_cli_run_failed_at_once(tmp_path):
    import os
    import signal
    import time

    from ladd.store import Workspace

    ws = tmp_path / "ws"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ladd.cli",
            "train-labeler",
            "--source",
            "shapes",
            "--epochs",
            "500",
            "--save-at",
            "500",
            "--width",
            "8",
            "--limit-per-class",
            "20",
            "--device",
            "cpu",
            "--workspace",
            str(ws),
            "--out",
            str(tmp_path / "lab"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        db = Workspace(ws).db
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (ws / "runs.sqlite").exists() and [r.status for r in db.list_runs()] == ["running"]:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the run never started")
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    run = db.get_run(db.list_runs()[0].id)
    assert run.status == "failed"
    assert "terminated by signal" in (run.error or "")


def test_user_text_is_never_parsed_as_rich_markup(tmp_path: Path) -> None:
    """A path or class name with "[/...]" in it printed a MarkupError traceback, and a value
    range "[nan, nan]" was blanked: every user-supplied string prints as it is."""
    res = invoke("info", tmp_path / "x[/y]")
    assert res.exit_code == 1 and "x[/y]" in res.output and "Traceback" not in res.output
    from PIL import Image

    for name in ("[bold]", "[red]b"):  # folder names cannot hold "/": rich would eat these tags
        folder = tmp_path / "set" / name
        folder.mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(folder / f"{i}.png")
    res = invoke("info", tmp_path / "set")
    assert res.exit_code == 0, res.output
    assert "[bold]" in res.output and "[red]b" in res.output


def test_set_options_on_the_command_line(tmp_path: Path) -> None:
    """`ladd info` describes an MTT run folder without knowing its normalisation; --mean/--std,
    --format and --experiment reach the reader; a label-augmented file loads whatever its name."""
    import torch

    run = tmp_path / "mtt_run"
    run.mkdir()
    g = torch.Generator().manual_seed(0)
    torch.save(torch.randn(20, 3, 16, 16, generator=g), run / "images_best.pt")
    torch.save(torch.arange(10).repeat_interleave(2), run / "labels_best.pt")
    res = invoke("info", run)
    assert res.exit_code == 0, res.output
    assert "unknown" in res.output and "--source" in res.output  # normalisation: unknown
    res = invoke("info", run, "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25")
    assert res.exit_code == 0 and "0.25" in res.output
    res = invoke("info", run, "--mean", "0.5,0.5,0.5")
    assert res.exit_code == 2 and "--std" in res.output
    res = invoke("info", run, "--format", "nope")
    assert res.exit_code == 2 and "mtt" in res.output
    res = invoke("stats", run, "--workspace", tmp_path / "ws", "--source", "shapes")
    assert res.exit_code == 1 and "--labeler" in res.output  # the option exists; this needs more


def test_a_long_training_is_announced_with_its_estimated_time(capsys) -> None:
    """`ladd train` notes the cost model's estimate before a long run (here Table 3's LADD-RDED-I
    on one GPU and on 8 ranks) and says what it rests on; nothing for a short run."""
    import torch

    from ladd.cli import _cost_note
    from ladd.training import TrainConfig

    class Set:  # what _cost_note reads of a label-augmented set: its size, crops and images
        n = 5
        images = torch.empty(10_000, 3, 224, 224, device="meta")

        def __len__(self) -> int:
            return 10_000

    cfg = TrainConfig(arch="tv_resnet18", mode="ladd", epochs=300, seeds=(0,), protocol="rded")
    _cost_note(Set(), cfg, torch.device("cuda"), 8)
    err = capsys.readouterr().err
    assert "estimated training time ~3.6 cuda hours, ~0.5 h on 8 ranks" in " ".join(err.split())
    assert "ESTIMATED, not measured" in err
    _cost_note(
        Set(), TrainConfig(arch="tv_resnet18", epochs=1, seeds=(0,)), torch.device("cuda"), 1
    )
    assert capsys.readouterr().err == ""
