"""pages/7_results.py: the study's records as a filterable table with CSV export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from page_helpers import ROOT, assert_clean, open_page

RECORDS = sorted((ROOT / "docs" / "results").glob("*.json"))


def downloads(at) -> list[str]:
    return [b.proto.label for b in at.get("download_button")]


def test_every_study_record_is_a_row_and_filters_narrow_the_table(demo):
    at = open_page("7_results.py")
    table = at.dataframe[0].value
    assert len(table) == len(RECORDS)
    assert {"part", "profile", "distiller", "ipc", "arch", "mode", "mean", "std", "seeds"} <= set(
        table.columns
    )
    one = json.loads(RECORDS[0].read_text())
    row = table[table["file"] == RECORDS[0].name].iloc[0]
    assert row["mean"] == pytest.approx(100 * one["mean"], abs=0.01)  # shown in percent
    at.multiselect(key="rs_mode").set_value(["ladd"]).run()
    at.multiselect(key="rs_profile").set_value(["gpu"]).run()
    assert_clean(at)
    shown = at.dataframe[0].value
    expected = [
        p.name
        for p in RECORDS
        if json.loads(p.read_text())["mode"] == "ladd" and p.name.startswith("gpu-")
    ]
    assert sorted(shown["file"]) == sorted(expected)
    assert "Download CSV" in downloads(at)


def test_baseline_and_ladd_records_with_the_same_settings_are_paired(demo):
    at = open_page("7_results.py")
    at.multiselect(key="rs_profile").set_value(["gpu"]).run()
    at.multiselect(key="rs_part").set_value(["1"]).run()
    gain = at.dataframe[1].value
    assert len(gain) == 2 and set(gain["ipc"]) == {1, 10}
    diff = gain["mean LADD (%)"] - gain["mean baseline (%)"]
    assert list(gain["LADD - baseline (%)"]) == pytest.approx(list(diff), abs=0.02)
    assert (gain["LADD - baseline (%)"] > 0).all()  # the paper-protocol rows: LADD ahead


def test_workspace_records_are_read_and_other_files_are_skipped(demo):
    folder = Path(demo.workspace) / "records"
    folder.mkdir(exist_ok=True)
    mine = folder / "mine.json"
    broken = folder / "broken.json"
    mine.write_text(json.dumps({"part": "x", "mode": "ladd", "mean": 0.5, "per_seed": [0.5]}))
    broken.write_text("{not json")
    try:
        at = open_page("7_results.py")
        table = at.dataframe[0].value
        row = table[table["file"] == "mine.json"].iloc[0]
        assert row["where"] == "workspace (records/)" and row["seeds"] == 1
        assert len(table) == len(RECORDS) + 1
        assert any("broken.json" in c.value for c in at.caption)
    finally:
        mine.unlink()
        broken.unlink()
