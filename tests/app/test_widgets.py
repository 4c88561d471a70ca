"""app/widgets.py: the plain helpers behind the widgets (no Streamlit session needed)."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")


def test_read_options_map_the_page_defaults_to_from_the_files():
    """The page's "auto", blank and -1 mean "from the files"; the rules themselves are
    ladd.sets.read_options' (tests/sets/test_options.py)."""
    from app.widgets import read_options

    assert read_options("auto", "auto", "", "", False, -1) == ()  # everything from the files
    got = dict(read_options("auto", "cifar10", "", "", True, 0))
    assert got == {"source": "cifar10", "zca_source": "cifar10", "experiment": 0}


def test_read_options_refuse_zca_with_the_source_left_on_auto():
    from app.widgets import read_options

    with pytest.raises(ValueError, match="needs the source"):  # "auto" is no source to fit on
        read_options("auto", "auto", "", "", True, -1)
