"""app.text.literal: text from files shows as written, never as Markdown or HTML (issue #38)."""

from __future__ import annotations

import html
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the app package lives at the repository root
    sys.path.insert(0, str(ROOT))

markdown_it = pytest.importorskip("markdown_it")

HOSTILE = [
    "![x](http://host/a)",
    "[click](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ *it* ~~gone~~ `code` &amp; :red[red] :material/home: $x^2$",
    "# heading",
    "> quote | cell | cell",
    "back\\slash \\*",
    "class_7 my_folder/file_name.png",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_string_from_a_file_renders_as_exactly_that_text(text) -> None:
    """CommonMark (+ GFM tables and strikethrough) renders the escaped string as the text
    itself: no image, link, emphasis, code, HTML, heading or table."""
    from app.text import literal

    md = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])
    rendered = md.render(literal(text))
    assert rendered.startswith("<p>") and rendered.count("<") == 2, rendered  # <p> ... </p>
    assert html.unescape(rendered[3:-5]) == text


def test_text_is_folded_onto_one_line_and_plain_words_are_untouched() -> None:
    from app.text import literal

    assert literal("two\nlines\n\n# not a heading") == "two lines # not a heading"
    assert literal("# a heading") == "\\# a heading"
    assert (
        literal("/tmp/ws/sets/random_real_shapes_ipc10") == "/tmp/ws/sets/random_real_shapes_ipc10"
    )
