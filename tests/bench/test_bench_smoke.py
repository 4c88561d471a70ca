"""The benchmark scripts run at CI sizes and print their fields (nothing about time is checked),
and the speed report turns records into the docs' tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/ is not installed
from bench import (  # noqa: E402
    cost_table,
    dense_speed,
    deploy_speed,
    eval_speed,
    levers,
    set_view,
    speed_report,
)

pytestmark = pytest.mark.slow


def test_deploy_speed_tiny_prints_every_field(capsys, tmp_path, one_thread) -> None:
    out = tmp_path / "records.json"
    records = deploy_speed.main(["--tiny", "--json-out", str(out)])
    text = capsys.readouterr().out
    assert "card:" in text and "accuracy parity" in text
    for name in deploy_speed.DEFAULT_CONFIGS:
        arch = name.split("-")[0]
        assert any(r["arch"] == arch for r in records)
    for field in ("reference=", "ours=", "ratio=", "compile=", "step-loss |diff|="):
        assert text.count(field) == len(records)
    saved = json.loads(out.read_text())
    parity = [r for r in saved if r["config"] == "accuracy-parity"]
    assert len(parity) == 1 and {"reference_per_seed", "ours_per_seed", "card"} <= set(parity[0])
    saved = [r for r in saved if r["config"] != "accuracy-parity"]
    keys = {
        "schema",
        "card",
        "config",
        "reference_samples_per_s",
        "ours_samples_per_s",
        "ratio",
        "ours_seconds_compile",
        "seeds",
        "date",
        "command",
    }
    assert len(saved) == len(records) and all(keys <= set(r) for r in saved)
    assert all(r["reference_samples_per_s"] > 0 and r["ours_samples_per_s"] > 0 for r in saved)
    assert all(r["step_loss_max_abs_diff"] < 1e-4 for r in saved)  # fp32 on the CPU
    assert all(r["fast_options"]["engine"] == "sequential" for r in saved)  # the CPU's default


def test_deploy_speed_lever_flags_reach_the_trainer(capsys, one_thread) -> None:
    records = deploy_speed.main(
        [
            "--tiny",
            "--no-parity",
            "--configs",
            "convnet_d3-32px-ipc10-n5",
            "--engine",
            "stacked",
            "--channels-last",
            "--dsa-draws",
            "step",
        ]
    )
    (rec,) = records
    assert rec["fast_options"]["engine"] == "stacked" and rec["fast_options"]["channels_last"]
    assert rec["fast_options"]["layout"] == "grouped"  # the stacked engine's one layout
    assert rec["fast_options"]["dsa_draws"] == "step" and rec["step_loss_max_abs_diff"] < 1e-4


def test_dense_speed_tiny_prints_crops_per_second_forms_and_preview(capsys, one_thread) -> None:
    records = dense_speed.main(["--tiny"])
    text = capsys.readouterr().out
    assert "crops/s" in text and "ms" in text
    assert any("crops_per_s" in r for r in records) and any("preview_ms" in r for r in records)
    bf16 = [r for r in records if r.get("form") == "eager-bf16"]
    assert bf16 and bf16[0]["max_abs_diff_vs_fp32"] < 3e-2  # compiled forms need CUDA


def test_cost_table_tiny_writes_the_cost_schema_and_estimates(tmp_path, one_thread) -> None:
    out = tmp_path / "costs.json"
    records = cost_table.main(
        ["--tiny", "--archs", "convnet", "--sizes", "32", "--json-out", str(out)]
    )
    (rec,) = records
    assert rec["kind"] == "cost" and rec["arch"] == "convnet_d3" and rec["image_size"] == 32
    assert rec["reference_samples_per_s"] > 0 and rec["ours_samples_per_s"] > 0
    costs = cost_table.load_costs(out)
    assert set(costs) == {("convnet_d3", 32)}
    c = costs[("convnet_d3", 32)]
    one = cost_table.estimate_seconds(c, epochs=1, samples=c["batch_size"], seeds=1)
    assert one == pytest.approx(c["batch_size"] / c["ours_samples_per_s"])
    # a partial batch costs a whole one; seeds and epochs multiply
    assert cost_table.estimate_seconds(
        c, epochs=3, samples=c["batch_size"] + 1, seeds=2
    ) == pytest.approx(12 * one)


def test_levers_tiny_measures_each_variant_with_its_parity(tmp_path, one_thread) -> None:
    out = tmp_path / "levers.json"
    records = levers.main(
        ["--tiny", "--variants", "baseline", "grouped-nhwc", "dsa-step", "--json-out", str(out)]
    )
    assert [r["variant"] for r in records] == ["baseline", "grouped-nhwc", "dsa-step"]
    for r in records:
        assert r["kind"] == "lever" and r["ours_samples_per_s"] > 0
        assert r["step_loss_max_abs_diff"] < 1e-5  # fp32 on the CPU: the same math
    assert len(json.loads(out.read_text())) == 3


def test_eval_speed_tiny_compares_stacked_with_per_model(one_thread) -> None:
    (rec,) = eval_speed.main(["--tiny"])
    assert rec["accuracy_diff_max"] == 0.0 and rec["confusion_cells_equal"] == 1.0  # fp32, CPU
    assert rec["stacked_images_per_s"] > 0
    assert rec["per_model_auto_images_per_s"] > 0 and rec["default_ratio"] > 0  # the default


def _records() -> list[dict]:
    base = {
        "schema": "ladd-bench/1",
        "card": "NVIDIA H100",
        "date": "2026-12-01",
        "command": "python -m bench.x",
        "torch": "2.11",
    }
    lever = {
        **base,
        "kind": "lever",
        "bench_config": "convnet_d3-32px-ipc10-n5",
        "arch": "convnet_d3",
        "image_size": 32,
        "reference_samples_per_s": 70000.0,
    }
    return [
        {
            **base,
            "kind": "e2e",
            "image_size": 32,
            "source": "cifar10",
            "config": "e2e-32px-ref",
            "run": "reference-1seed",
            "args": ["--seeds", "1"],
            "wall_s": 40.0,
            "train_s": 35.0,
            "compile_s": None,
            "accuracy_mean": 0.5,
            "measured": True,
        },
        {
            **base,
            "kind": "e2e",
            "image_size": 32,
            "source": "cifar10",
            "config": "e2e-32px-full",
            "run": "summary",
            "reference_full_s": 180.0,
            "ours_full_cold_s": 60.0,
            "ours_full_warm_s": 40.0,
            "ratio_cold": 3.0,
            "ratio_warm": 4.5,
            "measured": False,
            "how": "fit",
        },
        {
            **base,
            "kind": "e2e",
            "image_size": 32,
            "source": "cifar10",
            "config": "e2e-32px-50ep",
            "run": "summary-short",
            "seeds": 5,
            "epochs": 50,
            "reference_s": 15.0,
            "ours_cold_s": 14.0,
            "ours_warm_s": 10.0,
            "ratio_cold": 1.07,
            "ratio_warm": 1.5,
            "engine": "sequential",
            "decision": "eager at 128 px: the sequential loop",
            "measured": True,
        },
        {
            **lever,
            "config": "l-base",
            "variant": "baseline",
            "ours_samples_per_s": 200000.0,
            "ratio": 2.9,
            "ours_seconds_compile": 15.0,
            "step_loss_max_abs_diff": 1e-4,
            "fast_options": {"layout": "grouped", "channels_last": False, "compile": "default"},
        },
        {
            **lever,
            "config": "l-dense",
            "variant": "dense",
            "ours_samples_per_s": 300000.0,
            "ratio": 4.3,
            "ours_seconds_compile": 12.0,
            "step_loss_max_abs_diff": 2e-4,
            "fast_options": {"layout": "dense", "channels_last": False, "compile": "default"},
        },
        {
            **lever,
            "config": "l-bad",
            "variant": "graphs",
            "ours_samples_per_s": 900000.0,
            "ratio": 9.0,
            "ours_seconds_compile": 20.0,
            "step_loss_max_abs_diff": 0.5,
            "fast_options": {"layout": "grouped", "compile": "reduce-overhead"},
        },
        {
            **base,
            "kind": "dense",
            "config": "dense-labels-128px-n5-batch4096-compiled-bf16",
            "form": "compiled-bf16",
            "crops_per_s": 25000.0,
            "seconds_compile": 9.0,
            "max_abs_diff_vs_fp32": 4e-3,
            "mean_abs_diff_vs_fp32": 3e-4,
        },
    ]


def test_speed_report_renders_tables_picks_winners_and_writes_docs(tmp_path, capsys) -> None:
    recs = _records()
    body = speed_report.render(recs, "rehearsal")
    assert "### `ladd train`" in body and "**3.00x** / **4.50x**" in body
    assert "### The dashboard's short training" in body and "1.07x / 1.50x" in body
    assert "sequential (eager at 128 px: the sequential loop)" in body  # which engine ran
    assert "**dense**" in body  # the fastest variant whose step loss matches fp32
    assert "**graphs**" not in body  # faster, but its loss is off: not a winner
    assert "25,000" in body and "NVIDIA H100" in body and "rehearsal" in body
    # the winner is a record of the dense layout, which the stacked engine no longer has:
    # it stays in the report (history) and suggests nothing
    assert speed_report.suggested_levers(recs) == {}
    nhwc = {
        **recs[-3],
        "config": "l-nhwc",
        "variant": "grouped-nhwc",
        "ours_samples_per_s": 400000.0,
        "fast_options": {"channels_last": True, "compile": "default"},
    }
    assert speed_report.suggested_levers([*recs, nhwc]) == {
        ("convnet_d3", 32): {"channels_last": True, "compile": "default"}
    }
    src = tmp_path / "speed.json"
    src.write_text(json.dumps(recs))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "benchmarks.md").write_text(
        "# B\n\nbefore\n\n<!-- speed-results:start -->\nSTALE-TEXT\n<!-- speed-results:end -->\n\nafter\n"
    )
    (docs / "benchmarks.json").write_text(json.dumps([{"config": "kept"}]))
    speed_report.main([str(src), "--docs", str(docs), "--write", "--session", "rehearsal"])
    speed_report.main([str(src), "--docs", str(docs), "--write"])  # again: no duplicates
    md = (docs / "benchmarks.md").read_text()
    assert (
        "STALE-TEXT" not in md
        and "before" in md
        and "after" in md
        and md.count("speed-results:start") == 1
    )
    saved = json.loads((docs / "benchmarks.json").read_text())
    assert saved[0] == {"config": "kept"} and len(saved) == 1 + len(recs)
    assert "levers suggested" not in capsys.readouterr().out  # none to suggest here


def test_set_view_bench_tiny_prints_both_ways(capsys, tmp_path) -> None:
    rows = set_view.main(["--classes", "3", "--ipc", "2", "--size", "16", "--dir", str(tmp_path)])
    text = capsys.readouterr().out
    assert [r["how"] for r in rows] == ["view", "load_set"] and text.count("peak RSS") == 2
    assert rows[0]["shape"] == [6, 3, 16, 16] == rows[1]["shape"]  # 20 classes ask for all 3
    assert rows[0]["images"] == rows[1]["images"] == 6


def test_ddp_drift_tiny_prints_the_drift_table(capsys) -> None:
    """bench.ddp_drift at CI size: one torchrun job of 2 gloo ranks against one process, 10
    steps with DSA; the row it prints holds the drift, what training moved, the predictions."""
    from bench import ddp_drift

    (row,) = ddp_drift.main(["--tiny"])
    text = capsys.readouterr().out
    assert "2 gloo ranks vs one process" in text and "| on | 10 |" in text
    assert row["steps"] == 10 and row["max_moved"] > 0
    # tests/test_distributed.py's tolerance over 20 steps holds over these 10
    assert row["max_abs_diff"] < 1e-4 and 0 <= row["predictions_differ"] <= 2000
