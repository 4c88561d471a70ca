"""`ladd app`: the dashboard, started from the repository's app/ folder (loopback only)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ladd.cli.console import CLIError, err, guard
from ladd.cli.options import DebugOpt

app = typer.Typer()


@app.command("app")
def dashboard(
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8501,
    debug: DebugOpt = False,
) -> None:
    """Start the dashboard on http://127.0.0.1:PORT (loopback only, from any folder)."""
    with guard(debug):
        import ladd

        launch = Path(ladd.__file__).resolve().parents[1] / "app" / "launch.py"
        if not launch.is_file():
            raise CLIError(
                "the dashboard lives in the repository's app/ folder, which this installation "
                "of ladd does not have: run `make app` in a clone of LADD Studio"
            )
        spec = importlib.util.spec_from_file_location("ladd_app_launch", launch)
        if spec is None or spec.loader is None:
            raise CLIError(f"{launch}: cannot be loaded")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        argv = module.streamlit_command(port)
        err.print(f"dashboard on http://127.0.0.1:{port}")
        sys.stdout.flush()
        os.execv(argv[0], argv)
