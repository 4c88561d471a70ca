"""ladd/sets/options.py: the reading fields' rules, shared by the command line and the dashboard."""

from __future__ import annotations

import inspect

import pytest

from ladd.sets import SetOptionError, read_options
from ladd.sets.loading import load_distilled


def test_blank_fields_mean_from_the_files():
    assert read_options() == {}
    assert read_options(mean="", std="  ") == {}  # blank text fields are unset


def test_fields_become_load_set_options():
    got = read_options(
        format="datm",
        source="cifar10",
        mean="0.5, 0.4,0.3",
        std=[0.2, 0.2, 0.2],
        zca=True,
        experiment=2,
    )
    assert got == {
        "format": "datm",
        "source": "cifar10",
        "mean": (0.5, 0.4, 0.3),
        "std": (0.2, 0.2, 0.2),
        "zca_source": "cifar10",
        "experiment": 2,
    }
    # every key is an option of load_set (which hands them to load_distilled)
    assert set(got) <= set(inspect.signature(load_distilled).parameters)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"mean": "0.5,0.5,0.5"}, "std", "together"),
        ({"std": "0.5,0.5,0.5"}, "mean", "together"),
        ({"mean": "a,b,c", "std": "0.1,0.1,0.1"}, "mean", "comma-separated numbers"),
        ({"mean": "0.1,0.1,0.1", "std": ",,"}, "std", "no numbers"),
        ({"zca": True}, "zca", "needs the source"),
        ({"format": "pickle"}, "format", "use one of"),
        ({"experiment": -1}, "experiment", "0-based"),
        ({"source": " "}, "source", "empty"),
    ],
)
def test_fields_that_make_no_sense_are_refused_by_name(fields, field, message):
    with pytest.raises(SetOptionError, match=message) as info:
        read_options(**fields)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)  # the dashboard's guard shows ValueErrors


def test_the_cli_and_the_dashboard_share_the_rules(tmp_path):
    """Both faces refuse the same bad fields through read_options (no copy to drift)."""
    pytest.importorskip("streamlit")
    from typer.testing import CliRunner

    from app.widgets import read_options as page_options
    from ladd.cli import app

    with pytest.raises(SetOptionError, match="use one of"):
        page_options("pickle", "auto", "", "", False, -1)
    f = tmp_path / "set.pt"
    f.write_bytes(b"x")
    res = CliRunner().invoke(app, ["info", str(f), "--format", "pickle"])
    assert res.exit_code == 2 and "use one of" in res.output
    res = CliRunner().invoke(app, ["info", str(f), "--mean", "0.5,0.5,0.5"])
    assert res.exit_code == 2 and "together" in res.output
