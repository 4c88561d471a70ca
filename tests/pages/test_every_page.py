"""Every page of app/main.py: each loads on an empty workspace, and each has its own test file
here (the page tests mirror pages/)."""

from __future__ import annotations

import re
from pathlib import Path

from page_helpers import MAIN, ROOT, TIMEOUT, AppTest

HERE = Path(__file__).resolve().parent


def registered_pages() -> list[str]:
    """The page files app/main.py registers with st.navigation, in its order."""
    text = Path(MAIN).read_text(encoding="utf-8")
    return re.findall(r'st\.Page\(\s*"\.\./pages/([^"]+\.py)"', text)


def test_every_page_file_is_registered_and_has_its_own_test_file():
    files = sorted(p.name for p in (ROOT / "pages").glob("*.py"))
    assert sorted(registered_pages()) == files
    for name in files:
        stem = re.sub(r"^\d+_", "", Path(name).stem)
        assert (HERE / f"test_{stem}_page.py").is_file(), f"no tests/pages/test_{stem}_page.py"


def test_every_page_loads_on_an_empty_workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("LADD_WORKSPACE", str(tmp_path))
    for page in registered_pages():
        at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
        at.switch_page(f"../pages/{page}").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
