"""A `ladd score --out FILE` result as a record of docs/results (part 9), for make_results.py.

python scripts/score_record.py SCORE.json --distiller dm --profile cpu --device "CPU (2 cores)" \
    --command "ladd score ..." [--labeler-recipe strong --labeler-epoch 5] --out docs/results/X.json

The record keeps the whole score (`score`) and, for the Results page's one row per record, the
set's hard-label accuracy as its mean (`mode` "score").
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from ladd.files import write_json


def record(score: dict, args: argparse.Namespace) -> dict:
    spec = score["spec"]
    hard = score["rows"]["set/hard"]
    rec = {
        "part": "9",
        "profile": args.profile,
        "dataset": args.dataset,
        "distiller": args.distiller,
        "ipc": args.ipc,
        "arch": spec["arch"],
        "mode": "score",
        "epochs": spec["epochs"],
        "seeds": len(spec["seeds"]),
        "width": (spec.get("model_options") or {}).get("width"),
        "protocol": score["protocol"],
        "n": spec["n"],
        "r": spec["r"],
        "codec": spec["codec"],
        "dsa_cutout": args.dsa_cutout,
        "per_seed": hard["per_seed"],
        "mean": hard["mean"],
        "std": hard["std"],
        "seconds": score["seconds"],
        "device": args.device,
        "date": args.date,
        "command": args.command,
        "score": score,
    }
    if args.note:
        rec["note"] = args.note
    if args.labeler_recipe:
        rec.update(labeler_recipe=args.labeler_recipe, labeler_epoch=args.labeler_epoch)
        if args.labeler_accuracy is not None:
            rec["labeler_accuracy"] = args.labeler_accuracy
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("score", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--distiller", required=True)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--device", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--date", default=date.today().isoformat())
    ap.add_argument("--labeler-recipe")
    ap.add_argument("--labeler-epoch", type=int)
    ap.add_argument("--labeler-accuracy", type=float)
    ap.add_argument("--note", help="how the set and the labeler were made, the wall time")
    ap.add_argument(
        "--dsa-cutout",
        default="0..H",
        help="DSA's cutout centres as the run drew them (records before 2026-12-07: 0..H-1)",
    )
    args = ap.parse_args()
    write_json(args.out, record(json.loads(args.score.read_text()), args))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
