"""app/tables.py: the per-class, confusion and top-k tables of the many-classes views."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pandas")

from app.tables import confusions_table, per_class_table, soft_label_table  # noqa: E402
from ladd.classes import top_classes  # noqa: E402

NAMES = ["ant", "bee", "cat", "dog"]


def test_per_class_table_is_worst_first_by_the_column_asked():
    a, b = np.array([0.9, 0.2, 0.5, 0.2]), np.array([0.1, 0.8, 0.6, 0.4])
    df = per_class_table(NAMES, {"A": a, "B": b}, "A")
    assert list(df.columns) == ["index", "class", "A", "B"]
    assert list(df["class"]) == ["bee", "dog", "cat", "ant"] and list(df["index"]) == [1, 3, 2, 0]
    assert list(per_class_table(NAMES, {"A": a, "B": b}, "B")["class"])[:2] == ["ant", "dog"]
    with pytest.raises(ValueError, match="cannot sort"):
        per_class_table(NAMES, {"A": a}, "C")


def test_confusions_table_names_the_classes_and_keeps_the_order():
    m = np.array([[8, 0, 2, 0], [0, 5, 0, 5], [1, 0, 9, 0], [0, 3, 0, 7]])
    df = confusions_table(m, NAMES, 3)
    assert list(df.columns) == ["true", "predicted", "count", "rate"]
    assert df.to_dict("records") == [
        {"true": "1: bee", "predicted": "3: dog", "count": 5, "rate": 0.5},
        {"true": "3: dog", "predicted": "1: bee", "count": 3, "rate": 0.3},
        {"true": "0: ant", "predicted": "2: cat", "count": 2, "rate": 0.2},
    ]
    assert confusions_table(np.eye(4), NAMES, 3).empty  # nothing confused: an empty table


def test_soft_label_table_is_k_rows_and_other():
    dense = np.array([[0.1, 0.6, 0.2, 0.1], [0.3, 0.2, 0.4, 0.1]])
    df = soft_label_table(top_classes(dense, 2), NAMES)
    assert list(df["class"]) == ["1: bee", "2: cat", "other (2 classes)"]
    assert list(df["mean"]) == pytest.approx([0.4, 0.3, 0.3])
    assert list(df["max"]) == pytest.approx([0.6, 0.4, 0.4])
