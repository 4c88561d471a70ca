"""The root app (ladd.cli) and its options (ladd.cli.options): every command and option spelled
as before the package split, help everywhere listing each option, the entry points, the
options every command spells alike, and the README's account of them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from ladd.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
WIDE = {"COLUMNS": "240"}  # rich cuts a long option name short on a narrow terminal
COMMANDS = [
    "info",
    "sources",
    "models",
    "random-real",
    "distill",
    "experts",
    "train-labeler",
    "import-labeler",
    "augment",
    "overhead",
    "stats",
    "strategies",
    "drift",
    "fkd-store",
    "train",
    "evaluate",
    "warmup",
    "convert",
    "score",
    "sweep",
    "app",
    "report",
    "runs",
    "runs list",
    "runs show",
    "runs export",
]

pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def commands() -> dict[str, Any]:
    """Every command of the root app by its full name ("runs list"), groups included (typer's
    own copy of click's classes: a group is told by its subcommands)."""
    found: dict[str, Any] = {}

    def walk(group: Any, prefix: str = "") -> None:
        for name, cmd in group.commands.items():
            found[prefix + name] = cmd
            if is_group(cmd):
                walk(cmd, f"{prefix}{name} ")

    walk(typer.main.get_command(app))
    return found


def is_group(cmd: Any) -> bool:
    return hasattr(cmd, "commands")


def test_every_command_keeps_its_name() -> None:
    assert sorted(commands()) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_every_option_of_the_command(command: str) -> None:
    """`ladd CMD --help` shows each of the command's options (the deprecated ones hidden)."""
    res = runner.invoke(app, [*command.split(), "--help"], env=WIDE)
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output
    cmd = commands()[command]
    for p in cmd.params:
        if p.param_type_name == "option":
            for spelling in p.opts + p.secondary_opts:
                shown = re.search(rf"(?<![\w-]){re.escape(spelling)}(?![\w-])", res.output)
                assert bool(shown) != p.hidden, (command, spelling)


def test_train_help_shows_the_options_train_and_evaluate_share() -> None:
    res = runner.invoke(app, ["train", "--help"], env=WIDE)
    for flag in ("--mode", "--protocol", "--epochs", "--seeds", "--loss", "--full-labels",
                 "--lr", "--batch-size", "--width", "--trainer", "--precision", "--no-dsa",
                 "--source", "--zca", "--allow-unwhitened", "--device", "--workspace",
                 "--seed", "--debug", "--json", "--gpus"):  # fmt: skip
        assert flag in res.output, flag


def test_shared_options_are_one_definition() -> None:
    """--device, --workspace, --seed, --debug and --json are each one definition
    (ladd.cli.options): every command that takes one spells it, defaults it and helps it
    alike, and every command that runs on a device also takes --workspace and --debug."""
    seen: dict[str, set[tuple[object, ...]]] = {
        f: set() for f in ("--device", "--workspace", "--seed", "--debug", "--json")
    }
    for name, cmd in commands().items():
        if is_group(cmd):
            continue
        opts = {o: p for p in cmd.params for o in getattr(p, "opts", ())}
        assert "--debug" in opts, name
        if "--device" in opts:
            assert {"--workspace", "--debug"} <= set(opts), name
        for flag, forms in seen.items():
            if flag in opts and not opts[flag].hidden:
                p = opts[flag]
                forms.add((tuple(p.opts), str(p.default), p.help))
    assert all(len(forms) == 1 for forms in seen.values()), seen


def test_readme_says_which_commands_take_the_common_options() -> None:
    """The README's list of the options commands share is what the commands take."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = re.findall(r"^- `(--[a-z-]+)[^`]*`: (.+)$", text, flags=re.M)
    said = {flag: rest for flag, rest in lines if flag in ("--device", "--workspace", "--seed",
                                                            "--debug", "--json")}  # fmt: skip
    assert set(said) == {"--device", "--workspace", "--seed", "--debug", "--json"}
    leaves = {n: c for n, c in commands().items() if not is_group(c)}
    for flag, rest in said.items():
        takes = {n for n, c in leaves.items() if any(flag in p.opts and not p.hidden
                                                     for p in c.params)}  # fmt: skip
        if rest.startswith("every command"):
            assert takes == set(leaves), flag
            continue
        listed = set(re.findall(r"`([a-z-]+(?: [a-z]+)?)`", rest))
        listed = {sub for n in listed for sub in leaves if sub == n or sub.startswith(n + " ")}
        assert listed == takes, (flag, sorted(listed ^ takes))


@pytest.mark.parametrize("module", ["ladd", "ladd.cli"])
def test_module_entry_points_run(module: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "train-labeler" in proc.stdout and "overhead" in proc.stdout


def test_bad_arguments_exit_2_and_bad_values_exit_1(tmp_path: Path) -> None:
    assert invoke("train-labeler", "--source", "shapes", "--epochs", "0").exit_code == 2
    res = invoke("train-labeler", "--source", "shapes", "--save-at", "a,b", "--workspace", tmp_path)
    assert res.exit_code == 2 and "integers" in res.output
    res = invoke("train-labeler", "--source", "nope", "--workspace", tmp_path, "--epochs", "1")
    assert res.exit_code == 1 and "nope" in res.output
    res = invoke("evaluate", tmp_path, "--archs", "convnet_d3,nope", "--workspace", tmp_path)
    assert res.exit_code == 2 and "unknown model 'nope'" in res.output


def test_sigterm_marks_a_cli_run_failed_at_once(tmp_path: Path) -> None:
    from ladd.store import Workspace

    ws = tmp_path / "ws"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ladd", "train-labeler", "--source", "shapes", "--epochs", "500",
         "--save-at", "500", "--width", "8", "--limit-per-class", "20", "--device", "cpu",
         "--workspace", str(ws), "--out", str(tmp_path / "lab")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        db = Workspace(ws).db
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # the run's config.json is written just before the run's body starts: a signal
            # between the run's row and its body would leave it to the stale-run check
            if (ws / "runs.sqlite").exists() and [r.status for r in db.list_runs()] == ["running"]:
                if (ws / "runs" / str(db.list_runs()[0].id) / "config.json").is_file():
                    time.sleep(0.5)
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the run never started")
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    run = db.get_run(db.list_runs()[0].id)
    assert run.status == "failed"
    assert "terminated by signal" in (run.error or "")
