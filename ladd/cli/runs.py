"""The runs database of a workspace: `ladd runs list | show | export`, and `ladd report` (one
HTML file comparing two finished runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ladd.cli.console import guard, out, print_json
from ladd.cli.options import DebugOpt, ForceOpt, JsonOpt, SeedOpt, WorkspaceOpt, open_workspace

app = typer.Typer()
runs_app = typer.Typer(help="The runs database of a workspace.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

KindOpt = Annotated[str | None, typer.Option("--kind", help="Only runs of this kind.")]


@app.command()
def report(
    run_a: Annotated[int, typer.Argument(help="Run id of the first run (e.g. the baseline).")],
    run_b: Annotated[int, typer.Argument(help="Run id of the second run (e.g. LADD).")],
    out_path: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path(
        "report.html"
    ),
    k: Annotated[int, typer.Option("--k", min=1, max=64, help="Images in the CAM grid.")] = 8,
    pick: Annotated[
        str,
        typer.Option(
            "--pick",
            help="Which test images: b_right_a_wrong | a_right_b_wrong | both_wrong | "
            "both_right | class | random.",
        ),
    ] = "b_right_a_wrong",
    klass: Annotated[
        int | None, typer.Option("--class", min=0, help="Class index for --pick class.")
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="CAM method: gradcam | gradcam++ | eigencam.")
    ] = "gradcam",
    no_cams: Annotated[bool, typer.Option("--no-cams", help="Leave the CAM grid out.")] = False,
    seed: SeedOpt = 0,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """One self-contained HTML report comparing two finished training runs (configs, per-class
    accuracy, confusion matrices, training curves, CAM grid); opens without a network."""
    with guard(debug):
        from ladd.report import report_command

        ws = open_workspace(workspace)
        path = report_command(
            run_a,
            run_b,
            out_path,
            workspace=ws.root,
            k=k,
            pick=pick,
            klass=klass,
            method=method,
            seed=seed,
            cams=not no_cams,
            force=force,
        )
        out.print(f"report written to {path}")


@runs_app.command("list")
def runs_list(
    kind: KindOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1)] = None,
    json_out: JsonOpt = False,
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """List runs, newest first."""
    with guard(debug):
        import datetime as dt

        from ladd.summaries import summarise

        ws = open_workspace(workspace)
        rows = ws.db.list_runs(kind, limit)
        table = Table("id", "kind", "status", "started", "what", "accuracy", "note")
        for r in rows:
            s = summarise(r)
            what = f"{s.train.arch} / {s.mode}, {s.train.epochs} ep" if s.train else ""
            table.add_row(
                str(s.id),
                s.kind,
                s.status,
                dt.datetime.fromtimestamp(s.created).strftime("%Y-%m-%d %H:%M:%S"),
                what,
                f"{s.accuracy_mean:.2%}" if s.accuracy_mean is not None else "",
                s.error or s.label or "",
            )
        out.print(table)
        out.print(f"{len(rows)} run(s) in {ws.db.path}")
        if json_out:
            print_json([r.to_dict() for r in rows])


@runs_app.command("show")
def runs_show(
    run_id: Annotated[int, typer.Argument(help="Run id.")],
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show one run (config, metrics, artifacts) as JSON."""
    with guard(debug):
        ws = open_workspace(workspace)
        ws.db.mark_stale()
        print_json(ws.db.get_run(run_id).to_dict())


@runs_app.command("export")
def runs_export(
    csv_path: Annotated[Path, typer.Argument(help="CSV file to write.")],
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Export all runs to CSV."""
    with guard(debug):
        ws = open_workspace(workspace)
        path = ws.db.export_csv(csv_path, kind, force=force)
        out.print(f"runs exported to {path}")
