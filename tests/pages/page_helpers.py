"""Shared pieces of the page tests (tests/pages/test_*_page.py): AppTest helpers.

Each page test opens the app, switches to its page, checks it renders without an exception or
an error message, and that its key widgets change what is shown. The small offline demo they
read is built once per session by the `demo` fixture (conftest.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the app package lives at the repository root
    sys.path.insert(0, str(ROOT))
MAIN = str(ROOT / "app" / "main.py")
TIMEOUT = 120


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    if page is not None:
        at.switch_page(f"../pages/{page}").run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def wait_for(at: AppTest, predicate, timeout: float = 300) -> AppTest:
    """Rerun the script until `predicate(at)` holds (a background job finishing)."""
    deadline = time.time() + timeout
    while not predicate(at):
        assert time.time() < deadline, "timed out waiting for a background job"
        assert not at.error, [e.value for e in at.error]
        time.sleep(0.5)
        at.run()
    return at


def successes(at: AppTest) -> str:
    return " ".join(s.value for s in at.success)
