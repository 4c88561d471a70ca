"""The store commands (ladd.cli.stores): `ladd convert` writes a store into our layout and says
what it wrote; `ladd score --dry-run` plans and estimates without training."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ladd.cli import app
from ladd.stores import open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stores"))
import upstream_stores as us  # noqa: E402

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


def test_convert_writes_our_layout_and_checks_the_folder(tmp_path):
    us.write_images(tmp_path / "imgs", 5, 2, 16)
    us.write_sre2l(tmp_path / "store", 10, 5)
    out = tmp_path / "s.safetensors"
    res = runner.invoke(
        app,
        ["convert", str(tmp_path / "store"), "--out", str(out), "--set", str(tmp_path / "imgs")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "from sre2l" in res.output
    assert open_store(out).info().epochs == 2
    again = runner.invoke(app, ["convert", str(tmp_path / "store"), "--out", str(out)])
    assert again.exit_code == 1 and "--force" in again.output
    us.write_images(tmp_path / "other", 5, 3, 16)
    bad = runner.invoke(
        app,
        ["convert", str(tmp_path / "store"), "--out", str(tmp_path / "t.safetensors"), "--set",
         str(tmp_path / "other")],
    )  # fmt: skip
    assert bad.exit_code == 1 and "15 images" in bad.output


def test_score_dry_run_plans_every_training_and_estimates_it(tmp_path):
    from ladd.sets import random_real

    path = random_real("shapes", 2, seed=3, limit_per_class=20).save_mtt(tmp_path / "set")
    res = runner.invoke(
        app,
        ["score", str(path), "--source", "shapes", "--epochs", "2", "--seeds", "2", "--width",
         "4", "--full-accuracy", "0.9", "--dry-run", "--device", "cpu", "--workspace",
         str(tmp_path / "ws")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "set/hard seed 0" in res.output and "random/no_aug seed 1" in res.output
    assert "estimated" in res.output and "to run" in res.output


def test_info_and_train_take_a_store_beside_the_image_folder(tmp_path):
    """`ladd info SET --soft-labels STORE` says the store's family, epochs and crops; `ladd train
    SET --soft-labels STORE --mode store` trains on its replayed crops and records the store in
    the run's plan; a folder the store does not index is described with the reason."""
    import json

    us.write_images(tmp_path / "imgs", 10, 1, 32)
    us.write_sre2l(tmp_path / "store", 10, 10, epochs=2, size=32)
    common = ["--source", "shapes"]
    res = runner.invoke(
        app, ["info", str(tmp_path / "imgs"), *common, "--soft-labels", str(tmp_path / "store")]
    )
    assert res.exit_code == 0, res.output
    assert "soft labels:" in res.output and "sre2l" in res.output
    res = runner.invoke(
        app,
        ["train", str(tmp_path / "imgs"), *common, "--soft-labels", str(tmp_path / "store"),
         "--mode", "store", "--epochs", "2", "--seeds", "1", "--width", "4", "--device", "cpu",
         "--workspace", str(tmp_path / "ws"), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.output.strip().splitlines()[-1])["run_id"]
    recorded = json.loads((tmp_path / "ws" / "runs" / str(run_id) / "config.json").read_text())[
        "config"
    ]
    assert recorded["train"]["mode"] == "store"
    assert recorded["plan"]["set"]["soft_labels"]["family"] == "sre2l"
    us.write_images(tmp_path / "other", 10, 2, 32)
    bad = runner.invoke(
        app, ["info", str(tmp_path / "other"), *common, "--soft-labels", str(tmp_path / "store")]
    )
    assert bad.exit_code == 0 and "20 images" in bad.output  # described, and why it does not pair
