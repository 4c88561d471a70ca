"""How the command line reports (ladd.cli.console): an error is one red line and exit 1 (the
traceback with --debug), user text is never read as markup, a warning is one line."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ladd.cli import app
from ladd.cli.console import guard

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_bad_file_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    res = invoke("info", bad)
    assert res.exit_code == 1
    assert "error:" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    with pytest.raises(Exception, match="not a recognised"):
        invoke("info", bad, "--debug")  # --debug lets the traceback through
    res = invoke("overhead", tmp_path / "missing.safetensors")
    assert res.exit_code == 1 and "no such file" in res.output


def test_user_text_is_never_parsed_as_rich_markup(tmp_path: Path) -> None:
    """A path or class name with "[/...]" in it printed a MarkupError traceback, and a value
    range "[nan, nan]" was blanked: every user-supplied string prints as it is."""
    res = invoke("info", tmp_path / "x[/y]")
    assert res.exit_code == 1 and "x[/y]" in res.output and "Traceback" not in res.output
    from PIL import Image

    for name in ("[bold]", "[red]b"):  # folder names cannot hold "/": rich would eat these tags
        folder = tmp_path / "set" / name
        folder.mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(folder / f"{i}.png")
    res = invoke("info", tmp_path / "set")
    assert res.exit_code == 0, res.output
    assert "[bold]" in res.output and "[red]b" in res.output


def test_a_warning_inside_a_command_is_one_line_and_ladds_deprecations_are_not_hidden(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Python hides a DeprecationWarning raised outside __main__; the guard shows ladd's (a
    user's old spelling, e.g. TrainConfig's full_labels 'set') as one yellow line on stderr,
    without file, line or source, and any other shown warning alike."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # Python's default
        with guard(debug=False):
            warnings.warn_explicit(
                "old spelling: say new\nsecond line", DeprecationWarning, "o.py", 1,
                module="ladd.cli.options",
            )  # fmt: skip
            warnings.warn_explicit("not ours", DeprecationWarning, "t.py", 1, module="torch.x")
            warnings.warn("something odd", UserWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err.splitlines() == ["warning: old spelling: say new", "warning: something odd"]


def test_an_error_in_the_guard_exits_1_and_a_usage_error_passes_through(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as e, guard(debug=False):
        raise KeyError("'no such run'")
    assert e.value.exit_code == 1
    assert capsys.readouterr().err.strip() == "error: no such run"
    with pytest.raises(typer.BadParameter), guard(debug=False):
        raise typer.BadParameter("bad")
    with pytest.raises(ValueError, match="kept"), guard(debug=True):
        raise ValueError("kept")
