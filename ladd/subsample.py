"""The static sub-sampler S of LADD (Kang, Lim et al., WACV 2025, arXiv 2409.16239, section 3.1).

Each image gives N x N crops that each cover a fraction R of the side, evenly strided from the
top-left corner (stride (1 - R) / (N - 1) of the side) and listed in raster order. N and R define
every crop: nothing is stored per crop. The paper's setting: N = 5, R = 62.5 %.

`limits`: the caps an input may cost (ladd.limits.Limits: here `max_n`, the crops per side);
None takes the LADD_MAX_* environment caps (`current_limits()`), the front ends' default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ladd.limits import Limits, current_limits


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def check_grid(n: int, r: float, *, limits: Limits | None = None) -> None:
    """Raise ValueError unless 1 <= n <= the max_n cap (ladd.limits) and 0 < r <= 1."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n (crops per side) must be an integer >= 1, got {n!r}")
    # InputLimitError: n*n crops per image cost memory everywhere
    (limits if limits is not None else current_limits()).check_n(n)
    if not (0.0 < float(r) <= 1.0):
        raise ValueError(
            f"r (crop side as a fraction of the image side) must be in (0, 1], got {r!r}"
        )


@dataclass(frozen=True)
class CropGrid:
    """The geometry of one (size, n, r) setting, for display and bookkeeping."""

    size: int
    n: int
    r: float
    side: int  # crop side in pixels
    offsets: tuple[int, ...]  # top (= left) offsets of the n rows (columns)

    @property
    def num_crops(self) -> int:
        return self.n * self.n

    @property
    def stride(self) -> float:
        """Mean distance in pixels between neighbouring crops (0 when n == 1)."""
        return (self.offsets[-1] - self.offsets[0]) / (self.n - 1) if self.n > 1 else 0.0


def crop_grid(size: int, n: int, r: float, *, limits: Limits | None = None) -> CropGrid:
    """Side and offsets of the n x n crops of a size x size image."""
    check_grid(n, r, limits=limits)
    if size < 1:
        raise ValueError(f"image size must be >= 1, got {size}")
    side = max(1, min(size, _round_half_up(r * size)))
    if n == 1:
        offsets: tuple[int, ...] = (_round_half_up((size - side) / 2),)
    else:
        offsets = tuple(_round_half_up(k * (size - side) / (n - 1)) for k in range(n))
    return CropGrid(size=size, n=n, r=float(r), side=side, offsets=offsets)


def crop_boxes(
    size: int, n: int = 5, r: float = 0.625, *, limits: Limits | None = None
) -> list[tuple[int, int, int, int]]:
    """The n*n crop boxes of a size x size image as (top, left, height, width), raster order
    from the top-left (the order of `sub_sample`'s crops and of the dense labels).

    128 px, n = 5, r = 0.625 gives 80-px crops at offsets 0, 12, 24, 36, 48 (the paper's
    example, section 3.1):

    Examples:
        >>> from ladd import crop_boxes
        >>> boxes = crop_boxes(128, n=5, r=0.625)
        >>> len(boxes), boxes[0], boxes[1], boxes[-1]
        (25, (0, 0, 80, 80), (0, 12, 80, 80), (48, 48, 80, 80))
    """
    g = crop_grid(size, n, r, limits=limits)
    return [(top, left, g.side, g.side) for top in g.offsets for left in g.offsets]


def _gather_index(grid: CropGrid, device: torch.device) -> torch.Tensor:
    # (n, side): pixel rows (== columns) covered by each crop row
    offs = torch.tensor(grid.offsets, device=device).unsqueeze(1)
    return offs + torch.arange(grid.side, device=device).unsqueeze(0)


def crop_views(
    images: torch.Tensor, n: int, r: float, *, limits: Limits | None = None
) -> torch.Tensor:
    """All crops of a batch, not resized: (B, C, H, W) -> (B, n*n, C, side, side).

    Evenly spaced offsets (the usual case, e.g. 128 px, n = 5, r = 0.625: 0, 12, ..., 48) make
    the crops one strided view of the images, so the result costs a single copy; other grids
    copy the n*n slices. Either way ~10x cheaper than index gathers: fast enough for live
    previews (100 images of 128 px, n = 5, uint8: ~70 ms on 2 CPU cores).
    """
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"expected square images (B, C, H, W), got {tuple(images.shape)}")
    b, c, h, _ = images.shape
    g = crop_grid(h, n, r, limits=limits)
    step = g.offsets[1] - g.offsets[0] if n > 1 else 0
    if all(o == g.offsets[0] + k * step for k, o in enumerate(g.offsets)):
        sb, sc, sh, sw = images.stride()
        start = images.storage_offset() + g.offsets[0] * (sh + sw)
        view = images.as_strided(  # (B, n_row, n_col, C, side, side), no copy yet
            (b, n, n, c, g.side, g.side), (sb, step * sh, step * sw, sc, sh, sw), start
        )
        return view.reshape(b, n * n, c, g.side, g.side)
    slices = [
        images[:, :, t : t + g.side, lft : lft + g.side] for t in g.offsets for lft in g.offsets
    ]
    return torch.stack(slices, dim=1)  # raster order over (row, col)


def _crop_views_gather(images: torch.Tensor, n: int, r: float) -> torch.Tensor:
    """The plain two-gather form of crop_views, kept as the reference its fast paths match."""
    b, c, h, _ = images.shape
    g = crop_grid(h, n, r)
    idx = _gather_index(g, images.device)  # (n, side)
    rows = images[:, :, idx.reshape(-1), :]  # (B, C, n*side, W)
    rows = rows.reshape(b, c, n, g.side, h)
    crops = rows[..., idx.reshape(-1)]  # (B, C, n, side, n*side)
    crops = crops.reshape(b, c, n, g.side, n, g.side)
    # -> (B, n_row, n_col, C, side, side), raster order over (row, col)
    return crops.permute(0, 2, 4, 1, 3, 5).reshape(b, n * n, c, g.side, g.side)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (B, C, h, w) to (B, C, size, size); antialiased when shrinking."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    shrinking = images.shape[-1] > size or images.shape[-2] > size
    return F.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking
    )


def sub_sample(
    images: torch.Tensor,
    n: int = 5,
    r: float = 0.625,
    out_size: int | None = None,
    *,
    limits: Limits | None = None,
) -> torch.Tensor:
    """S(x) for a batch: (B, C, H, W) -> (B, n*n, C, out, out), each crop resized to out (default H).

    Crops are gathered at once and resized (bilinear; antialiased only when shrinking) in one
    interpolate call on the input's device; integer images come back as float32.

    Examples:
        >>> import torch
        >>> from ladd import sub_sample
        >>> x = torch.rand(2, 3, 32, 32)
        >>> crops = sub_sample(x, n=5, r=0.625)
        >>> crops.shape
        torch.Size([2, 25, 3, 32, 32])
        >>> sub_sample(x, n=1, r=1.0)[:, 0].equal(x)  # one crop of the whole image is the image
        True
    """
    b, c, h, _ = images.shape
    out = h if out_size is None else out_size
    crops = crop_views(images, n, r, limits=limits)  # (B, n*n, C, side, side)
    side = crops.shape[-1]
    flat = crops.reshape(b * n * n, c, side, side)
    if not flat.is_floating_point():
        flat = flat.float()
    return resize(flat, out).reshape(b, n * n, c, out, out)


def sub_sample_range(
    images: torch.Tensor,
    n: int,
    r: float,
    start: int,
    stop: int,
    out_size: int | None = None,
    *,
    limits: Limits | None = None,
) -> torch.Tensor:
    """Crops start..stop-1 (raster order) of S(x): (B, C, H, W) -> (B, stop-start, C, out, out).

    Equal to sub_sample(images, n, r, out_size)[:, start:stop] without building the other
    crops: large grids are labelled a slice at a time, so memory does not grow with n*n.
    """
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"expected square images (B, C, H, W), got {tuple(images.shape)}")
    b, c, h, _ = images.shape
    g = crop_grid(h, n, r, limits=limits)
    if not 0 <= start < stop <= n * n:
        raise ValueError(f"crop range {start}..{stop} is outside 0..{n * n}")
    out = h if out_size is None else out_size
    slices = [
        images[:, :, t : t + g.side, lft : lft + g.side]
        for t, lft in ((g.offsets[j // n], g.offsets[j % n]) for j in range(start, stop))
    ]
    crops = torch.stack(slices, dim=1).reshape(b * (stop - start), c, g.side, g.side)
    if not crops.is_floating_point():
        crops = crops.float()
    return resize(crops, out).reshape(b, stop - start, c, out, out)
