"""The docs' instructions run from a clone anywhere: no absolute folder of one machine."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


def test_there_are_docs_to_check() -> None:
    assert ROOT / "README.md" in DOCS and len(DOCS) > 2


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_doc_names_a_folder_of_the_machine_it_was_written_on(doc: Path) -> None:
    hits = [
        f"{doc.name}:{i}: {line.strip()[:120]}"
        for i, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        if "/work/" in line
    ]
    assert hits == [], "use paths relative to the repository:\n" + "\n".join(hits)


def _commands() -> dict[str, set[str]]:
    """Every `ladd` command (subcommands as "runs list") and the options it takes."""
    import typer

    from ladd.cli import app

    found: dict[str, set[str]] = {}

    def walk(cmd, prefix: str) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            if getattr(sub, "commands", None):
                walk(sub, f"{prefix}{name} ")
            else:
                found[prefix + name] = {o for p in sub.params for o in p.opts}

    walk(typer.main.get_command(app), "")
    return found
