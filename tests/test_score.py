"""ladd.score: a set trained under its own labels, hard labels, no augmentation and LADD's dense
labels beside same-IPC random-real twins drawn by the same pipeline; DD-Ranking's scores
recomputed from the recorded accuracies; resumable (a second score trains nothing)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ladd.score import ScoreSpec, dd_ranking_scores, plan_score, run_score, squash
from ladd.sets import random_real
from ladd.sets.inputs import SetReading
from ladd.store import Workspace

E = math.e


def test_squash_is_ddrankings_exponential_map():
    """(e^x - e^-1) / (e - e^-1): 0 at -1, 1 at 1 (hard_label.py:383, aug_robust.py:580)."""
    assert squash(-1.0) == pytest.approx(0.0) and squash(1.0) == pytest.approx(1.0)
    assert squash(0.0) == pytest.approx((1 - 1 / E) / (E - 1 / E))


def test_scores_are_ddrankings_formulas_in_its_units():
    """NUS-HPC-AI-Lab/DD-Ranking ddranking/metrics/hard_label.py:380-383 (HLR, IOR, LRS with
    lambda 0.5), aug_robust.py:577-580 (ARS), soft_label.py:561-564 (soft LRS): per seed, from
    percentages (utils/meter.py:168 multiplies by 100), then mean and sample std."""
    acc = {
        "set/hard": [0.40, 0.42],
        "random/hard": [0.35, 0.36],
        "set/no_aug": [0.30, 0.31],
        "random/no_aug": [0.29, 0.30],
        "set/ladd": [0.50, 0.52],
        "random/ladd": [0.45, 0.44],
    }
    s = dd_ranking_scores(acc, 0.60)
    assert s["hlr"]["per_seed"] == pytest.approx([20.0, 18.0])
    assert s["ior"]["per_seed"] == pytest.approx([5.0, 6.0])
    want_lrs = [(math.exp(0.5 * 5 - 0.5 * 20) - 1 / E) / (E - 1 / E),
                (math.exp(0.5 * 6 - 0.5 * 18) - 1 / E) / (E - 1 / E)]  # fmt: skip
    assert s["lrs"]["per_seed"] == pytest.approx(want_lrs)
    assert s["lrs_fraction"]["per_seed"][0] == pytest.approx(squash(0.5 * 0.05 - 0.5 * 0.20))
    assert s["ars"]["per_seed"][0] == pytest.approx(squash(0.5 * 5 + 0.5 * 1))
    assert s["ior_ladd"]["per_seed"] == pytest.approx([5.0, 8.0])
    assert s["lrs_ladd"]["per_seed"][1] == pytest.approx(squash(0.5 * 8 - 0.5 * 18))
    assert s["ior"]["mean"] == pytest.approx(5.5) and s["ior"]["std"] == pytest.approx(0.7071, 1e-3)
    # percentage points in the exponent: a 20-point HLR puts LRS at its floor
    assert s["lrs"]["mean"] < -0.15 and 0 < s["lrs_fraction"]["mean"] < 1
    with pytest.raises(ValueError, match="seeds"):
        dd_ranking_scores({"set/hard": [0.1], "random/hard": [0.1, 0.2]}, 0.5)


@pytest.fixture(scope="module")
def workspace_and_set(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("score")
    ds = random_real("shapes", 2, seed=7, limit_per_class=20)  # 20 images, 32 px
    path = ds.save_mtt(root / "set")
    from ladd.files import save_tensors
    from ladd.labeler import LABELER_FORMAT
    from tests.test_dense import make_labeler

    lab = make_labeler(ds)
    ckpt = save_tensors(
        root / "labeler" / "epoch_001.safetensors",
        dict(lab.model.state_dict()),
        {"ladd_labeler": json.dumps(lab.meta.to_dict()), "format": LABELER_FORMAT},
    )
    return Workspace(root / "ws"), path, ckpt


def test_a_score_trains_every_variant_with_its_random_twin_and_resumes(workspace_and_set):
    ws, path, labeler = workspace_and_set
    spec = ScoreSpec(
        str(path),
        reading=SetReading(source="shapes"),
        labeler=str(labeler),
        n=2,
        epochs=1,
        seeds=(0, 1),
        batch_size=16,
        model_options={"width": 4},
        full_accuracy=0.9,
        full_note="stated for the test",
        device="cpu",
    )
    plan = plan_score(spec, ws)
    rows = {c.row for c in plan.cells}
    assert rows == {"set/hard", "set/no_aug", "set/shipped", "set/ladd", "random/hard",
                    "random/no_aug", "random/ladd"}  # fmt: skip
    shipped = [c for c in plan.cells if c.row == "set/shipped"]
    assert all(c.alias_of == "set/hard" for c in shipped)  # a hard-label set ships hard labels
    # one random draw per seed, at the set's IPC, from its source
    r0, r1 = plan.datasets["random0"], plan.datasets["random1"]
    assert r0.ipc == r1.ipc == 2 and not torch.equal(r0.images, r1.images)
    no_aug = [c for c in plan.cells if c.variant == "no_aug"][0]
    assert no_aug.plan.config.augmentation == "" and plan.cells[0].plan.config.augmentation == "dsa"
    assert len(plan.todo) == 12 and plan.estimate_seconds is not None
    result = run_score(plan, ws)
    assert result.trained == 12
    for row in rows:
        assert len(result.rows[row]["per_seed"]) == 2
    # the scores come from the recorded accuracies
    acc = {k: v["per_seed"] for k, v in result.rows.items()}
    again = dd_ranking_scores(acc, 0.9)
    assert again["lrs"]["mean"] == pytest.approx(result.scores["lrs"]["mean"])
    assert result.rows["set/ladd"]["label_bytes"] > result.rows["set/hard"]["label_bytes"] == 20
    saved = ws.db.get_run(result.run_id)
    assert saved.kind == "score" and saved.status == "done"
    lines = "\n".join(result.lines())
    assert "random real" in lines and "LRS (DD-Ranking: points in exp)" in lines
    # resumable: everything is recorded, nothing is trained again
    second = run_score(plan_score(spec, ws), ws)
    assert second.trained == 0 and second.rows["set/hard"] == {**result.rows["set/hard"]}


def test_a_set_with_a_soft_label_store_ships_its_store(tmp_path, one_thread):
    """With --soft-labels the "shipped" variant replays the store (label mode "store") and every
    variant trains under the store's recipe (rded); its label bytes are the store's."""
    import sys
    from pathlib import Path

    from PIL import Image

    from ladd.data import load_source
    from ladd.stores import open_store

    sys.path.insert(0, str(Path(__file__).resolve().parent / "stores"))
    import upstream_stores as us

    train = load_source("shapes", "train", limit_per_class=2)
    for i in range(len(train)):
        c = int(train.labels[i])
        folder = tmp_path / "imgs" / f"new{c:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        k = len(list(folder.iterdir()))
        Image.fromarray(train.images[i].permute(1, 2, 0).numpy()).save(
            folder / f"class{c:03d}_id{k:03d}.png"
        )
    us.write_sre2l(tmp_path / "store", 20, 10, epochs=3, batch=8, size=32)
    spec = ScoreSpec(
        str(tmp_path / "imgs"),
        reading=SetReading(source="shapes"),
        soft_labels=str(tmp_path / "store"),
        epochs=2,
        seeds=(0,),
        batch_size=8,
        model_options={"width": 4},
        device="cpu",
    )
    ws = Workspace(tmp_path / "ws")
    plan = plan_score(spec, ws)
    assert plan.protocol == "rded" and "replayed" in plan.shipped
    shipped = [c for c in plan.cells if c.row == "set/shipped"][0]
    assert shipped.plan.config.mode == "store" and shipped.plan.set.soft_labels["family"] == "sre2l"
    assert all(c.plan.config.protocol == "rded" for c in plan.cells)
    result = run_score(plan, ws)
    store_bytes = open_store(tmp_path / "store").info().label_bytes
    assert result.rows["set/shipped"]["label_bytes"] == store_bytes == 3 * 20 * 10 * 2
    assert "hlr" not in result.scores and "ior" in result.scores  # no full-data accuracy given


def test_the_recorded_cifar10_scores_recompute_from_their_accuracies():
    """docs/results' part 9 (`ladd score` on CIFAR-10): every score follows from the recorded
    per-seed accuracies by DD-Ranking's formulas (dd_ranking_scores), and the hard-label row is
    the record's mean."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "docs" / "results"
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    scores = [r for r in records if r.get("part") == "9"]
    assert len(scores) >= 2  # random real and DM at IPC 10
    for rec in scores:
        sc = rec["score"]
        acc = {k: v["per_seed"] for k, v in sc["rows"].items()}
        full = acc.get("full/hard", [sc["full"]["mean"]])
        full = full if len(full) == rec["seeds"] else sum(full) / len(full)  # one number
        again = dd_ranking_scores(acc, full)
        assert set(again) == set(sc["scores"])
        for key, value in again.items():
            assert value["per_seed"] == pytest.approx(sc["scores"][key]["per_seed"]), key
            assert value["mean"] == pytest.approx(sc["scores"][key]["mean"]), key
        assert rec["mean"] == pytest.approx(sum(acc["set/hard"]) / len(acc["set/hard"]))
        assert len(acc["set/hard"]) == rec["seeds"] == 3


def test_the_plan_names_the_settled_protocol(workspace_and_set):
    ws, path, _ = workspace_and_set
    spec = ScoreSpec(str(path), reading=SetReading(source="shapes"), epochs=1, seeds=(0,),
                     model_options={"width": 4}, device="cpu")  # fmt: skip
    plan = plan_score(spec, ws)
    assert plan.protocol == "mtt" and "protocol mtt" in plan.summary()
