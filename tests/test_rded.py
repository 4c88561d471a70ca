"""ladd.rded: RDED's training augmentation, each step checked against torchvision's own functions.

The spec is LINs-lab/RDED (commit 3f6453d): validation/main.py lines 115-126 compose
ToTensor -> ShufflePatches(args.factor) -> RandomResizedCrop(size=args.input_size,
scale=(1 / args.factor, args.max_scale_crops), antialias=True) -> RandomHorizontalFlip ->
Normalize; validation/utils.py lines 164-188 define ShufflePatches (strips along the width
shuffled, then, through permute(0, 2, 1), along the height); argument.py line 112 sets
max_scale_crops 1 and every script passes --factor 2.
"""

from __future__ import annotations

import math
import random

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import RandomResizedCrop

from ladd.rded import ATTEMPTS, rded_augment, rded_draws, resized_crops
from ladd.rded import _strip_map as strip_map
from ladd.rded import random_resized_boxes as crop_boxes

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _rded_shuffle_patches(img: torch.Tensor, order_w: list[int], order_h: list[int], f: int):
    """RDED's ShufflePatches.forward on one (C, H, W) image with the strip orders given instead
    of random.shuffle's (its loop for sides that are multiples of the factor)."""

    def shuffle(x: torch.Tensor, order: list[int]) -> torch.Tensor:
        tw = x.shape[-1] // f
        strips = [x[..., i * tw : (i + 1) * tw] for i in range(f)]
        return torch.cat([strips[k] for k in order], -1)

    img = shuffle(img, order_w)
    img = shuffle(img.permute(0, 2, 1), order_h).permute(0, 2, 1)
    return img


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_strip_shuffle_is_rdeds_shuffle_patches(factor):
    side = 12 * factor
    g = torch.Generator().manual_seed(factor)
    img = torch.rand(2, 3, side, side, generator=g)
    u = torch.rand(2, 2 * factor, generator=g)
    cols = strip_map(side, factor, u[:, :factor])
    rows = strip_map(side, factor, u[:, factor:])
    n = torch.arange(2).view(2, 1, 1)
    ours = img[n, :, rows.unsqueeze(2), cols.unsqueeze(1)].permute(0, 3, 1, 2)
    for b in range(2):
        ow = u[b, :factor].argsort().tolist()
        oh = u[b, factor:].argsort().tolist()
        assert torch.equal(ours[b], _rded_shuffle_patches(img[b], ow, oh, factor))


def test_strips_of_an_uneven_side_keep_every_column_once():
    u = torch.tensor([[0.9, 0.1, 0.5]])  # order 1, 2, 0
    got = strip_map(10, 3, u)[0].tolist()  # strips of 3, 3 and the last of 4
    assert got == [3, 4, 5, 6, 7, 8, 9, 0, 1, 2]
    assert sorted(got) == list(range(10))


def test_resized_crops_are_torchvisions_antialiased_resized_crop():
    """Boxes no larger than the image, resized back to it: torchvision's
    F.resized_crop(..., antialias=True) per sample, to float rounding."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 24, 24, generator=g)
    top = torch.tensor([0, 3, 5, 0, 10, 0])
    left = torch.tensor([0, 1, 7, 11, 2, 0])
    height = torch.tensor([24, 17, 12, 13, 14, 1])
    width = torch.tensor([24, 20, 9, 13, 22, 24])
    ours = resized_crops(x, top, left, height, width)
    for b in range(6):
        want = TF.resized_crop(
            x[b],
            int(top[b]),
            int(left[b]),
            int(height[b]),
            int(width[b]),
            [24, 24],
            antialias=True,
        )
        torch.testing.assert_close(ours[b], want, rtol=1e-5, atol=2e-6)
    assert torch.equal(ours[0], x[0])  # the whole image: copied


def _torchvision_boxes(h: int, w: int, n: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    rrc = RandomResizedCrop(h, scale=(0.5, 1.0))
    return torch.tensor(
        [rrc.get_params(torch.empty(3, h, w), rrc.scale, rrc.ratio) for _ in range(n)]
    )


def test_crop_boxes_follow_torchvisions_rule():
    """Same rule as RandomResizedCrop.get_params: boxes inside the image, area fraction in
    [1/2, 1] and aspect in [3/4, 4/3] up to rounding, the whole image when no attempt fits; and
    the same distribution (means of 20,000 draws, ours vs torchvision's own, within 0.01)."""
    h = w = 32
    n = 20_000
    g = torch.Generator().manual_seed(0)
    top, left, ch, cw = crop_boxes(h, w, (0.5, 1.0), torch.rand(n, 2 * ATTEMPTS + 2, generator=g))
    assert bool((top >= 0).all() and (left >= 0).all())
    assert bool((top + ch <= h).all() and (left + cw <= w).all())
    frac = (ch * cw).float() / (h * w)
    aspect = cw.float() / ch.float()
    assert frac.min() >= 0.45 and frac.max() <= 1.0
    assert aspect.min() >= 0.7 and aspect.max() <= 1.4
    theirs = _torchvision_boxes(h, w, n, seed=0)  # (i, j, h, w)
    t_frac = (theirs[:, 2] * theirs[:, 3]).float() / (h * w)
    t_aspect = theirs[:, 3].float() / theirs[:, 2].float()
    assert frac.mean().item() == pytest.approx(t_frac.mean().item(), abs=0.01)
    assert aspect.mean().item() == pytest.approx(t_aspect.mean().item(), abs=0.01)
    assert top.float().mean().item() == pytest.approx(theirs[:, 0].float().mean().item(), abs=0.1)
    # no attempt fits (area 1, ratio 4/3: wider than the image): the whole square image
    u = torch.ones(1, 2 * ATTEMPTS + 2)
    box = [int(t[0]) for t in crop_boxes(h, w, (0.5, 1.0), u)]
    assert box == [0, 0, h, w]
    # an attempt that fits: area 1/2 of 32 x 32 at ratio 1 -> round(sqrt(512)) = 23 per side
    u = torch.zeros(1, 2 * ATTEMPTS + 2)
    u[0, ATTEMPTS : 2 * ATTEMPTS] = 0.5  # log-ratio midway: ratio 1
    u[0, -2:] = torch.tensor([0.999, 0.0])
    box = [int(t[0]) for t in crop_boxes(h, w, (0.5, 1.0), u)]
    assert box == [h - 23, 0, 23, 23]
    assert round(math.sqrt(512)) == 23


def test_the_augmentation_on_normalised_images_is_rdeds_on_pixels():
    """rded_augment on normalised images == RDED's pipeline by torchvision on [0, 1] pixels
    (ShufflePatches as its code, F.resized_crop antialiased, F.horizontal_flip), then
    Normalize: the draws are the same, the order of normalisation does not matter."""
    g = torch.Generator().manual_seed(3)
    pixels = torch.rand(8, 3, 32, 32, generator=g)
    draws = rded_draws(8, 2, torch.Generator().manual_seed(4))
    ours = rded_augment((pixels - MEAN) / STD, torch.Generator(), draws=draws)
    top, left, ch, cw = crop_boxes(32, 32, (0.5, 1.0), draws[:, 4 : 4 + 2 * ATTEMPTS + 2])
    for b in range(8):
        img = _rded_shuffle_patches(
            pixels[b], draws[b, :2].argsort().tolist(), draws[b, 2:4].argsort().tolist(), 2
        )
        img = TF.resized_crop(
            img, int(top[b]), int(left[b]), int(ch[b]), int(cw[b]), [32, 32], antialias=True
        )
        if draws[b, -1] < 0.5:
            img = TF.horizontal_flip(img)
        want = (img - MEAN[0]) / STD[0]
        torch.testing.assert_close(ours[b], want, rtol=1e-5, atol=2e-5)


def test_draws_come_from_the_generator_and_vary_per_sample():
    x = torch.randn(16, 3, 16, 16)
    a = rded_augment(x, torch.Generator().manual_seed(0))
    b = rded_augment(x, torch.Generator().manual_seed(0))
    c = rded_augment(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype
    changed = [(a[i] - x[i]).abs().max().item() > 0 for i in range(16)]
    assert sum(changed) >= 12  # the identity needs no shuffle, no crop and no flip
    nhwc = rded_augment(
        x.contiguous(memory_format=torch.channels_last), torch.Generator().manual_seed(0)
    )
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and torch.equal(nhwc, a)
    assert rded_augment(x[:0], torch.Generator()).shape == (0, 3, 16, 16)


def test_flip_and_shuffle_rates_are_one_half():
    """random.shuffle of two strips swaps them half the time; the flip has p = 0.5."""
    u = rded_draws(40_000, 2, torch.Generator().manual_seed(0))
    swapped_w = (u[:, 0] > u[:, 1]).float().mean().item()
    flipped = (u[:, -1] < 0.5).float().mean().item()
    assert swapped_w == pytest.approx(0.5, abs=0.01) and flipped == pytest.approx(0.5, abs=0.01)
    random.seed(0)
    order = [random.sample([0, 1], 2) == [1, 0] for _ in range(40_000)]
    assert sum(order) / len(order) == pytest.approx(swapped_w, abs=0.015)
