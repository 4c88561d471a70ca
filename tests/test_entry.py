"""The `ladd` console script (ladd._entry): the command line, or one line naming the cli extra."""

from __future__ import annotations

import builtins

import pytest

from ladd import _entry


def test_without_the_cli_extra_the_script_says_how_to_install_it(monkeypatch, capsys) -> None:
    real_import = builtins.__import__

    def no_typer(name, *args, **kwargs):
        if name == "ladd.cli":
            raise ModuleNotFoundError("No module named 'typer'", name="typer")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_typer)
    with pytest.raises(SystemExit) as stop:
        _entry.main()
    assert stop.value.code == 1
    assert "pip install 'ladd-studio[cli]'" in capsys.readouterr().err


def test_another_missing_module_is_not_blamed_on_the_extra(monkeypatch) -> None:
    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "ladd.cli":
            raise ModuleNotFoundError("No module named 'yaml'", name="yaml")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(ModuleNotFoundError, match="yaml"):
        _entry.main()
