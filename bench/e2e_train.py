"""`ladd train` as a user runs it: wall time from process start to result, reference vs ours,
cold and warm compile cache, and the dashboard's 50-epoch training.

    python -m bench.e2e_train --size 32 --prep-only --workspace W      # make the set (untimed)
    python -m bench.e2e_train --size 32 --workspace W --cache-root C --json-out $OUT/speed.json
    python -m bench.e2e_train --size 128 --workspace W --cache-root C --json-out ...

The set: random real IPC 10 of the source, label-augmented (N 5, R 0.625) by a labeler trained
for one epoch on a class-balanced subset (the labels' values do not change the speed). 32 px:
real CIFAR-10 (LADD_SHARED_DATA); 128 px: the procedural `shapes` source at 128 px (synthetic
data of the right shape). Every timed run is a fresh `python -m ladd train SET --seeds S
--epochs E --json` process with the CLI's defaults; its wall time counts Python start-up,
imports, data loading, training, evaluation on the test split and saving the models.

Runs, per size (FULL = 5 seeds x 1000 epochs, the issue's figure):
- reference, 1 seed, E_ref epochs: its fixed cost (wall - training seconds) and its time per
  seed-epoch give the reference at FULL (the field's loop trains seeds one after another, each
  the same work: fixed + 5 x 1000 x per-seed-epoch).
- ours with an empty compile cache (cold), then again with the cache it left (warm), compile
  forced on (LADD_FAST_COMPILE=default, what the policy picks for FULL), E_ours epochs: fixed
  cost + compile seconds (from the cache index) + 1000 / E_ours x the rest give ours at FULL.
- 32 px, the dashboard's short training measured directly, 5 seeds x 50 epochs: the reference,
  ours with the CLI's defaults (the policy decides) on a cold and on a warm cache.
- `--short-only` (128 px, `--short-seeds 1`): only the short training, every run measured (the
  reference too), so a short default run at 128 px is timed as a user meets it: the engine its
  plan picks (ladd.plan: at 128 px the stacked step, compiled); each record names the engine and
  the plan's reason.
The 1000-epoch figures are therefore extrapolated from measured parts, never run in full (the
reference alone at 128 px would take ~40 minutes); each record says which numbers are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import append_records, command_line, latest_compile, stamp
from ladd.device import resolve_device

FULL_EPOCHS, FULL_SEEDS, SHORT_EPOCHS = 1000, 5, 50


def _cli(args: list[str], env: dict[str, str], *, as_json: bool = True) -> tuple[float, dict]:
    """Run `python -m ladd ARGS [--json]`; (wall seconds, the JSON of its last line)."""
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "ladd", *args, *(["--json"] if as_json else [])],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"ladd {' '.join(args[:2])} failed: {res.stderr.strip()[-800:]}")
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    return wall, json.loads(lines[-1]) if lines else {}


def _env(**extra: str | None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("LADD_FAST_COMPILE", "TRITON_CACHE_DIR")
    }
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    for k, v in extra.items():
        if v is not None:
            env[k] = v
    return env


def prepare_set(
    workspace: Path, size: int, source: str, *, ipc: int, labeler_limit: int, width: int | None
) -> Path:
    """The label-augmented set of this size (made once; its path is kept in the workspace)."""
    marker = workspace / f"e2e-set-{size}.json"
    if marker.exists():
        return Path(json.loads(marker.read_text())["set"])
    ws = ["--workspace", str(workspace)]
    env = _env()
    rr = workspace / f"rr{size}"
    sized = ["--image-size", str(size)] if size != 32 else []
    _cli(
        ["random-real", "--source", source, "--ipc", str(ipc), "--out", str(rr), "--force"]
        + sized
        + ws,
        env,
        as_json=False,
    )
    lab_args = ["train-labeler", "--source", source, "--epochs", "1", "--save-at", "1"]
    lab_args += ["--limit-per-class", str(labeler_limit), "--out", str(workspace / f"lab{size}")]
    lab_args += sized + (["--width", str(width)] if width else []) + ws
    _, lab = _cli(lab_args, env)
    ckpt = lab["checkpoints"][-1]["path"]
    out = workspace / f"rr{size}-ladd.safetensors"
    _cli(["augment", str(rr), "--labeler", str(ckpt), "--out", str(out), "--force", *ws], env)
    from ladd.files import write_json

    write_json(marker, {"set": str(out), "source": source, "size": size})
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(
        prog="python -m bench.e2e_train", description=__doc__.split("\n")[0]
    )
    p.add_argument("--size", type=int, default=32, choices=[32, 128])
    p.add_argument("--source", default=None, help="default: cifar10 at 32 px, shapes at 128 px")
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--cache-root", type=Path, default=None, help="compile caches (cold/warm)")
    p.add_argument("--prep-only", action="store_true")
    p.add_argument("--ref-epochs", type=int, default=None, help="default 200 (32 px) / 10")
    p.add_argument("--ours-epochs", type=int, default=None, help="default 100 (32 px) / 10")
    p.add_argument("--seeds", type=int, default=FULL_SEEDS)
    p.add_argument("--short-epochs", type=int, default=SHORT_EPOCHS)
    p.add_argument("--no-short", action="store_true", help="skip the 50-epoch runs")
    p.add_argument("--short-only", action="store_true", help="only the 50-epoch runs, all measured")
    p.add_argument("--short-seeds", type=int, default=None, help="default: --seeds")
    p.add_argument(
        "--precision", default=None, help="passed to ladd train (default: the CLI's own default)"
    )
    p.add_argument("--tiny", action="store_true", help="CPU rehearsal sizes (shapes, narrow nets)")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.short_only and args.no_short:
        p.error("--short-only and --no-short exclude each other")
    size = args.size
    source = args.source or ("cifar10" if size == 32 else "shapes")
    width = 8 if args.tiny else None
    args.workspace.mkdir(parents=True, exist_ok=True)
    if args.tiny:
        source = args.source or "shapes"
    set_path = prepare_set(
        args.workspace,
        size,
        source,
        ipc=1 if args.tiny else 10,
        labeler_limit=5 if args.tiny else (100 if size == 32 else 20),
        width=width,
    )
    print(f"set: {set_path}", flush=True)
    if args.prep_only:
        return []
    dev = resolve_device("auto")
    command = command_line("bench.e2e_train", argv)
    cache_root = args.cache_root or (args.workspace / "compile-caches")
    ref_epochs = args.ref_epochs or (2 if args.tiny else (200 if size == 32 else 10))
    ours_epochs = args.ours_epochs or (2 if args.tiny else (100 if size == 32 else 10))
    short = 2 if args.tiny else args.short_epochs
    seeds = 2 if args.tiny else args.seeds
    short_seeds = args.short_seeds or seeds
    base = ["train", str(set_path), "--source", source, "--workspace", str(args.workspace)]
    base += ["--width", str(width)] if width else []
    mine = ["--precision", args.precision] if args.precision else []  # ours only: the
    # reference is the field's loop in fp32 whatever the CLI's default
    records: list[dict[str, Any]] = []

    def emit(rec: dict[str, Any]) -> dict[str, Any]:
        rec = stamp({"kind": "e2e", "image_size": size, "source": source, **rec}, dev, command)
        records.append(rec)
        append_records(args.json_out, [rec])
        print(json.dumps({k: rec[k] for k in rec if k not in ("command", "schema")}), flush=True)
        return rec

    def run(name: str, extra: list[str], cache: Path | None, forced: bool) -> dict[str, Any]:
        env = _env(
            TORCHINDUCTOR_CACHE_DIR=str(cache) if cache else None,
            LADD_COMPILE_CACHE=str(cache) if cache else None,
            LADD_FAST_COMPILE="default" if forced else None,
        )
        wall, out = _cli(base + extra, env)
        engine = out.get("engine") or {}
        compiled = None
        if forced and engine.get("compile_mode") not in (None, "off"):
            # the run's own report: this run's compile seconds (the cache index keeps the
            # first compile of these shapes, which a warm run does not repeat)
            compiled = {
                "compile_seconds": float(engine.get("seconds_compile") or 0.0),
                "loss_diff": engine.get("compiled_loss_diff"),
            }
        elif cache and forced:  # a CLI without the engine report: the cache index
            compiled = latest_compile(cache, seeds=seeds)
        return emit(
            {
                "config": f"e2e-{size}px-{name}",
                "run": name,
                "args": extra,
                "engine": engine.get("engine"),
                "decision": engine.get("decision"),
                "wall_s": round(wall, 2),
                "train_s": round(float(out.get("seconds", 0.0)), 2),
                "compile_s": round(compiled["compile_seconds"], 2) if compiled else None,
                "compiled_loss_diff": compiled.get("loss_diff") if compiled else None,
                "accuracy_mean": out.get("accuracy_mean"),
                "measured": True,
            }
        )

    cold_dir = cache_root / f"e2e-{size}"  # the full runs' cache: cold, then warm
    ref_fixed = per_seed_epoch = 0.0
    if not args.short_only:
        shutil.rmtree(cold_dir, ignore_errors=True)  # cold means empty, also on a rerun
        # The reference: one seed, then the field's cost of five at FULL.
        ref = run(
            "reference-1seed",
            ["--trainer", "reference", "--seeds", "1", "--epochs", str(ref_epochs)],
            None,
            False,
        )
        ref_fixed = ref["wall_s"] - ref["train_s"]
        per_seed_epoch = ref["train_s"] / ref_epochs
        ref_full = ref_fixed + FULL_SEEDS * FULL_EPOCHS * per_seed_epoch

        # Ours, compile forced, cold then warm cache.
        ours_args = ["--seeds", str(seeds), "--epochs", str(ours_epochs), *mine]
        full: dict[str, float] = {}
        for state in ("cold", "warm"):
            r = run(f"ours-{state}", ours_args, cold_dir, True)
            comp = r["compile_s"] or 0.0
            steady = max(0.0, r["train_s"] - comp)
            full[state] = (r["wall_s"] - r["train_s"]) + comp + steady * FULL_EPOCHS / ours_epochs
        summary = {
            "config": f"e2e-{size}px-full",
            "run": "summary",
            "seeds": FULL_SEEDS,
            "epochs": FULL_EPOCHS,
            "reference_full_s": round(ref_full, 1),
            "ours_full_cold_s": round(full["cold"], 1),
            "ours_full_warm_s": round(full["warm"], 1),
            "ratio_cold": round(ref_full / full["cold"], 2) if full["cold"] else None,
            "ratio_warm": round(ref_full / full["warm"], 2) if full["warm"] else None,
            "measured": False,
            "how": (
                f"reference: 1 seed x {ref_epochs} epochs measured, fixed cost + 5 x 1000 x its "
                f"time per seed-epoch; ours: {seeds} seeds x {ours_epochs} epochs measured cold and warm "
                "(compile forced), fixed cost + compile + 1000/E x its training time"
            ),
        }
        if seeds != FULL_SEEDS:
            summary["note"] = f"ours measured with {seeds} seeds (rehearsal)"
        emit(summary)

    if not args.no_short:  # the dashboard's short training, measured in full
        ref_short = None
        measured = size == 32 or args.tiny or args.short_only
        if measured:
            r = run(
                f"reference-{short}ep",
                ["--trainer", "reference", "--seeds", str(short_seeds), "--epochs", str(short)],
                None,
                False,
            )
            ref_short = r["wall_s"]
        cold50 = cache_root / f"e2e-{size}-short"
        shutil.rmtree(cold50, ignore_errors=True)
        # warm: the cache the full runs left, or (short only) the one the cold short run left
        warm = cold50 if args.short_only else cold_dir
        shorts: dict[str, dict[str, Any]] = {}
        for state, cache in (("cold", cold50), ("warm", warm)):
            shorts[state] = run(
                f"ours-{short}ep-{state}",
                ["--seeds", str(short_seeds), "--epochs", str(short), *mine],
                cache,
                False,
            )
        if ref_short is None:
            ref_short = ref_fixed + short_seeds * short * per_seed_epoch
        cold_s, warm_s = shorts["cold"]["wall_s"], shorts["warm"]["wall_s"]
        emit(
            {
                "config": f"e2e-{size}px-{short}ep",
                "run": "summary-short",
                "seeds": short_seeds,
                "epochs": short,
                "reference_s": round(ref_short, 1),
                "ours_cold_s": cold_s,
                "ours_warm_s": warm_s,
                "ratio_cold": round(ref_short / cold_s, 2),
                "ratio_warm": round(ref_short / warm_s, 2),
                "engine": shorts["cold"].get("engine"),
                "decision": shorts["cold"].get("decision"),
                "measured": measured,
            }
        )
    return records


if __name__ == "__main__":
    main()
