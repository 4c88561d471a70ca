"""crop_views' fast paths (strided view, slice stack) equal the plain gather form."""

from __future__ import annotations

import pytest
import torch

from ladd.subsample import _crop_views_gather, crop_grid, crop_views


@pytest.mark.parametrize(
    ("size", "n", "r"),
    [
        (128, 5, 0.625),
        (32, 5, 0.625),
        (32, 3, 0.5),
        (33, 4, 0.7),
        (30, 7, 0.4),
        (16, 1, 0.5),
        (8, 2, 1.0),
    ],
)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_crop_views_equals_the_gather_form(size: int, n: int, r: float, dtype) -> None:
    g = torch.Generator().manual_seed(size * 10 + n)
    images = (torch.rand(3, 3, size, size, generator=g) * 255).to(dtype)
    torch.testing.assert_close(
        crop_views(images, n, r), _crop_views_gather(images, n, r), rtol=0, atol=0
    )


def test_uneven_offsets_take_the_slice_path_and_still_match() -> None:
    grid = crop_grid(33, 4, 0.7)
    steps = {b - a for a, b in zip(grid.offsets, grid.offsets[1:], strict=False)}
    assert len(steps) > 1  # (0, 3, 7, 10): not one strided view
    images = torch.arange(2 * 3 * 33 * 33, dtype=torch.float32).reshape(2, 3, 33, 33)
    assert torch.equal(crop_views(images, 4, 0.7), _crop_views_gather(images, 4, 0.7))


def test_crop_views_of_a_non_contiguous_batch() -> None:
    base = torch.rand(4, 3, 40, 40)
    images = base[1:3, :, 4:36, 4:36]  # a view with a storage offset and foreign strides
    torch.testing.assert_close(
        crop_views(images, 5, 0.625), _crop_views_gather(images, 5, 0.625), rtol=0, atol=0
    )
    channels_last = base.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(
        crop_views(channels_last, 3, 0.5), _crop_views_gather(base, 3, 0.5), rtol=0, atol=0
    )
