"""scripts/make_results.py: docs/results.md tables come from the JSON records, beside the paper."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rec(part, mode, mean, **kw):
    base = {
        "part": part,
        "profile": "cpu",
        "dataset": "cifar10",
        "distiller": "random",
        "ipc": 10,
        "arch": "convnet_d3",
        "mode": mode,
        "n": 5,
        "r": 0.625,
        "labeler_epoch": 2,
        "epochs": 60,
        "seeds": 3,
        "width": 32,
        "per_seed": [mean] * 3,
        "mean": mean,
        "std": 0.01,
        "device": "CPU (2 cores)",
        "command": "python scripts/study.py --profile cpu",
    }
    return {**base, **kw}


def test_tables_are_generated_from_records(tmp_path):
    recs = tmp_path / "records"
    recs.mkdir()
    rows = [
        _rec("1", "baseline", 0.252),
        _rec("1", "ladd", 0.358),
        _rec(
            "4",
            "ladd",
            0.35,
            labeler_epoch=4,
            labeler_accuracy=0.41,
            mean_max_prob=0.5,
            mean_entropy=1.2,
            agreement=0.6,
        ),
    ]
    for i, r in enumerate(rows):
        (recs / f"r{i}.json").write_text(json.dumps(r))
    out = tmp_path / "results.md"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "make_results.py"),
            "--records",
            str(recs),
            "--out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )
    text = out.read_text()
    assert "| random | 10 | 25.2 ± 1.0 | 35.8 ± 1.0 | +10.6 |" in text
    assert "| 4 | 41.0 | 0.500 | 1.200 | 35.0 ± 1.0 |" in text
    assert "_Not run yet._" in text  # parts without records say so
    assert "Table S2" in text  # the paper's figure beside ours
