"""The command line that starts the dashboard, with its settings passed explicitly.

Streamlit reads `.streamlit/config.toml` from the folder it is started in only, so
`streamlit run /abs/path/app/main.py` started anywhere else falls back to its defaults and
listens on every interface. `streamlit_command` passes every setting of the project's
config.toml as a flag instead, with the bind address forced to loopback: the dashboard reads
server paths and trains models, so it must never be reachable from the network, wherever it is
started. (`ladd app` and `make app` run this command.)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: only the forced settings and the port are passed
    tomllib = None

APP_DIR = Path(__file__).resolve().parent
REPO_ROOT = APP_DIR.parent
MAIN = APP_DIR / "main.py"
CONFIG = REPO_ROOT / ".streamlit" / "config.toml"
LOOPBACK = "127.0.0.1"
# Settings that hold whatever config.toml says: the dashboard is local only.
FORCED = {"server.address": LOOPBACK, "browser.serverAddress": LOOPBACK}


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"server": {"port": 1}} -> {"server.port": 1} (nested tables such as theme.light too)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dashboard_settings(config: Path = CONFIG) -> dict[str, Any]:
    """The settings of the project's config.toml (flattened), with the loopback bind forced."""
    settings: dict[str, Any] = {}
    if config.is_file() and tomllib is not None:
        settings = _flatten(tomllib.loads(config.read_text(encoding="utf-8")))
    settings.update(FORCED)
    return settings


def streamlit_command(
    port: int = 8501, *, python: str | None = None, config: Path = CONFIG
) -> list[str]:
    """argv that runs the dashboard on 127.0.0.1:`port`, correct from any current folder:
    `python -m streamlit run <abs>/app/main.py --server.address 127.0.0.1 ...`."""
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port must be in 1..65535, got {port}")
    argv = [python or sys.executable, "-m", "streamlit", "run", str(MAIN)]
    settings = dashboard_settings(config)
    settings["server.port"] = int(port)
    for name, value in settings.items():
        argv.append(f"--{name}={_flag_value(value)}")
    return argv
