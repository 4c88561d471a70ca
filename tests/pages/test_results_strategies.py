"""The Results page's part 8 view: label strategies at their bytes per image, and each against
LADD's default paired by seed (records written as scripts/study.py --parts 8 writes them)."""

from __future__ import annotations

import json

from page_helpers import assert_clean, charts, open_page


def _record(tmp, name: str, **fields) -> None:
    base = {
        "part": "8", "profile": "cpu", "dataset": "cifar10", "distiller": "random", "ipc": 10,
        "arch": "convnet_d3", "mode": "ladd", "epochs": 30, "seeds": 3, "width": 32,
        "protocol": "mtt", "device": "CPU", "date": "2026-12-07", "command": "x",
        "codec": "topk:3,uint8,uniform", "loss_fn": "soft_ce", "label_schedule": "constant",
        "balance": "fixed", "coord_bytes_per_image": 0.0,
    }  # fmt: skip
    rec = {**base, **fields}
    rec["mean"] = sum(rec["per_seed"]) / 3
    rec["std"] = 0.01
    (tmp / f"{name}.json").write_text(json.dumps(rec))


def test_results_page_draws_part8s_frontier_and_the_paired_table(demo, tmp_path, monkeypatch):
    import app.records as records

    _record(tmp_path, "default", sampler="grid:5,0.625", label_bytes_per_image=150.0,
            per_seed=[0.40, 0.41, 0.42])  # fmt: skip
    _record(tmp_path, "gift", sampler="grid:5,0.625", label_bytes_per_image=150.0,
            loss_fn="gift:alpha=0.1,weight=0.1", per_seed=[0.43, 0.44, 0.45])  # fmt: skip
    _record(tmp_path, "store", sampler="stored random crops: 25 epochs", store_epochs=25,
            label_bytes_per_image=150.0, coord_bytes_per_image=425.0,
            per_seed=[0.39, 0.41, 0.40])  # fmt: skip
    monkeypatch.setattr(records, "record_folders", lambda: {"test": tmp_path})
    at = open_page("7_results.py")
    assert_clean(at)
    frontier = [c for c in charts(at) if "labels + boxes" in json.dumps(c["layout"])]
    assert len(frontier) == 1
    names = {t.get("name") for t in frontier[0]["data"]}
    assert {"grid", "loss", "stored crops"} <= names
    pairs = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    gift = pairs[pairs["strategy"].str.startswith("gift")].iloc[0]
    assert gift["verdict"] == "beats" and round(gift["vs default (%)"], 2) == 3.0
    store = pairs[pairs["strategy"].str.startswith("stored")].iloc[0]
    assert store["bytes / image"] == 575.0
