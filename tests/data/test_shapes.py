"""The procedural `shapes` source: deterministic, balanced, shape-not-colour classes."""

import pytest
import torch

from ladd.data import SHAPE_CLASSES, generate_shapes, load_source, source_info


def test_same_seed_and_split_give_identical_images():
    a = load_source("shapes", "train", limit_per_class=6, seed=3)
    b = load_source("shapes", "train", limit_per_class=6, seed=3)
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.labels, b.labels)


def test_train_test_and_seeds_draw_different_images():
    train = load_source("shapes", "train", limit_per_class=6)
    test = load_source("shapes", "test", limit_per_class=6)
    other_seed = load_source("shapes", "train", limit_per_class=6, seed=1)
    assert not torch.equal(train.images, test.images)
    assert not torch.equal(train.images, other_seed.images)


@pytest.mark.parametrize("size", [32, 128])
def test_images_are_uint8_square_and_class_balanced(size):
    shapes = load_source("shapes", "train", image_size=size, limit_per_class=4)
    assert shapes.images.dtype == torch.uint8
    assert shapes.images.shape == (40, 3, size, size)
    assert shapes.labels.dtype == torch.int64
    assert shapes.class_counts() == [4] * 10
    assert shapes.info.image_size == size
    assert shapes.info.class_names == SHAPE_CLASSES


def test_default_split_sizes_are_500_and_100_per_class():
    assert load_source("shapes", "train").class_counts() == [500] * 10
    assert load_source("shapes", "test").class_counts() == [100] * 10


def test_colour_does_not_identify_the_class():
    # Brightness follows the shape's area (bright shapes on dark grounds); hue must not
    # depend on the class: the mean chromaticity (colour minus grey) is the same for all.
    images, labels = generate_shapes(200, 32, seed=0)
    x = images.float() / 255
    chroma = x - x.mean(dim=1, keepdim=True)  # (N, 3, H, W)
    per_class = torch.stack([chroma[labels == k].mean(dim=(0, 2, 3)) for k in range(10)])
    assert (per_class.max(dim=0).values - per_class.min(dim=0).values).max() < 0.02


def test_normalised_train_set_is_roughly_standardised():
    shapes = load_source("shapes", "train", limit_per_class=100)
    x = shapes.normalised()
    assert x.mean().abs() < 0.1
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 0.1


def test_info_is_cheap_and_matches_loaded_info():
    info = source_info("shapes", 128)
    assert info.num_classes == 10 and info.image_size == 128
    assert load_source("shapes", image_size=128, limit_per_class=1).info == info
