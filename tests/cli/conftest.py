"""What several CLI tests start from: a labeler and a small random-real set of `shapes`, made
once through the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ladd.cli import app


@pytest.fixture(scope="session")
def shapes_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"workspace", "set", "labeler"}: a random-real set (2 per class) and a 1-epoch labeler."""
    import torch

    root = tmp_path_factory.mktemp("cli_inputs")
    ws, rr, lab = root / "ws", root / "rr", root / "lab"
    runner = CliRunner()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for args in (
            ["random-real", "--source", "shapes", "--ipc", "2", "--out", rr, "--workspace", ws],
            ["train-labeler", "--source", "shapes", "--epochs", "1", "--save-at", "1",
             "--limit-per-class", "10", "--width", "8", "--out", lab, "--workspace", ws,
             "--device", "cpu"],
        ):  # fmt: skip
            res = runner.invoke(app, [str(a) for a in args])
            assert res.exit_code == 0, res.output
    finally:
        torch.set_num_threads(threads)
    return {"workspace": ws, "set": rr, "labeler": lab / "epoch_001.safetensors"}
