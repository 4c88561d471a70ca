"""pages/8_score.py and the soft-label store section of pages/3_soft_labels.py: a score's
variants beside their random twins with spreads, bytes beside accuracy and DD-Ranking's scores;
a store's crops with their boxes and targets. Text that comes from files is shown as text."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from page_helpers import assert_clean, charts, open_page

from ladd.score import dd_ranking_scores

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stores"))
import upstream_stores as us  # noqa: E402


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    from ladd.store import Workspace

    monkeypatch.setenv("LADD_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("LADD_CACHE_DIR", raising=False)
    monkeypatch.setenv("LADD_ALLOWED_DIRS", "")
    return Workspace(tmp_path / "ws")


def _score() -> dict:
    acc = {
        "set/hard": [0.40, 0.42],
        "set/no_aug": [0.30, 0.32],
        "set/shipped": [0.40, 0.42],
        "set/ladd": [0.50, 0.52],
        "random/hard": [0.35, 0.36],
        "random/no_aug": [0.29, 0.30],
        "random/ladd": [0.45, 0.44],
    }
    rows = {}
    for k, v in acc.items():
        nbytes = 100 if "ladd" not in k else 15_100
        rows[k] = {"per_seed": v, "mean": sum(v) / 2, "std": 0.014, "label_bytes": nbytes}
    return {
        "spec": {"set_path": "sets/<b>dm</b>", "epochs": 40, "seeds": [0, 1], "arch": "convnet_d3"},
        "rows": rows,
        "scores": dd_ranking_scores(acc, 0.6),
        "full": {"mean": 0.6, "std": 0.0, "note": "stated"},
        "shipped": "its hard labels (it ships no soft labels)",
        "protocol": "mtt",
        "notes": ["**not markdown**"],
    }


def test_score_page_shows_variants_random_twins_bytes_and_scores(workspace):
    folder = workspace.root / "records"
    folder.mkdir(parents=True, exist_ok=True)
    rec = {"part": "9", "mode": "score", "mean": 0.41, "std": 0.014, "score": _score()}
    (folder / "cpu-9-test.json").write_text(json.dumps(rec))
    at = open_page("8_score.py")
    assert "workspace (records/): cpu-9-test" in at.selectbox(key="sc_pick").options
    at.selectbox(key="sc_pick").set_value("workspace (records/): cpu-9-test").run()
    assert_clean(at)
    figs = charts(at)
    bars = figs[0]
    assert [t["name"] for t in bars["data"]] == ["the set", "random real (same IPC, same pipeline)"]
    assert bars["data"][0]["error_y"]["array"] == pytest.approx([1.4] * 4)
    assert any(s.get("line", {}).get("dash") == "dash" for s in bars["layout"]["shapes"])
    assert figs[1]["layout"]["xaxis"]["type"] == "log"
    table = at.dataframe[0].value
    assert len(table) == 4 and "label_bytes" in table.columns
    metrics = at.dataframe[1].value
    assert any("points in the exponent" in s for s in metrics["score"])
    texts = " ".join(t.value for t in at.text)
    assert "sets/<b>dm</b>" in texts and "**not markdown**" in texts  # as text, verbatim


def test_the_committed_cifar10_scores_open_on_the_score_page(workspace):
    """docs/results' part-8 records are listed (the study's folder), each a table and charts."""
    at = open_page("8_score.py")
    study = [o for o in at.selectbox(key="sc_pick").options if o.startswith("study")]
    assert len(study) >= 2
    at.selectbox(key="sc_pick").set_value(study[0]).run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == 4 and len(charts(at)) == 2


def test_soft_label_page_shows_a_stores_crop_box_mix_and_targets(workspace):
    us.write_images(workspace.root / "sets" / "imgs", 5, 2, 16)
    us.write_sre2l(workspace.root / "stores" / "fkd", 10, 5, epochs=2, batch=4, size=16)
    at = open_page("3_soft_labels.py")
    at.selectbox(key="sl_set").set_value("sets/imgs").run()
    at.text_input(key="sl_store").set_value("stores/fkd").run()
    assert_clean(at)
    texts = " ".join(t.value for t in at.text)
    assert "soft-label store: SRe2L's FKD folder" in texts and "targets at T = 20" in texts
    figs = [f for f in charts(at) if f["layout"].get("title", {}).get("text", "")]
    titles = [f["layout"]["title"]["text"] for f in figs]
    assert any(t.startswith("image ") for t in titles)
    assert any("cutmix with image" in t for t in titles)
    assert all(f["layout"].get("shapes") for f in figs)  # the crop box, the CutMix box
    top = at.dataframe[-1].value
    assert len(top) == 5 and top["target"].sum() == pytest.approx(1.0, abs=1e-4)
    at.number_input(key="sl_srow").set_value(3).run()
    assert_clean(at)
