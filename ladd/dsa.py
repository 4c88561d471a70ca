"""Differentiable Siamese Augmentation (DSA) as the field evaluates with it (REFERENCE.md section 3).

Strategy color_crop_cutout_flip_scale_rotate: for each call pick ONE op at random, then draw its
parameters per sample. All randomness comes from a passed-in torch.Generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

DSA_OPS: tuple[str, ...] = ("color", "crop", "cutout", "flip", "scale", "rotate")
DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"


@dataclass(frozen=True)
class DSAConfig:
    """DSA constants of the field's code (ratios as in the DSA paper's defaults)."""

    strategy: str = DEFAULT_STRATEGY
    crop_ratio: float = 0.125  # shift up to round(H / 8)
    cutout_ratio: float = 0.5  # square of side round(H / 2)
    scale_ratio: float = 1.2  # sx, sy in [1/1.2, 1.2]
    rotate_degrees: float = 15.0
    flip_p: float = 0.5

    @property
    def ops(self) -> tuple[str, ...]:
        ops = tuple(self.strategy.split("_")) if self.strategy else ()
        bad = [o for o in ops if o not in DSA_OPS]
        if bad:
            raise ValueError(f"unknown DSA op(s) {bad}; known: {', '.join(DSA_OPS)}")
        return ops


def _rand(n: int, g: torch.Generator, device: torch.device, *shape: int) -> torch.Tensor:
    # Draw on the generator's device (usually CPU), use on the data's device.
    return torch.rand((n, *shape), generator=g, device=g.device).to(device)


def _randint(low: int, high: int, n: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(low, high, (n,), generator=g, device=g.device).to(device)


def color(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Brightness, saturation, contrast in that order, per-sample factors."""
    b, dev = x.shape[0], x.device
    x = x + (_rand(b, g, dev, 1, 1, 1) - 0.5)
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * (_rand(b, g, dev, 1, 1, 1) * 2.0) + m
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * (_rand(b, g, dev, 1, 1, 1) + 0.5) + m


def crop(x: torch.Tensor, g: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Integer translation by up to round(ratio * H) px per axis, zero fill."""
    b, _, h, w = x.shape
    s = int(h * ratio + 0.5)
    if s == 0:
        return x
    dy = _randint(-s, s + 1, b, g, x.device)
    dx = _randint(-s, s + 1, b, g, x.device)
    padded = F.pad(x, (s, s, s, s))  # zeros
    rows = (torch.arange(h, device=x.device).unsqueeze(0) + s - dy.unsqueeze(1)).clamp_(
        0, h + 2 * s - 1
    )
    cols = (torch.arange(w, device=x.device).unsqueeze(0) + s - dx.unsqueeze(1)).clamp_(
        0, w + 2 * s - 1
    )
    bi = torch.arange(b, device=x.device)[:, None, None]
    # (B, H, W, C) after advanced indexing -> back to (B, C, H, W)
    out = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of side round(ratio * H) at a random centre per sample."""
    b, _, h, w = x.shape
    side = int(h * ratio + 0.5)
    cy = _randint(0, h, b, g, x.device)
    cx = _randint(0, w, b, g, x.device)
    ys = torch.arange(h, device=x.device)
    xs = torch.arange(w, device=x.device)
    top, left = cy - side // 2, cx - side // 2
    in_y = (ys[None] >= top[:, None]) & (ys[None] < (top + side)[:, None])  # (B, H)
    in_x = (xs[None] >= left[:, None]) & (xs[None] < (left + side)[:, None])  # (B, W)
    keep = ~(in_y[:, :, None] & in_x[:, None, :])  # (B, H, W)
    return x * keep[:, None].to(x.dtype)


def flip(x: torch.Tensor, g: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Horizontal flip with probability p per sample."""
    mask = (_rand(x.shape[0], g, x.device) < p).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(3), x)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def scale(x: torch.Tensor, g: torch.Generator, ratio: float = 1.2) -> torch.Tensor:
    """Independent x/y scaling in [1/ratio, ratio] per sample (affine grid sample)."""
    b = x.shape[0]
    lo = 1.0 / ratio
    sx = _rand(b, g, x.device) * (ratio - lo) + lo
    sy = _rand(b, g, x.device) * (ratio - lo) + lo
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 1, 1] = sx, sy
    return _affine(x, theta)


def rotate(x: torch.Tensor, g: torch.Generator, degrees: float = 15.0) -> torch.Tensor:
    """Rotation by an angle in [-degrees, degrees] per sample (affine grid sample)."""
    b = x.shape[0]
    ang = (_rand(b, g, x.device) - 0.5) * 2.0 * degrees * math.pi / 180.0
    cos, sin = torch.cos(ang), torch.sin(ang)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, sin
    theta[:, 1, 0], theta[:, 1, 1] = -sin, cos
    return _affine(x, theta)


def apply_op(
    x: torch.Tensor, op: str, g: torch.Generator, cfg: DSAConfig = DSAConfig()
) -> torch.Tensor:
    """Apply one named DSA op with per-sample parameters drawn from g."""
    if op == "color":
        return color(x, g)
    if op == "crop":
        return crop(x, g, cfg.crop_ratio)
    if op == "cutout":
        return cutout(x, g, cfg.cutout_ratio)
    if op == "flip":
        return flip(x, g, cfg.flip_p)
    if op == "scale":
        return scale(x, g, cfg.scale_ratio)
    if op == "rotate":
        return rotate(x, g, cfg.rotate_degrees)
    raise ValueError(f"unknown DSA op {op!r}; known: {', '.join(DSA_OPS)}")


def dsa(x: torch.Tensor, g: torch.Generator, cfg: DSAConfig = DSAConfig()) -> torch.Tensor:
    """One DSA call on a batch (B, C, H, W): one op chosen by g, parameters per sample."""
    ops = cfg.ops
    if not ops or x.shape[0] == 0:
        return x
    op = ops[int(torch.randint(len(ops), (1,), generator=g, device=g.device).item())]
    return apply_op(x, op, g, cfg)
