"""ladd.codecs.choice: part 7's points, the frontier, and the rule that picks the default codec."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ladd.codecs.choice import FrontierPoint, choose_default, frontier_points, pareto


def _rec(distiller, codec, bytes_, mean, std=0.01, seeds=3, mode="ladd", overhead=None, **kw):
    r = {"part": "7", "distiller": distiller, "mode": mode, "mean": mean, "std": std,
         "seeds": seeds, "label_bytes_per_image": bytes_,
         "overhead": bytes_ / 3072 if overhead is None else overhead, **kw}  # fmt: skip
    if mode == "ladd":
        r["codec"] = codec
    else:
        r["label"] = codec
    return r


def test_frontier_points_read_part7_records_only():
    recs = [
        _rec("random", "float32", 1000.0, 0.40),
        _rec("random", "baseline++", 0.0, 0.30, mode="baseline", overhead=0.1),
        {**_rec("random", "float32", 1000.0, 0.5), "part": "2"},  # another table's
    ]
    pts = frontier_points(recs)
    assert [(p.what, p.ladd) for p in pts] == [("baseline++", False), ("float32", True)]
    assert pts[1].seeds == 3 and pts[1].overhead == 1000.0 / 3072


def test_pareto_drops_points_beaten_on_bytes_and_accuracy():
    pts = [
        FrontierPoint("dm", "float32", True, 1000, 0.31, 0.40, 0.01, 3),
        FrontierPoint("dm", "topk:5,uint8", True, 250, 0.08, 0.40, 0.01, 3),  # beats float32
        FrontierPoint("dm", "baseline++", False, 0, 0.10, 0.30, 0.01, 3),  # beaten by topk:5
        FrontierPoint("dm", "topk:1,uint8", True, 50, 0.02, 0.35, 0.01, 3),
        FrontierPoint("random", "float32", True, 1000, 0.31, 0.20, 0.01, 3),  # its own panel
    ]
    assert {(p.distiller, p.what) for p in pareto(pts)} == {
        ("dm", "topk:5,uint8"),
        ("dm", "topk:1,uint8"),
        ("random", "float32"),
    }


def test_the_smallest_codec_within_noise_of_float32_on_every_distiller_is_picked():
    recs = [
        _rec("random", "float32", 1000.0, 0.400),
        _rec("dm", "float32", 1000.0, 0.380),
        _rec("random", "topk:5,uint8", 250.0, 0.395),
        _rec("dm", "topk:5,uint8", 250.0, 0.385),
        # within noise on random, 5 points below float32 on dm: passed over
        _rec("random", "topk:1,uint8", 75.0, 0.39),
        _rec("dm", "topk:1,uint8", 75.0, 0.33),
        _rec("random", "topk:3,uint8", 150.0, 0.39),  # never measured on dm
    ]
    pick = choose_default(frontier_points(recs))
    assert pick is not None and pick.codec == "topk:5,uint8"
    assert math.isclose(pick.saving, 0.75)
    bound = 2 * math.sqrt(2 * 0.01**2 / 3)
    assert math.isclose(pick.figures["dm"]["bound"], bound)
    assert math.isclose(pick.figures["random"]["difference"], -0.005)
    assert pick.rejected["topk:3,uint8"] == "not measured on dm"
    assert pick.rejected["topk:1,uint8"].startswith("dm: -5.0 points")


def test_without_a_noise_estimate_or_float32_nothing_smaller_is_picked():
    one_seed = [_rec("random", "float32", 1000.0, 0.40, seeds=1),
                _rec("random", "topk:5,uint8", 250.0, 0.40, seeds=1)]  # fmt: skip
    pick = choose_default(frontier_points(one_seed))
    assert pick is not None and pick.codec == "float32" and pick.saving == 0.0
    assert "no noise estimate" in pick.rejected["topk:5,uint8"]
    no_reference = [_rec("random", "topk:5,uint8", 250.0, 0.40)]
    assert choose_default(frontier_points(no_reference)) is None


def test_the_default_codec_is_the_one_the_committed_part7_records_pick():
    """DEFAULT_CODEC is not a free choice: it is what the rule picks from docs/results' part 7
    records (CPU profile), and its labels take at most half float16's bytes per image."""
    from ladd.codecs import DEFAULT_CODEC, parse_codec

    root = Path(__file__).resolve().parents[2] / "docs" / "results"
    records = [json.loads(p.read_text()) for p in sorted(root.glob("cpu-7-*.json"))]
    points = frontier_points(records)
    assert {p.distiller for p in points} == {"random", "dm"}
    pick = choose_default(points)
    assert pick is not None and pick.codec == parse_codec(DEFAULT_CODEC).spec
    half = {p.distiller: p.label_bytes_per_image for p in points if p.what == "float16"}
    assert set(half) == {"random", "dm"}
    assert all(pick.label_bytes_per_image <= 0.5 * b for b in half.values())
