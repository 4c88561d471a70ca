"""scripts/make_results.py: docs/results.md tables come from the JSON records, beside the paper.
The script runs in this process (its main(), with its command line and the repository as the
working folder), as `python scripts/make_results.py --records R --out O` runs it."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_results(records: Path, out: Path) -> None:
    """`python scripts/make_results.py --records records --out out`, from the repository."""
    spec = importlib.util.spec_from_file_location(
        "make_results", ROOT / "scripts" / "make_results.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    argv = sys.argv
    sys.argv = ["scripts/make_results.py", "--records", str(records), "--out", str(out)]
    try:
        with contextlib.chdir(ROOT):
            mod.main()
    finally:
        sys.argv = argv


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
    make_results(recs, out)
    text = out.read_text()
    assert "| random | 10 | 25.2 ± 1.0 | 35.8 ± 1.0 | +10.6 |" in text
    assert "| 4 | 41.0 | 0.500 | 1.200 | 35.0 ± 1.0 |" in text
    assert "_Not run yet._" in text  # parts without records say so
    assert "Table S2" in text  # the paper's figure beside ours


def _generate(tmp_path, rows) -> str:
    recs = tmp_path / "records"
    recs.mkdir()
    for i, r in enumerate(rows):
        (recs / f"r{i}.json").write_text(json.dumps(r))
    out = tmp_path / "results.md"
    make_results(recs, out)
    return out.read_text()


def _study():
    import importlib.util

    spec = importlib.util.spec_from_file_location("study", ROOT / "scripts" / "study.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["study"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_profiles_get_their_own_tables_and_a_borrowed_record_says_where_it_came_from(tmp_path):
    gpu = {"profile": "gpu", "epochs": 1000, "seeds": 5, "width": 128, "labeler_epoch": 10}
    gpu["device"] = "NVIDIA H200"
    ladd1 = _rec("1", "ladd", 0.532, **gpu)
    rows = [
        _rec("1", "baseline", 0.327, **{**gpu, "labeler_epoch": None}),
        ladd1,
        _rec("5", "baseline", 0.326, **gpu),
        _rec("5", "crops_dense", 0.483, **gpu),
        _study().borrowed_record("5", ladd1),  # what scripts/study.py writes for a reused run
        _rec("5", "ladd", 0.359, distiller="dm"),  # the CPU profile's own row
        _rec("5", "baseline", 0.338, distiller="dm"),
        _rec("1", "baseline", 0.252),
        _rec("1", "ladd", 0.358),
    ]
    text = _generate(tmp_path, rows)
    part1 = text.split("## 1.")[1].split("## 2.")[0]
    gpu_at, cpu_at = part1.index("### GPU profile"), part1.index("### CPU profile")
    assert gpu_at < cpu_at  # the paper's protocol first
    assert "| random | 10 | 32.7 ± 1.0 | 53.2 ± 1.0 | +20.5 |" in part1[gpu_at:cpu_at]
    assert "| random | 10 | 25.2 ± 1.0 | 35.8 ± 1.0 | +10.6 |" in part1[cpu_at:]
    part5 = text.split("## 5.")[1].split("## 6.")[0]
    assert (
        "### GPU profile (protocol size: 1000 epochs, 5 seeds, width 128), distiller random"
        in part5
    )
    assert "| ladd | 53.2 ± 1.0 (the table 1 run) |" in part5
    assert "| ladd | 35.9 ± 1.0 |" in part5  # its own run: nothing borrowed
    assert part5.count("(the table 1 run)") == 1


def test_a_record_borrowed_from_a_borrowed_record_names_the_run_that_trained(tmp_path):
    study = _study()
    own = _rec("1", "ladd", 0.359, distiller="dm")
    in5 = study.borrowed_record("5", own)
    in6 = study.borrowed_record("6", in5)
    assert in5["borrowed"] == in6["borrowed"] == "the table 1 run"
    assert in6["part"] == "6" and in6["mean"] == own["mean"] and in6["per_seed"] == own["per_seed"]


def test_tables_2_to_4_borrow_table_1_runs_with_their_own_fields(tmp_path):
    """Study.borrow keeps the borrowing table's own fields (table 2's storage overhead and
    label) beside the twin's numbers, and the table marks the cell as borrowed."""
    study = _study()
    ladd1 = _rec("1", "ladd", 0.381)
    twin = tmp_path / "twin.json"
    twin.write_text(json.dumps(ladd1))
    want = (ladd1["epochs"], ladd1["seeds"], ladd1["width"], ladd1.get("protocol"))
    fake = type("S", (), {"_checked": staticmethod(study.Study._checked)})()
    rec = study.Study.borrow(
        fake, tmp_path / "in2.json", "2", twin, want, {"overhead": 0.25, "label": "ladd"}
    )
    assert json.loads((tmp_path / "in2.json").read_text()) == rec
    assert rec["part"] == "2" and rec["mean"] == 0.381 and rec["overhead"] == 0.25
    assert rec["borrowed"] == "the table 1 run"
    rows = [
        rec,
        _rec("2", "baseline", 0.27, ipc=11, label="baseline++", overhead=0.1),
        _rec("1", "ladd", 0.381),
    ]
    part2 = _generate(tmp_path, rows).split("## 2.")[1].split("## 3.")[0]
    assert "| ladd | 38.1 ± 1.0 (the table 1 run) | 25.0 % |" in part2
    assert "| baseline++ | 27.0 ± 1.0 | 10.0 % |" in part2


def test_part6_lists_every_architecture_and_shows_borrowed_convnet_rows(tmp_path):
    study = _study()
    base5 = _rec("5", "baseline", 0.338, distiller="dm")
    ladd5 = _rec("5", "ladd", 0.359, distiller="dm")
    rows = [
        base5,
        ladd5,
        study.borrowed_record("6", base5),
        study.borrowed_record("6", ladd5),
        _rec("6", "baseline", 0.21, distiller="dm", arch="vgg11", width=None, lr=0.0001),
        _rec("6", "ladd", 0.30, distiller="dm", arch="vgg11", width=None, lr=0.0001),
        _rec("6", "baseline", 0.19, distiller="dm", arch="alexnet", width=None, lr=0.001),
    ]
    text = _generate(tmp_path, rows)
    part6 = text.split("## 6.")[1]
    lines = [ln for ln in part6.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert [ln.split(" | ")[0] for ln in lines] == [
        "| convnet_d3",
        "| alexnet",
        "| vgg11",
        "| resnet18",
        "| vit",
    ]
    assert lines[0] == (
        "| convnet_d3 | — | 33.8 ± 1.0 (the table 5 run) | 35.9 ± 1.0 (the table 5 run) | +2.1 |  |"
    )
    # each architecture's own deployment lr (GLaD's per-model rates), from its records
    assert lines[1] == "| alexnet | 0.001 | 19.0 ± 1.0 | not run | — |  |"
    assert lines[2] == "| vgg11 | 0.0001 | 21.0 ± 1.0 | 30.0 ± 1.0 | +9.0 |  |"
    # the CPU profile leaves ResNet-18 and the ViT to the GPU profile (scripts/study.py)
    assert lines[3] == "| resnet18 | — | GPU profile only | GPU profile only | — |  |"
    assert lines[4] == "| vit | — | GPU profile only | GPU profile only | — |  |"
    gpu = [_rec("6", "baseline", 0.40, profile="gpu", arch="alexnet", width=None, lr=0.001)]
    (tmp_path / "gpu").mkdir()
    gpu6 = _generate(tmp_path / "gpu", gpu).split("## 6.")[1]
    assert "| resnet18 | — | not run | not run | — |  |" in gpu6  # planned there, not run yet


def test_part6_marks_the_hybrid_schedule_and_near_chance_baselines(tmp_path):
    """Rows trained under protocol mtt (MTT/DATM's step schedule) at GLaD's per-model rates
    (GeorgeCazenavette/glad glad_utils.py `get_eval_lrs`) are a pairing no upstream uses; a
    baseline below 1.5x chance is flagged. Both say so in the row and in a footnote."""
    rows = [
        _rec("6", "baseline", 0.253, protocol="mtt", lr=0.01),
        _rec("6", "ladd", 0.381, protocol="mtt", lr=0.01),
        _rec("6", "baseline", 0.118, arch="alexnet", width=None, protocol="mtt", lr=0.001),
        _rec("6", "ladd", 0.201, arch="alexnet", width=None, protocol="mtt", lr=0.001),
        _rec("6", "baseline", 0.30, arch="vgg11", width=None, protocol="glad", lr=0.0001),
    ]
    part6 = _generate(tmp_path, rows).split("## 6.")[1]
    rows_of = {ln.split(" | ")[0]: ln for ln in part6.splitlines() if ln.startswith("| ")}
    assert rows_of["| convnet_d3"].endswith("| +12.8 |  |")  # the distillation model: no caveat
    assert rows_of["| alexnet"].endswith(
        "| +8.3 | hybrid: MTT schedule, GLaD lr (*); baseline near chance (†) |"
    )
    assert rows_of["| vgg11"].endswith("| — |  |")  # GLaD's own schedule, well above chance
    assert "(*) Hybrid:" in part6 and "`--protocol glad` offers" in part6
    assert "(†) Near chance:" in part6


def test_results_credit_convnets_32px_lr_to_dc_dm_and_every_labeler_record_names_its_recipe():
    """ConvNet's 0.01 at 32 px is DC/DM's `--lr_net` default (VICO-UoE/DatasetCondensation
    main_DM.py, line 25), not GLaD's: GLaD's glad_utils.py `get_eval_lrs` gives the distillation
    ConvNet (`args.model`) 0.001. Every record trained with a labeler says which recipe."""
    text = (ROOT / "docs" / "results.md").read_text()
    (lr_row,) = [ln for ln in text.splitlines() if ln.startswith("| learning rate |")]
    assert "GLaD's per-model rates (ConvNet 0.01" not in lr_row
    assert "ConvNet 0.01 at 32 px (DC/DM's rate)" in lr_row
    assert "DatasetCondensation `main_DM.py`" in lr_row
    assert "ConvNet included" in lr_row  # GLaD's own ConvNet rate is 0.001
    records = [
        json.loads(p.read_text()) for p in sorted((ROOT / "docs" / "results").glob("*.json"))
    ]
    with_labeler = [r for r in records if r.get("labeler_epoch")]
    part4 = [r for r in with_labeler if r["part"] == "4"]
    assert len(part4) == 5  # epochs 10..50
    missing = [
        (r["part"], r.get("labeler_epoch")) for r in with_labeler if "labeler_recipe" not in r
    ]
    assert missing == []
    assert {r["labeler_recipe"] for r in part4} == {"mtt"}


def test_a_records_absolute_folders_are_shown_relative_to_the_repository(tmp_path):
    cmd = (
        "PYTHONPATH=. python scripts/study.py --parts 4 --workspace /work/study-ws "
        "--out /work/wt-study/docs/results"
    )
    text = _generate(tmp_path, [_rec("1", "baseline", 0.25, command=cmd)])
    assert "--workspace study-ws --out docs/results`" in text
    assert "/work/" not in text


def test_the_committed_records_regenerate_results_md_byte_for_byte(tmp_path):
    out = tmp_path / "results.md"
    make_results(ROOT / "docs" / "results", out)
    assert out.read_bytes() == (ROOT / "docs" / "results.md").read_bytes()


def test_part7_lists_codecs_by_label_bytes_beside_the_baselines(tmp_path):
    """Issue 26: the codec table puts each LADD record's codec and label bytes beside the
    baseline and baseline++ records of the same distiller; issue 40: each codec's difference
    from float32 paired by seed, with its 95 % t-interval, and the default the paired rule
    picks with what it costs."""
    recs = tmp_path / "recs"
    recs.mkdir()
    base = {"part": "7", "profile": "cpu", "dataset": "cifar10", "distiller": "random",
            "arch": "convnet_d3", "n": 5, "r": 0.625, "epochs": 60, "seeds": 3, "width": 32,
            "protocol": "mtt", "lr": 0.01, "std": 0.01, "seconds": 1.0,
            "command": "python scripts/study.py --parts 7", "device": "CPU (2 cores)",
            "date": "2026-12-04", "loss": "mean", "full_labels": "hard", "passes": 61}  # fmt: skip
    rows = [
        {**base, "mode": "ladd", "ipc": 10, "codec": "float32", "label_bytes_per_image": 1000.0,
         "overhead": 0.31, "mean": 0.40, "per_seed": [0.39, 0.40, 0.41], "labeler_epoch": 10},
        {**base, "mode": "ladd", "ipc": 10, "codec": "topk:5,uint8,uniform",
         "label_bytes_per_image": 250.0, "overhead": 0.08, "mean": 0.39,
         "per_seed": [0.37, 0.39, 0.41], "labeler_epoch": 10},
        {**base, "mode": "ladd", "ipc": 10, "codec": "topk:1,uint8,uniform",
         "label_bytes_per_image": 50.0, "overhead": 0.02, "mean": 0.35,
         "per_seed": [0.34, 0.35, 0.36], "labeler_epoch": 10},
        {**base, "mode": "baseline", "ipc": 11, "label": "baseline++", "overhead": 0.1,
         "label_bytes_per_image": 0.0, "mean": 0.30, "per_seed": [0.3] * 3,
         "labeler_epoch": None},
    ]  # fmt: skip
    for i, r in enumerate(rows):
        (recs / f"r{i}.json").write_text(json.dumps(r))
    out = tmp_path / "results.md"
    make_results(recs, out)
    text = out.read_text()
    part7 = text[text.index("## 7. Label codecs") :]
    lines = [ln for ln in part7.splitlines() if ln.startswith("| random")]
    # top-5's per-seed differences -0.02, -0.01, 0.00: mean -1.00 point, sd 1 point, half-width
    # t(0.975, 2) x 1 / sqrt(3) = 4.303 / 1.732 = 2.48 points; top-1's -5, -5, -5: no spread
    assert lines == [  # baseline++ costs more bytes than top-5 for less accuracy: off the frontier
        "| random | baseline++ (IPC 11) | — | 0 | 10.0 % | 30.0 ± 1.0 | — |  |",
        "| random | LADD (IPC 10) | float32 | 1,000 | 31.0 % | 40.0 ± 1.0 | reference | ✓ |",
        "| random | LADD (IPC 10) | topk:5,uint8,uniform | 250 | 8.0 % | 39.0 ± 1.0 "
        "| -1.00 [-3.48, +1.48] | ✓ |",
        "| random | LADD (IPC 10) | topk:1,uint8,uniform | 50 | 2.0 % | 35.0 ± 1.0 "
        "| -5.00 [-5.00, -5.00] | ✓ |",
    ]
    assert "| codec | label bytes / image | pooled | random | interval reaches 0 |" in part7
    assert "| topk:1,uint8,uniform | 50 | -5.00 [-5.00, -5.00] | -5.00 [-5.00, -5.00] | no |" in (
        part7
    )
    assert "| topk:5,uint8,uniform | 250 | -1.00 [-3.48, +1.48] | -1.00 [-3.48, +1.48] | yes |" in (
        part7
    )
    assert "Picked: **topk:5,uint8,uniform**, 250 label bytes per image" in part7
    assert (
        "(75 % fewer). Paired by seed it scores -1.00 [-3.48, +1.48] points against float32 over "
        "3 seeds (mean [95 % interval]; random -1.00)." in part7
    )
    assert "Passed over (fewer bytes): topk:1,uint8,uniform (pooled: -5.00 points" in part7
    assert "![Part 7: accuracy against storage overhead](figures/part7-frontier.png)" in part7
    png = tmp_path / "figures" / "part7-frontier.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_committed_part7_section_states_the_paired_rule_and_the_default():
    """docs/results.md (generated) gives every committed codec's paired difference and names
    the codec ladd.codecs.DEFAULT_CODEC is."""
    from ladd.codecs import DEFAULT_CODEC, parse_codec

    text = (ROOT / "docs" / "results.md").read_text()
    part7 = text[text.index("## 7. Label codecs") : text.index("## What these numbers are")]
    assert "two-sided 95 % Student-t interval" in part7
    assert f"Picked: **{parse_codec(DEFAULT_CODEC).spec}**" in part7
    # issue 40's paired figures for top-3 uint8 (random real -0.83, -0.34, -0.47; DM -1.00,
    # -1.48, -0.85): -0.83 points pooled, below 0 at 95 %
    assert "| topk:3,uint8,uniform | 150 | -0.83 [-1.25, -0.40] |" in part7
