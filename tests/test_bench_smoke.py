"""The benchmark scripts run at CI sizes and print their fields (nothing about time is checked)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ is not installed
from bench import dense_speed, deploy_speed  # noqa: E402

pytestmark = pytest.mark.slow


def test_deploy_speed_tiny_prints_every_field(capsys, tmp_path) -> None:
    out = tmp_path / "records.json"
    records = deploy_speed.main(["--tiny", "--json-out", str(out)])
    text = capsys.readouterr().out
    assert "card:" in text and "accuracy parity" in text
    for name in deploy_speed.CONFIGS:
        arch = name.split("-")[0]
        assert any(r["arch"] == arch for r in records)
    for field in ("reference=", "ours=", "ratio=", "step-loss |diff|="):
        assert text.count(field) == len(records)
    saved = json.loads(out.read_text())
    parity = [r for r in saved if r["config"] == "accuracy-parity"]
    assert len(parity) == 1 and {"reference_per_seed", "ours_per_seed", "card"} <= set(parity[0])
    saved = [r for r in saved if r["config"] != "accuracy-parity"]
    keys = {
        "card",
        "config",
        "reference_samples_per_s",
        "ours_samples_per_s",
        "ratio",
        "seeds",
        "date",
        "command",
    }
    assert len(saved) == len(records) and all(keys <= set(r) for r in saved)
    assert all(r["reference_samples_per_s"] > 0 and r["ours_samples_per_s"] > 0 for r in saved)
    assert all(r["step_loss_max_abs_diff"] < 1e-4 for r in saved)  # fp32 on the CPU


def test_dense_speed_tiny_prints_crops_per_second_and_preview(capsys) -> None:
    records = dense_speed.main(["--tiny"])
    text = capsys.readouterr().out
    assert "crops/s" in text and "ms" in text
    assert any("crops_per_s" in r for r in records) and any("preview_ms" in r for r in records)
