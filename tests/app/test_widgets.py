"""app/widgets.py: the plain helpers behind the widgets (no Streamlit session needed)."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")


def test_read_options_turn_the_reading_fields_into_load_set_arguments():
    from app.widgets import read_options

    assert read_options("auto", "auto", "", "", False, -1) == ()  # everything from the files
    got = dict(read_options("datm", "cifar10", "0.5, 0.4,0.3", "0.2,0.2,0.2", True, 2))
    assert got == {
        "format": "datm",
        "source": "cifar10",
        "mean": (0.5, 0.4, 0.3),
        "std": (0.2, 0.2, 0.2),
        "zca_source": "cifar10",
        "experiment": 2,
    }
    import inspect

    from ladd.sets.loading import load_distilled

    # every key is an option of load_set (which passes them to load_distilled)
    assert set(got) <= set(inspect.signature(load_distilled).parameters)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("auto", "auto", "0.5,0.5,0.5", "", False, -1), "together"),
        (("auto", "auto", "a,b,c", "0.1,0.1,0.1", False, -1), "comma-separated numbers"),
        (("auto", "auto", "", "", True, -1), "needs the source"),
    ],
)
def test_read_options_refuse_fields_that_make_no_sense(fields, message):
    from app.widgets import read_options

    with pytest.raises(ValueError, match=message):
        read_options(*fields)
