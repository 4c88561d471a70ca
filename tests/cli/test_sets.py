"""The set commands (ladd.cli.sets): the listings, `ladd info` with the set-reading flags, and
`ladd distill` / `ladd experts`, whose outputs load back through load_distilled, runs recorded."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ladd.cli import app
from ladd.sets import load_distilled
from ladd.store import Workspace

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


def _ok(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res.output


def test_distill_dm_writes_mtt_layout_and_records_a_run(tmp_path):
    ws = tmp_path / "ws"
    out = tmp_path / "dm"
    text = _ok(
        [
            "distill",
            "--source",
            "shapes",
            "--method",
            "dm",
            "--ipc",
            "2",
            "--iterations",
            "3",
            "--width",
            "8",
            "--limit-per-class",
            "10",
            "--out",
            str(out),
            "--workspace",
            str(ws),
            "--device",
            "cpu",
        ]
    )
    assert str(out) in text
    for name in ("images_best.pt", "labels_best.pt", "distill.json"):
        assert (out / name).exists()
    ds = load_distilled(out)
    assert len(ds) == 20 and ds.ipc == 2
    runs = Workspace(ws).db.list_runs()
    assert [r.kind for r in runs] == ["distill"] and runs[0].status == "done"


def test_experts_then_mtt_through_the_cli(tmp_path):
    ws, ex, out = tmp_path / "ws", tmp_path / "experts", tmp_path / "mtt"
    common = [
        "--source",
        "shapes",
        "--limit-per-class",
        "10",
        "--width",
        "8",
        "--workspace",
        str(ws),
        "--device",
        "cpu",
    ]
    _ok(["experts", *common, "--num-experts", "1", "--epochs", "3", "--out", str(ex)])
    assert len(list(ex.glob("expert_*.safetensors"))) == 1
    _ok(
        [
            "distill",
            "--method",
            "mtt",
            *[c for c in common if c != "--width" and c != "8"],
            "--ipc",
            "1",
            "--iterations",
            "2",
            "--syn-steps",
            "2",
            "--max-start-epoch",
            "1",
            "--experts",
            str(ex),
            "--out",
            str(out),
        ]
    )
    ds = load_distilled(out)
    assert ds.lr is not None and len(ds) == 10


def test_mtt_without_experts_is_a_one_line_error(tmp_path):
    res = runner.invoke(
        app,
        [
            "distill",
            "--source",
            "shapes",
            "--method",
            "mtt",
            "--limit-per-class",
            "2",
            "--workspace",
            str(tmp_path),
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 1
    assert "needs --experts" in res.output


def test_unknown_method_is_a_usage_error(tmp_path):
    res = runner.invoke(
        app, ["distill", "--source", "shapes", "--method", "gan", "--workspace", str(tmp_path)]
    )
    assert res.exit_code == 2


def test_listings() -> None:
    assert "shapes" in runner.invoke(app, ["sources"]).output
    out = runner.invoke(app, ["models"]).output
    assert "convnet_d3" in out and "trainers (--trainer): fast, reference, ddp" in out


def test_set_options_on_the_command_line(tmp_path):
    """`ladd info` describes an MTT run folder without knowing its normalisation; --mean/--std,
    --format and --experiment reach the reader; a label-augmented file loads whatever its name."""
    import torch

    run = tmp_path / "mtt_run"
    run.mkdir()
    g = torch.Generator().manual_seed(0)
    torch.save(torch.randn(20, 3, 16, 16, generator=g), run / "images_best.pt")
    torch.save(torch.arange(10).repeat_interleave(2), run / "labels_best.pt")

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

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
