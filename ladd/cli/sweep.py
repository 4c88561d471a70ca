"""`ladd sweep`: a grid of trainings from a TOML spec (ladd.sweep), resumable."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ladd.cli.console import err, guard, out, print_json, warn
from ladd.cli.options import DebugOpt, JsonOpt, WorkspaceOpt, open_workspace

app = typer.Typer()

EXECUTORS = ("auto", "ray", "serial")


@app.command()
def sweep(
    spec_file: Annotated[Path, typer.Argument(help="A sweep spec (TOML; see docs/sweeps.md).")],
    executor: Annotated[
        str, typer.Option("--executor", help="auto (ray when installed) | ray | serial")
    ] = "auto",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Join a Ray cluster (auto, host:6379, ray://head:10001); default: a local one.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the grid, what is recorded and the cost.")
    ] = False,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run a grid of trainings (sets x archs x modes x N/R x labeler epochs x seeds), resumable."""
    with guard(debug):
        from ladd.sweep import TextProgress, load_spec, plan_sweep, ray_available, run_sweep

        ws = open_workspace(workspace)
        spec = load_spec(spec_file)
        if executor not in EXECUTORS:
            raise typer.BadParameter("use auto, ray or serial", param_hint="--executor")
        chosen = ("ray" if ray_available() else "serial") if executor == "auto" else executor
        plan = plan_sweep(spec, ws)
        err.print(plan.summary())
        if dry_run:  # a run shows the sets' warnings as sweep events
            for w in plan.warnings:
                warn(w)
            table = Table("cell", "recorded run", "estimate (s)")
            for row in plan.table():
                sec = row.get("estimate_seconds")
                table.add_row(
                    row["cell"],
                    str(row["recorded_run"] or ""),
                    f"{sec:.0f}" if isinstance(sec, (int, float)) else "?",
                )
            out.print(table)
            if json_out:
                print_json({"cells": plan.table()})
            return
        res = run_sweep(
            spec, ws, executor=chosen, address=address, on_event=TextProgress(sys.stderr)
        )
        out.print(
            f"sweep {spec.name}: {res.ran} cell(s) run, {res.skipped} already recorded, "
            f"{res.wall_seconds:.0f} s ({chosen}); record in {ws.root / 'sweeps' / spec.name}"
        )
        if json_out:
            print_json(res.record.to_dict())
