"""Where the command line writes, and how an error reaches the user.

`out` is stdout (tables, results; with --json the last line is one JSON object), `err` is
stderr (warnings, notes, progress). Neither parses rich markup: paths, class names and
messages come from users and files, and "[/x]" in one of them prints as it is; styling goes
through Text objects. `guard` turns any error into one red line and exit code 1 (--debug: the
traceback), and every warning raised while a command runs into one yellow line.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import click
import typer
from rich.console import Console
from rich.text import Text

from ladd.progress import ProgressFn

__all__ = [
    "CLIError",
    "deprecated",
    "err",
    "fmt_flops",
    "guard",
    "note",
    "out",
    "print_json",
    "progress_bar",
    "warn",
]

out = Console(soft_wrap=True, highlight=False, markup=False)
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)


class CLIError(Exception):
    """A user-facing error: one line, exit code 1."""


def warn(message: str) -> None:
    err.print(Text("warning: ", style="yellow") + Text(str(message)))


def note(message: str) -> None:
    err.print(Text("note: ", style="yellow") + Text(str(message)))


def deprecated(old: str, new: str) -> None:
    """One line saying an old spelling still works and which new form to write instead."""
    warn(f"{old} is deprecated: {new}")


def print_json(obj: Any) -> None:
    """One JSON object on one line of stdout (numpy and torch values as JSON numbers)."""
    from ladd.files import json_default

    sys.stdout.write(json.dumps(obj, default=json_default) + "\n")
    sys.stdout.flush()


def progress_bar(description: str) -> AbstractContextManager[ProgressFn]:
    """The progress adapter on stderr: a rich bar on a terminal, plain lines in a log."""
    from ladd.progress import progress_reporter

    return progress_reporter(description)


def fmt_flops(f: float) -> str:
    return f"{f / 1e15:.4g} PFLOPs" if f >= 1e13 else f"{f / 1e9:.4g} GFLOPs"


# Click's own exceptions (typer may vendor its own copy of click): let click handle them.
_PASS_THROUGH: tuple[type[BaseException], ...] = tuple(
    {
        click.ClickException,
        click.exceptions.Exit,
        click.exceptions.Abort,
        typer.Exit,
        typer.Abort,
        SystemExit,
        *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"),
    }
)


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    warn(str(message).strip().splitlines()[0] if str(message).strip() else category.__name__)


@contextmanager
def guard(debug: bool) -> Iterator[None]:
    """Run a command's body: any error is one red line and exit 1 (usage errors: click's
    message and exit 2; Ctrl-C or SIGTERM: exit 130); with --debug the traceback. A warning
    raised meanwhile (ladd's deprecations included, which Python hides by default) is one
    yellow line; with --debug, Python's own form with its file and line."""
    with warnings.catch_warnings():
        warnings.filterwarnings("default", category=DeprecationWarning, module="ladd")
        if not debug:
            warnings.showwarning = _one_line_warning
        try:
            yield
        except _PASS_THROUGH:
            raise
        except KeyboardInterrupt:
            err.print(Text("interrupted", style="red"))
            raise typer.Exit(130) from None
        except Exception as e:  # every error reaches the user as one line
            if debug:
                raise
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if isinstance(e, KeyError):
                msg = msg.strip("'\"")
            err.print(Text("error: ", style="red") + Text(msg))
            raise typer.Exit(1) from None
