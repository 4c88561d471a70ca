"""The `ladd` console script: the command line when its extra is installed, one clear line when not.

The command line (ladd.cli) needs typer, click and rich, the `cli` extra; the library does not.
"""

from __future__ import annotations

import sys

CLI_PACKAGES = frozenset({"typer", "click", "rich"})


def main() -> None:
    """Run `ladd.cli.main`, or say how to install the command line when its packages are missing."""
    try:
        from ladd.cli import main as cli_main
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in CLI_PACKAGES:
            raise
        sys.stderr.write(
            f"the ladd command needs the package {err.name!r}: pip install 'ladd-studio[cli]'\n"
        )
        raise SystemExit(1) from None
    cli_main()
