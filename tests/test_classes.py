"""ladd.classes: the few classes a view shows out of many (top-k, worst first, top confusions)."""

from __future__ import annotations

import numpy as np
import pytest

from ladd.classes import (
    MANY_CLASSES,
    class_label,
    class_members,
    class_window,
    many_classes,
    sample_pool,
    top_classes,
    top_confusions,
    worst_first,
)


def test_many_classes_starts_above_the_threshold():
    assert not many_classes(10) and not many_classes(MANY_CLASSES)
    assert many_classes(MANY_CLASSES + 1) and many_classes(1000)


def test_a_class_label_is_searchable_by_index_and_name():
    assert class_label(2, ["cat", "dog", "dogsled"]) == "2: dogsled"


def test_top_confusions_are_the_largest_off_diagonal_counts_in_order():
    m = np.zeros((5, 5), dtype=int)
    np.fill_diagonal(m, 50)  # right answers never count, however many
    m[0, 3] = 7
    m[2, 1] = 12
    m[4, 0] = 7  # a tie with (0, 3): the lower true class first
    m[1, 2] = 3
    m[3, 4] = 1
    got = top_confusions(m, 4)
    expected = [(2, 1, 12), (0, 3, 7), (4, 0, 7), (1, 2, 3)]
    assert [(c.true, c.predicted, c.count) for c in got] == expected
    assert got[0].rate == pytest.approx(12 / (50 + 12))  # of the true class's images
    assert got[1].rate == pytest.approx(7 / 57)
    assert len(top_confusions(m, 100)) == 5  # cells with no image are left out
    assert top_confusions(np.eye(3), 10) == []


def test_top_confusions_at_1000_classes():
    rng = np.random.default_rng(0)
    m = np.diag(rng.integers(0, 50, size=1000))
    m[10, 20], m[999, 0], m[500, 501] = 40, 41, 39
    got = top_confusions(m, 3)
    expected = [(999, 0, 41), (10, 20, 40), (500, 501, 39)]
    assert [(c.true, c.predicted, c.count) for c in got] == expected


def test_top_confusions_refuse_a_matrix_that_is_not_square():
    with pytest.raises(ValueError, match="square"):
        top_confusions(np.zeros((2, 3)), 1)


def test_worst_first_orders_ascending_with_ties_by_index():
    assert list(worst_first([0.5, 0.1, 0.9, 0.1])) == [1, 3, 0, 2]


def test_top_classes_by_mean_over_crops_and_the_other_mass():
    dense = np.array(
        [
            [0.1, 0.6, 0.2, 0.1],
            [0.3, 0.2, 0.4, 0.1],
        ]
    )  # means 0.2, 0.4, 0.3, 0.1
    top = top_classes(dense, 2)
    assert list(top.classes) == [1, 2] and top.k == 2
    assert top.probs.tolist() == [[0.6, 0.2], [0.2, 0.4]]
    assert top.other == pytest.approx([0.2, 0.4])
    assert top_classes(dense, 10).k == 4  # never more than there are
    assert list(top_classes(np.full((1, 3), 1 / 3), 2).classes) == [0, 1]  # ties: lower index


def test_class_members_take_the_first_images_of_each_class_in_set_order():
    labels = np.array([2, 0, 2, 1, 2, 0])
    assert list(class_members(labels, [2, 0])) == [0, 1, 2, 4, 5]
    assert list(class_members(labels, [2, 0], per_class=1)) == [0, 1]
    assert list(class_members(labels, [])) == []


def test_class_window_is_clamped_to_the_classes():
    assert class_window(1000, 990, 20) == range(990, 1000)
    assert class_window(1000, 5000, 20) == range(999, 1000)
    assert class_window(10, 0, 20) == range(0, 10)


def test_sample_pool_is_the_class_or_a_seeded_draw():
    labels = np.repeat(np.arange(100), 3)  # 300 images
    assert list(sample_pool(labels, 1000)) == list(range(300))  # all fit
    assert list(sample_pool(labels, 1000, klass=7)) == [21, 22, 23]
    drawn = sample_pool(labels, 50, seed=1)
    assert drawn.size == 50 and list(drawn) == sorted(set(drawn.tolist()))
    assert list(drawn) == list(sample_pool(labels, 50, seed=1))  # reproducible
    assert list(drawn) != list(sample_pool(labels, 50, seed=2))
