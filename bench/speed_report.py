"""Turn the records of a speed session (scripts/speed_gpu.sh's $OUT/speed.json) into the docs.

    python -m bench.speed_report OUT/speed.json                  # print the tables
    python -m bench.speed_report OUT/speed.json --write --session "device call of 2026-12-01"

With --write: appends the records not already there to docs/benchmarks.json and replaces the
section between the `speed-results` markers of docs/benchmarks.md with the tables (end-to-end
`ladd train`, the 50-epoch run, levers per configuration with the winner, the cost table of all
five architectures, dense labels, evaluation, accuracy parity), each with the card, date and
command. It also prints the stacked engine's levers (FastOptions) the winners suggest, where
a winner beats the baseline with a lever the engine still has (the "dense" and "streams"
layouts went with issue 34): a person decides whether to make them the plan's defaults.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ladd.files import write_text

START, END = "<!-- speed-results:start -->", "<!-- speed-results:end -->"
PARITY_TOL = 5e-3  # a lever whose step loss is further than this from fp32's is not a winner


def _f(v: Any, fmt: str = ",.0f") -> str:
    if v is None:
        return "-"
    if isinstance(v, (int, float)):
        return format(v, fmt)
    return str(v)


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def lever_winners(records: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The fastest variant per (arch, image size) among those that ran with step parity (eager
    in its layout against the fp32 reference, and compiled against eager)."""
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for r in records:
        if r.get("kind") != "lever" or r.get("error") or not r.get("ours_samples_per_s"):
            continue
        if (r.get("step_loss_max_abs_diff") or 0.0) > PARITY_TOL:
            continue
        if (r.get("compiled_loss_diff") or 0.0) > PARITY_TOL:
            continue
        key = (r["arch"], int(r["image_size"]))
        if key not in best or r["ours_samples_per_s"] > best[key]["ours_samples_per_s"]:
            best[key] = r
    return best


def _engine(rec: dict[str, Any]) -> str:
    """Which engine a run used and why (records before the engine field: '-')."""
    engine = rec.get("engine")
    if not engine:
        return "-"
    decision = rec.get("decision")
    return f"{engine} ({decision})" if decision else str(engine)


def render(records: list[dict[str, Any]], session: str | None = None) -> str:
    """The markdown section for these records."""
    cards = sorted({r.get("card", "?") for r in records if r.get("kind") != "preview"})
    dates = sorted({r.get("date", "?") for r in records})
    parts = [f"Card: {', '.join(cards) or '-'}; date: {', '.join(dates) or '-'}."]
    if session:
        parts.append(f"Session: {session}.")
    e2e = [r for r in records if r.get("kind") == "e2e"]
    full = [r for r in e2e if r.get("run") == "summary"]
    if full:
        rows = [
            [
                f"{r['image_size']} px ({r['source']})",
                _f(r["reference_full_s"], ".1f"),
                _f(r["ours_full_cold_s"], ".1f"),
                _f(r["ours_full_warm_s"], ".1f"),
                f"**{_f(r['ratio_cold'], '.2f')}x** / **{_f(r['ratio_warm'], '.2f')}x**",
                "yes" if (r.get("ratio_warm") or 0) >= 4 else "no",
            ]
            for r in full
        ]
        parts.append(
            "### `ladd train`, 5 seeds x 1000 epochs, process start to result\n\n"
            + _table(
                [
                    "set",
                    "reference s",
                    "ours cold s",
                    "ours warm s",
                    "ratio cold / warm",
                    ">= 4x (warm)?",
                ],
                rows,
            )
            + "\n\nExtrapolated from measured runs (bench.e2e_train: "
            + full[0]["how"]
            + "). The measured runs:\n\n"
            + _table(
                ["run", "wall s", "training s", "compile s", "accuracy"],
                [
                    [
                        f"{r['image_size']} px {r['run']} {' '.join(r.get('args', []))}",
                        _f(r["wall_s"], ".1f"),
                        _f(r["train_s"], ".1f"),
                        _f(r.get("compile_s"), ".1f"),
                        _f(r.get("accuracy_mean"), ".3f"),
                    ]
                    for r in e2e
                    if r.get("measured") and "wall_s" in r
                ],
            )
        )
    short = [r for r in e2e if r.get("run") == "summary-short"]
    if short:
        parts.append(
            "### The dashboard's short training (CLI defaults)\n\n"
            + _table(
                [
                    "set",
                    "seeds x epochs",
                    "reference s",
                    "ours cold s",
                    "ours warm s",
                    "ratio cold / warm",
                    ">= 1x?",
                    "measured",
                    "ours ran on",
                ],
                [
                    [
                        f"{r['image_size']} px ({r['source']})",
                        f"{r.get('seeds', '?')} x {r.get('epochs', '?')}",
                        _f(r["reference_s"], ".1f"),
                        _f(r["ours_cold_s"], ".1f"),
                        _f(r["ours_warm_s"], ".1f"),
                        f"{_f(r['ratio_cold'], '.2f')}x / {_f(r['ratio_warm'], '.2f')}x",
                        "yes" if min(r["ratio_cold"], r["ratio_warm"]) >= 1 else "no",
                        "yes" if r.get("measured") else "reference extrapolated",
                        _engine(r),
                    ]
                    for r in short
                ],
            )
        )
    levers = [r for r in records if r.get("kind") == "lever"]
    if levers:
        by: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in levers:
            by[r.get("bench_config", r["config"])].append(r)
        winners = lever_winners(records)
        for name, rs in by.items():
            rows = []
            for r in rs:
                win = any(w is r for w in winners.values())
                rows.append(
                    [
                        ("**" + r["variant"] + "**") if win else r["variant"],
                        _f(r.get("ours_samples_per_s")),
                        _f(r.get("ratio"), ".2f"),
                        _f(r.get("ours_seconds_compile"), ".1f"),
                        _f(r.get("step_loss_max_abs_diff"), ".1e"),
                        _f(r.get("compiled_loss_diff"), ".1e"),
                        r.get("error", ""),
                    ]
                )
            ref = next(
                (r.get("reference_samples_per_s") for r in rs if r.get("reference_samples_per_s")),
                None,
            )
            parts.append(
                f"### Levers: {name} (reference {_f(ref)} samples/s)\n\n"
                + _table(
                    [
                        "variant",
                        "seed-samples/s",
                        "ratio",
                        "compile s",
                        "step-loss diff vs fp32 ref",
                        "compiled vs eager",
                        "error",
                    ],
                    rows,
                )
            )
    costs = [r for r in records if r.get("kind") == "cost"]
    if costs:
        parts.append(
            "### Cost model: all five architectures (bench.cost_table)\n\n"
            + _table(
                [
                    "arch",
                    "px",
                    "batch",
                    "reference samples/s",
                    "ours seed-samples/s",
                    "ratio",
                    "compile s",
                    "card",
                ],
                [
                    [
                        r["arch"],
                        str(r["image_size"]),
                        str(r["batch_size"]),
                        _f(r.get("reference_samples_per_s"), ",.1f"),
                        _f(r.get("ours_samples_per_s"), ",.1f"),
                        _f(r.get("ratio"), ".2f"),
                        _f(r.get("ours_seconds_compile"), ".1f"),
                        r.get("card", "-"),
                    ]
                    for r in costs
                ],
            )
        )
    dense = [r for r in records if r.get("kind") == "dense"]
    if dense:
        parts.append(
            "### Dense labels (target >= 20,000 crops/s at 128 px)\n\n"
            + _table(
                ["config", "form", "crops/s", "max / mean |p - p_fp32|", "compile s", ">= 20k?"],
                [
                    [
                        r["config"],
                        r.get("form", "eager-fp32"),
                        _f(r["crops_per_s"]),
                        (
                            f"{r['max_abs_diff_vs_fp32']:.1e} / {r['mean_abs_diff_vs_fp32']:.1e}"
                            if "max_abs_diff_vs_fp32" in r
                            else "(reference)"
                        ),
                        _f(r.get("seconds_compile"), ".1f"),
                        "yes" if r["crops_per_s"] >= 20_000 else "no",
                    ]
                    for r in dense
                ],
            )
        )
    evals = [r for r in records if r.get("kind") == "eval"]
    if evals:
        parts.append(
            "### Evaluation on the test split\n\n"
            + _table(
                [
                    "config",
                    "per model fp32 img/s",
                    "all seeds stacked img/s",
                    "precision",
                    "ratio",
                    "default (per model, auto) img/s",
                    "max |accuracy diff|",
                ],
                [
                    [
                        r["config"],
                        _f(r["per_model_fp32_images_per_s"]),
                        _f(r["stacked_images_per_s"]),
                        r["stacked_precision"],
                        _f(r["ratio"], ".2f"),
                        _f(r.get("per_model_auto_images_per_s")),  # older records lack it
                        _f(r["accuracy_diff_max"], ".4f"),
                    ]
                    for r in evals
                ],
            )
        )
    par = [r for r in records if r.get("config") == "accuracy-parity"]
    if par:
        parts.append(
            "### Accuracy parity (defaults: bf16 on CUDA)\n\n"
            + _table(
                ["source, arch, epochs", "reference fp32", "ours", "parity"],
                [
                    [
                        f"{r['source']}, {r['arch']}, {r['epochs']}",
                        f"{100 * r['reference_accuracy_mean']:.2f} +- {100 * r['reference_accuracy_std']:.2f}",
                        f"{100 * r['ours_accuracy_mean']:.2f} +- {100 * r['ours_accuracy_std']:.2f} "
                        f"({r.get('precision', '?')})",
                        "yes" if r["parity"] else "no",
                    ]
                    for r in par
                ],
            )
        )
    commands = sorted({r["command"] for r in records if r.get("command")})
    if commands:
        parts.append("Commands:\n\n" + "\n".join(f"    {c}" for c in commands))
    return "\n\n".join(parts) + "\n"


def suggested_levers(records: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The FastOptions levers the winning variants suggest (only where a winner beats the
    baseline, and only with the one layout the stacked engine has: a record of a layout since
    removed suggests nothing)."""
    out = {}
    base = {
        (r["arch"], int(r["image_size"])): r
        for r in records
        if r.get("kind") == "lever" and r.get("variant") == "baseline" and not r.get("error")
    }
    for key, w in lever_winners(records).items():
        b = base.get(key)
        if w.get("variant") == "baseline" or (
            b and w["ours_samples_per_s"] <= b["ours_samples_per_s"]
        ):
            continue
        opts = dict(w["fast_options"])
        if opts.get("layout", "grouped") != "grouped":
            continue
        out[key] = {k: v for k, v in opts.items() if k in ("channels_last", "compile")}
    return out


def merge_json(path: Path, records: list[dict[str, Any]]) -> int:
    """Append the records not already in the JSON list at `path`; how many were added."""
    existing = json.loads(path.read_text()) if path.exists() else []
    seen = {json.dumps(r, sort_keys=True) for r in existing}
    new = [r for r in records if json.dumps(r, sort_keys=True) not in seen]
    write_text(path, json.dumps(existing + new, indent=2) + "\n")
    return len(new)


def write_section(path: Path, body: str) -> None:
    """Replace the text between the markers of `path` (appended when it has none)."""
    text = path.read_text() if path.exists() else ""
    block = f"{START}\n{body}{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    write_text(path, text)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(
        prog="python -m bench.speed_report", description=__doc__.split("\n")[0]
    )
    p.add_argument("records", type=Path)
    p.add_argument("--docs", type=Path, default=Path("docs"))
    p.add_argument("--session", default=None, help="e.g. 'bash scripts/speed_gpu.sh, 2026-12-01'")
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    records = json.loads(args.records.read_text())
    body = render(records, args.session)
    print(body)
    levers = suggested_levers(records)
    if levers:
        print("FastOptions levers suggested by the winners (ladd/trainers/stacked.py):")
        for key, v in levers.items():
            print(f"    {key!r}: {v!r},")
    if args.write:
        added = merge_json(args.docs / "benchmarks.json", records)
        write_section(args.docs / "benchmarks.md", body)
        print(
            f"{added} record(s) added to {args.docs / 'benchmarks.json'}; "
            f"{args.docs / 'benchmarks.md'} updated"
        )
    return body


if __name__ == "__main__":
    main()
