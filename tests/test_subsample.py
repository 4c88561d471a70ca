import pytest
import torch
import torch.nn.functional as F

from ladd.subsample import crop_boxes, crop_grid, crop_views, sub_sample


def test_paper_example_128px_n5_r0625():
    boxes = crop_boxes(128, 5, 0.625)
    assert len(boxes) == 25
    assert {b[2] for b in boxes} == {80} and {b[3] for b in boxes} == {80}
    offsets = sorted({b[0] for b in boxes})
    assert offsets == [0, 12, 24, 36, 48]
    # raster order: the column offset moves fastest
    assert boxes[:5] == [
        (0, 0, 80, 80),
        (0, 12, 80, 80),
        (0, 24, 80, 80),
        (0, 36, 80, 80),
        (0, 48, 80, 80),
    ]
    assert boxes[5] == (12, 0, 80, 80)
    assert boxes[-1] == (48, 48, 80, 80)


def test_last_crop_touches_bottom_right_corner():
    for size, n, r in [(32, 5, 0.625), (32, 3, 0.5), (128, 7, 0.75), (33, 4, 0.4)]:
        top, left, h, w = crop_boxes(size, n, r)[-1]
        assert top + h == size and left + w == size


def test_n1_gives_one_centred_crop():
    assert crop_boxes(32, 1, 0.5) == [(8, 8, 16, 16)]
    assert crop_grid(32, 1, 0.5).stride == 0.0


def test_grid_reports_stride_and_count():
    g = crop_grid(128, 5, 0.625)
    assert g.num_crops == 25 and g.side == 80 and g.stride == 12.0


@pytest.mark.parametrize("n,r", [(0, 0.5), (-1, 0.5), (3, 0.0), (3, 1.5), (3, -0.1), (2.5, 0.5)])
def test_bad_grid_is_rejected(n, r):
    with pytest.raises(ValueError):
        crop_boxes(32, n, r)


def test_crop_views_equal_slices():
    x = torch.randn(3, 3, 32, 32)
    views = crop_views(x, 4, 0.5)
    assert views.shape == (3, 16, 3, 16, 16)
    for j, (t, left, h, w) in enumerate(crop_boxes(32, 4, 0.5)):
        assert torch.equal(views[:, j], x[:, :, t : t + h, left : left + w])


def test_crops_equal_resized_slices():
    x = torch.randn(2, 3, 32, 32)
    crops = sub_sample(x, 3, 0.625)
    assert crops.shape == (2, 9, 3, 32, 32)
    for j, (t, left, h, w) in enumerate(crop_boxes(32, 3, 0.625)):
        want = F.interpolate(
            x[:, :, t : t + h, left : left + w], size=(32, 32), mode="bilinear", align_corners=False
        )
        torch.testing.assert_close(crops[:, j], want)


def test_crops_cover_whole_image_at_r_100():
    x = torch.randn(2, 3, 16, 16)
    crops = sub_sample(x, 3, 1.0)
    for j in range(9):
        assert torch.equal(crops[:, j], x)


def test_sub_sample_out_size_shrinks_with_antialias():
    x = torch.randn(1, 3, 64, 64)
    crops = sub_sample(x, 2, 0.75, out_size=16)
    assert crops.shape == (1, 4, 3, 16, 16)
    assert torch.isfinite(crops).all()


def test_uint8_input_is_converted_to_float():
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    crops = sub_sample(x, 2, 0.5)
    assert crops.dtype == torch.float32
