"""app.records: the study records the Results page shows."""

from __future__ import annotations


def test_the_records_table_names_each_column_once():
    """The Results page's table goes to Arrow, which refuses a repeated column name (a merge
    once listed per_seed twice and the page failed on every workspace)."""
    from app.records import COLUMNS

    assert len(COLUMNS) == len(set(COLUMNS))
