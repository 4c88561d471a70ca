"""RDED's training augmentation, as its validation code composes it, drawn per sample.

RDED (LINs-lab/RDED, validation/main.py lines 115-126) trains a student on its images with

    ToTensor -> ShufflePatches(factor) -> RandomResizedCrop(size, scale=(1 / factor, 1),
    antialias=True) -> RandomHorizontalFlip -> Normalize

per image (factor 2 in every script; validation/utils.py `ShufflePatches`: the image cut into
`factor` strips along the width, the strips shuffled, then the same along the height). Here the
three random steps run on a batch of normalised images (B, C, H, W) at once, each sample with its
own draws from one torch.Generator (one `torch.rand` call per batch: no host round trips):

- ShufflePatches: a random permutation of the `factor` strips per axis (width first, as RDED);
  strips are H // factor wide, the last one taking any remainder (RDED's loop means this; its
  code drops the remainder columns when the side is not a multiple of the factor, which never
  happens at the sizes it runs: 224, 128, 64, 32 with factor 2).
- RandomResizedCrop: torchvision's parameter rule (10 attempts of an area fraction in `scale`
  and a log-uniform aspect ratio in (3/4, 4/3); the first attempt that fits is taken, else the
  whole image: a square image's fallback), then a bilinear resize of the crop back to H x W.
  The crop is never larger than the output, so the resize only enlarges, where torchvision's
  antialiased bilinear and plain bilinear give the same weights: the resize is computed here as
  a gather of the four neighbours with torch's align_corners=False source positions.
- RandomHorizontalFlip with p = 0.5.

Normalisation commutes with all three (a per-channel affine map; bilinear weights sum to 1), so
applying them after it gives RDED's images to float rounding (tests/test_rded.py checks each step
against torchvision's own functions).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "BOX_UNIFORMS",
    "RDED_FACTOR",
    "RDED_RATIO",
    "random_resized_boxes",
    "rded_augment",
    "rded_draws",
    "resized_crops",
]

RDED_FACTOR = 2  # --factor 2 in every RDED script (scripts/*.sh)
RDED_RATIO = (3.0 / 4.0, 4.0 / 3.0)  # RandomResizedCrop's default ratio (RDED passes none)
ATTEMPTS = 10  # torchvision RandomResizedCrop.get_params tries 10 times
BOX_UNIFORMS = 2 * ATTEMPTS + 2  # per box: area and ratio per attempt, then the position


def _uniforms(factor: int) -> int:
    # strip order (width, height), area and ratio per attempt, the crop's position, the flip
    return 2 * factor + 2 * ATTEMPTS + 2 + 1


def rded_draws(batch: int, factor: int, g: torch.Generator) -> torch.Tensor:
    """The uniforms one batch's augmentation uses, (batch, 2 * factor + 23), drawn from `g`."""
    return torch.rand((batch, _uniforms(factor)), generator=g, device=g.device)


def _strip_map(side: int, factor: int, u: torch.Tensor) -> torch.Tensor:
    """(B, side) source positions of each output position after shuffling the strips of an axis;
    u (B, factor) uniforms give each sample's permutation (their argsort)."""
    width = side // factor
    starts = torch.arange(factor, device=u.device) * width
    widths = torch.full((factor,), width, device=u.device)
    widths[-1] = side - width * (factor - 1)
    perm = u.argsort(dim=1)  # (B, f): output strip k is input strip perm[:, k]
    w = widths[perm]  # (B, f)
    ends = w.cumsum(dim=1)  # (B, f): where each output strip ends
    pos = torch.arange(side, device=u.device).expand(u.shape[0], side)
    k = torch.searchsorted(ends, pos.contiguous(), right=True)  # (B, side) output strip
    offset = pos - (ends.gather(1, k) - w.gather(1, k))
    return starts[perm.gather(1, k)] + offset


def random_resized_boxes(
    h: int,
    w: int,
    scale: tuple[float, float],
    u: torch.Tensor,
    ratio: tuple[float, float] = RDED_RATIO,
) -> tuple[torch.Tensor, ...]:
    """torchvision RandomResizedCrop.get_params per sample: (top, left, height, width) (B,) each
    for an h x w image, from u (B, BOX_UNIFORMS) uniforms: the area fractions and log-ratios of
    the 10 attempts, then the position (the one rule; ladd.data.imagenet1k's train crop uses it)."""
    area = h * w
    lo, hi = scale
    target = area * (lo + (hi - lo) * u[:, :ATTEMPTS])  # (B, 10)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[:, ATTEMPTS : 2 * ATTEMPTS])
    cw = torch.sqrt(target * aspect).round().long()
    ch = torch.sqrt(target / aspect).round().long()
    fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = fits.float().argmax(dim=1, keepdim=True)  # the first attempt that fits
    any_fit = fits.any(dim=1)
    # the fallback: a centre crop at the nearest allowed ratio (the whole image when square)
    in_ratio = w / h
    if in_ratio < ratio[0]:
        fw, fh = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        fw, fh = int(round(h * ratio[1])), h
    else:
        fw, fh = w, h
    cw = torch.where(any_fit, cw.gather(1, first).squeeze(1), fw)
    ch = torch.where(any_fit, ch.gather(1, first).squeeze(1), fh)
    pos = u[:, 2 * ATTEMPTS :]
    # torch.randint(0, n + 1) is uniform on 0..n: floor(u * (n + 1)), n = the free room
    top = torch.where(any_fit, (pos[:, 0] * (h - ch + 1)).floor().long(), (h - fh) // 2)
    left = torch.where(any_fit, (pos[:, 1] * (w - cw + 1)).floor().long(), (w - fw) // 2)
    return top.clamp(max=h - ch), left.clamp(max=w - cw), ch, cw


def _source_axis(
    start: torch.Tensor, length: torch.Tensor, out: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear sampling along one axis: each sample's crop [start, start + length) resized to
    `out` (torch's align_corners=False rule, clamped at the crop's edges) -> low and high source
    indices (B, out) and the high neighbour's weight (B, out)."""
    o = torch.arange(out, device=start.device, dtype=torch.float32)
    scale = length.float().unsqueeze(1) / out  # (B, 1)
    src = ((o + 0.5) * scale - 0.5).clamp(min=0.0)  # (B, out), in crop coordinates
    low = src.floor().long().clamp(max=(length - 1).unsqueeze(1))
    high = (low + 1).clamp(max=(length - 1).unsqueeze(1))
    frac = (src - low.float()).clamp(0.0, 1.0)
    return start.unsqueeze(1) + low, start.unsqueeze(1) + high, frac


def resized_crops(
    x: torch.Tensor,
    top: torch.Tensor,
    left: torch.Tensor,
    height: torch.Tensor,
    width: torch.Tensor,
) -> torch.Tensor:
    """Each sample's box cut from x (B, C, H, W) and resized bilinearly to H x W (boxes no larger
    than the image: the resize enlarges or copies)."""
    b, _, h, w = x.shape
    y0, y1, fy = _source_axis(top, height, h)  # (B, H)
    x0, x1, fx = _source_axis(left, width, w)  # (B, W)
    n = torch.arange(b, device=x.device).view(b, 1, 1)

    def at(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        # advanced indices around the channel slice: (B, H, W, C)
        return x[n, :, rows.unsqueeze(2), cols.unsqueeze(1)]

    wy, wx = (
        fy.unsqueeze(2).unsqueeze(3),
        fx.unsqueeze(1).unsqueeze(3),
    )  # (B, H, 1, 1), (B, 1, W, 1)
    top_row = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom_row = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    out = top_row * (1 - wy) + bottom_row * wy
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.contiguous_format)


def rded_augment(
    x: torch.Tensor,
    g: torch.Generator,
    factor: int = RDED_FACTOR,
    *,
    draws: torch.Tensor | None = None,
) -> torch.Tensor:
    """RDED's ShufflePatches -> RandomResizedCrop -> flip on a batch x (B, C, H, W), every sample
    with its own draws (from `g`, or `draws` as rded_draws returns them)."""
    b, _, h, w = x.shape
    if b == 0:
        return x
    u = rded_draws(b, factor, g) if draws is None else draws
    u = u.to(x.device, torch.float32)
    f = factor
    cols = _strip_map(w, f, u[:, :f])  # (B, W)
    rows = _strip_map(h, f, u[:, f : 2 * f])  # (B, H)
    n = torch.arange(b, device=x.device).view(b, 1, 1)
    shuffled = x[n, :, rows.unsqueeze(2), cols.unsqueeze(1)].permute(0, 3, 1, 2)
    top, left, ch, cw = random_resized_boxes(
        h, w, (1.0 / f, 1.0), u[:, 2 * f : 2 * f + BOX_UNIFORMS]
    )
    out = resized_crops(shuffled, top, left, ch, cw)
    flip = (u[:, -1] < 0.5).view(b, 1, 1, 1)
    return torch.where(flip, out.flip(-1), out).contiguous(memory_format=x_format(x))


def x_format(x: torch.Tensor) -> torch.memory_format:
    """The memory format a batch came in (channels_last engines get theirs back)."""
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1:
        return torch.channels_last
    return torch.contiguous_format
