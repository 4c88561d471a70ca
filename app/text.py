"""Text from files and paths, shown as text: never as Markdown, HTML, math or an emoji code.

Class names, run labels, folder and file names, and error messages that quote an archive
member all come from files the dashboard did not write. Streamlit renders the text of
st.markdown, st.caption, st.error/warning/info/success, st.toast, widget labels (expander,
button, checkbox, metric, page link) and progress texts as Markdown: a class named
`![x](http://host/a)` would make the viewer's browser fetch that URL. `literal` escapes every
character that opens markup there (backslash-escaped, as CommonMark allows for punctuation):
`[ ] !` (links and images), `* _ ~` (emphasis; an underscore inside a word opens nothing and
is left alone), `` ` `` (code), `< > &` (HTML, autolinks, entities, quotes), `$` (math), a
`:` before a letter (Streamlit's `:red[...]` directives, `:smile:` and `:material/x:` codes;
"Training: x" keeps its colon as it is), a leading `#` (a heading) and the backslash itself;
and it folds the text onto one line (no list, table or heading can start inside it). The text
then shows exactly as written. Pages interpolate file-derived strings through it
(`f"class **{literal(name)}**"`); the helpers of app.widgets that show messages do it
themselves.
"""

from __future__ import annotations

import re
from typing import Any

_SPECIAL = re.compile(r"[\\`*~\[\]!<>&$]|:(?=[A-Za-z])|^#|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def literal(text: Any) -> str:
    """`text` (any value, str()'d) escaped so that Streamlit's Markdown shows it as written,
    on one line."""
    flat = " ".join(str(text).split())
    return _SPECIAL.sub(lambda m: "\\" + m.group(0), flat)
