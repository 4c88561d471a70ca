"""Differentiable Siamese Augmentation (DSA) as the field evaluates with it.

DSA (Zhao & Bilen, ICML 2021) as the distillation code lineage runs it: `DiffAugment` in
VICO-UoE/DatasetCondensation `utils.py` (lines 495-650 at 53f63a6), copied unchanged into MTT's
`utils.py` (GeorgeCazenavette/mtt-distillation, lines 521-676 at 50dccea) and DD-Ranking's
`ddranking/aug/dsa.py` (ddranking 0.2.0), with `ParamDiffAug`'s constants. Strategy
color_crop_cutout_flip_scale_rotate, mode "S": for each call pick ONE op at random, then draw its
parameters per sample. All randomness comes from a passed-in torch.Generator; given a generator
seeded like upstream's global RNG, color, cutout, flip and scale draw exactly what upstream draws
and compute the same images, and crop and rotate compute upstream's images mirrored (the same
distribution: their shift and angle are drawn symmetrically), see tests/test_dsa_upstream.py.

Two forms of the same augmentation, one module:
- the single form, `dsa(x, g)`: one batch, the op and its parameters drawn from `g` as the field's
  code draws them (the reference trainer, the labeler, distillation);
- the batched form, `batched_dsa(x, op, u)`: a stack of seeds' batches (S*B samples) in one call,
  an op code and 10 uniforms per sample drawn ahead from each seed's own generator
  (`draw_dsa_params` per step, `draw_dsa_epoch` per epoch), computed branch-free so that a
  compiled step is one static graph (the fast trainer's stacked engine). Given the same op and
  parameters it computes what the single form computes (tests/test_dsa.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DSA",
    "DEFAULT_STRATEGY",
    "DSA_OPS",
    "DSA_UNIFORMS",
    "DSAConfig",
    "apply_op",
    "cutout_centres",
    "diff_augment",
    "batched_dsa",
    "draw_dsa_epoch",
    "draw_dsa_params",
    "dsa",
]

DSA_OPS: tuple[str, ...] = ("color", "crop", "cutout", "flip", "scale", "rotate")
DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"
DSA_UNIFORMS = 10  # uniforms drawn per sample for the batched form (see batched_dsa)


@dataclass(frozen=True)
class DSAConfig:
    """DSA constants of the field's code (DatasetCondensation utils.py `ParamDiffAug`).

    Examples:
        >>> from ladd import DSAConfig
        >>> DSAConfig().ops
        ('color', 'crop', 'cutout', 'flip', 'scale', 'rotate')
        >>> DSAConfig(strategy="crop_flip").ops
        ('crop', 'flip')
    """

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


def cutout_centres(h: int, side: int) -> int:
    """How many centre rows (columns) cutout draws from for an image side `h`: 0..h-1 for an odd
    `side`, 0..h for an even one, as DiffAugment's `rand_cutout` draws them
    (`torch.randint(0, x.size(2) + (1 - cutout_size[0] % 2), ...)`, DatasetCondensation
    utils.py:624, MTT utils.py:650): a square of even side centred on row h still covers the
    last side // 2 rows."""
    return h + (1 - side % 2)


def cutout(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of side round(ratio * H) at a random centre per sample (rows first, then
    columns, each from 0..H-1, or 0..H for an even side: `cutout_centres`)."""
    b, _, h, w = x.shape
    side = int(h * ratio + 0.5)
    side_w = int(w * ratio + 0.5)
    cy = _randint(0, cutout_centres(h, side), b, g, x.device)
    cx = _randint(0, cutout_centres(w, side_w), b, g, x.device)
    ys = torch.arange(h, device=x.device)
    xs = torch.arange(w, device=x.device)
    top, left = cy - side // 2, cx - side_w // 2
    in_y = (ys[None] >= top[:, None]) & (ys[None] < (top + side)[:, None])  # (B, H)
    in_x = (xs[None] >= left[:, None]) & (xs[None] < (left + side_w)[:, None])  # (B, W)
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
    """One DSA call on a batch (B, C, H, W): one op chosen by g, parameters per sample.

    Differentiable in `x` (distillation back-propagates through it); runs on `x`'s device, the
    draws made on `g`'s device.

    Examples:
        >>> import torch
        >>> from ladd.dsa import dsa
        >>> x = torch.rand(4, 3, 32, 32)
        >>> y = dsa(x, torch.Generator().manual_seed(0))
        >>> y.shape
        torch.Size([4, 3, 32, 32])
        >>> torch.equal(y, dsa(x, torch.Generator().manual_seed(0)))  # the seed decides everything
        True
    """
    ops = cfg.ops
    if not ops or x.shape[0] == 0:
        return x
    op = ops[int(torch.randint(len(ops), (1,), generator=g, device=g.device).item())]
    return apply_op(x, op, g, cfg)


def diff_augment(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    strategy: str = DEFAULT_STRATEGY,
    config: DSAConfig | None = None,
) -> torch.Tensor:
    """DSA as a function, DiffAugment's name and mode "S": one op per call, drawn from
    `generator` (default torch's global CPU generator, as DiffAugment draws), its parameters
    per sample. The same as `DSA(...)(x)` in training mode.

    Examples:
        >>> import torch
        >>> from ladd import diff_augment
        >>> x = torch.rand(4, 3, 32, 32, requires_grad=True)
        >>> y = diff_augment(x, torch.Generator().manual_seed(0), strategy="crop_flip")
        >>> y.sum().backward()  # differentiable, as distillation needs
        >>> x.grad.shape
        torch.Size([4, 3, 32, 32])
    """
    cfg = config if config is not None else DSAConfig(strategy=strategy)
    g = generator if generator is not None else torch.default_generator
    return dsa(x, g, cfg)


class DSA(nn.Module):
    """DSA as a module: `DSA()(x)` augments a batch (B, C, H, W) in training mode and passes it
    through unchanged in eval mode, like torchvision's random transforms in a `Sequential`.

    `generator`: where the draws come from (a torch.Generator, or an int seed for a fresh CPU
    generator); None draws from a CPU generator seeded from torch's global RNG at construction,
    so `torch.manual_seed` before building it makes a run repeat. `strategy` and the ratios are
    DSAConfig's (the field's defaults).

    Examples:
        >>> import torch
        >>> from ladd import DSA
        >>> aug = DSA(generator=0)
        >>> x = torch.rand(8, 3, 32, 32)
        >>> aug(x).shape
        torch.Size([8, 3, 32, 32])
        >>> torch.equal(aug.eval()(x), x)
        True
        >>> torch.equal(DSA(generator=1)(x), DSA(generator=1)(x))
        True
    """

    def __init__(
        self,
        strategy: str = DEFAULT_STRATEGY,
        *,
        generator: torch.Generator | int | None = None,
        config: DSAConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = config if config is not None else DSAConfig(strategy=strategy)
        self.config.ops  # noqa: B018  (ValueError on an unknown op now, not at the first batch)
        if isinstance(generator, torch.Generator):
            self.generator = generator
        else:
            seed = int(torch.randint(2**62, (1,)).item()) if generator is None else int(generator)
            self.generator = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return dsa(x, self.generator, self.config)

    def extra_repr(self) -> str:
        return f"strategy={self.config.strategy!r}"


# ---------------------------------------------------------------------------------------------
# The batched form: a stack of seeds' batches, one op per seed's batch, parameters per sample
# drawn ahead (no host round trips), branch-free (one static graph for torch.compile)


def draw_dsa_params(
    num_seeds: int,
    batch: int,
    cfg: DSAConfig,
    generators: list[torch.Generator],
    device: str | torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-seed op codes (S,) as indices into DSA_OPS, and uniforms (S, B, 10) for the params.

    Each seed draws from its own generator (on `device`), so a seed's augmentation stream does
    not depend on which other seeds train beside it.
    """
    ops = torch.tensor([DSA_OPS.index(o) for o in cfg.ops], device=device)
    picks, us = [], []
    for g in generators[:num_seeds]:
        picks.append(torch.randint(len(ops), (1,), generator=g, device=device))
        us.append(torch.rand(batch, DSA_UNIFORMS, generator=g, device=device))
    return ops[torch.cat(picks)], torch.stack(us)  # (S,), (S, B, 10)


def draw_dsa_epoch(
    num_seeds: int,
    steps: int,
    batch: int,
    cfg: DSAConfig,
    generators: list[torch.Generator],
    device: str | torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole epoch of draws at once: op codes (S, steps) and uniforms (S, steps, B, 10).

    Same distributions as `draw_dsa_params` (one op per seed's batch, uniforms per sample), from
    each seed's own generator, in two launches per seed per epoch instead of two per step.
    """
    ops = torch.tensor([DSA_OPS.index(o) for o in cfg.ops], device=device)
    picks, us = [], []
    for g in generators[:num_seeds]:
        picks.append(torch.randint(len(ops), (steps,), generator=g, device=device))
        us.append(torch.rand(steps, batch, DSA_UNIFORMS, generator=g, device=device))
    return ops[torch.stack(picks)], torch.stack(us)  # (S, steps), (S, steps, B, 10)


def batched_dsa(x: torch.Tensor, op: torch.Tensor, u: torch.Tensor, cfg: DSAConfig) -> torch.Tensor:
    """DSA with a per-sample op code and per-sample uniforms: (N, C, H, W) -> (N, C, H, W).

    `op` (N,) holds indices into DSA_OPS; `u` (N, 10) uniforms in [0, 1). Same distributions as
    the single form (color: u0..u2; crop: u3, u4; cutout: u5, u6; flip: u7; scale: u8, u9; rotate:
    u8). Branch-free: every op's result is computed and the chosen one is kept with torch.where,
    so the graph is static (compile, CUDA graphs). Samples whose op is not in the strategy pass
    through unchanged.
    """
    n, _, h, w = x.shape
    dev, dt = x.device, x.dtype
    code = {name: i for i, name in enumerate(DSA_OPS)}
    u = u.to(dt)

    def pick(name: str) -> torch.Tensor:  # (N, 1, 1, 1) bool
        return (op == code[name]).view(n, 1, 1, 1)

    out = x
    # color: brightness, saturation, contrast in that order
    xc = x + (u[:, 0] - 0.5).view(n, 1, 1, 1)
    m = xc.mean(dim=1, keepdim=True)
    xc = (xc - m) * (u[:, 1] * 2.0).view(n, 1, 1, 1) + m
    m = xc.mean(dim=(1, 2, 3), keepdim=True)
    xc = (xc - m) * (u[:, 2] + 0.5).view(n, 1, 1, 1) + m
    out = torch.where(pick("color"), xc, out)
    # crop: integer shift in [-s, s], zero fill (out[i, j] = x[i - dy, j - dx])
    s = int(h * cfg.crop_ratio + 0.5)
    if s > 0:
        dy = (u[:, 3] * (2 * s + 1)).floor().long().clamp_(max=2 * s) - s  # (N,)
        dx = (u[:, 4] * (2 * s + 1)).floor().long().clamp_(max=2 * s) - s
        rows = torch.arange(h, device=dev).unsqueeze(0) - dy.unsqueeze(1)  # (N, H)
        cols = torch.arange(w, device=dev).unsqueeze(0) - dx.unsqueeze(1)  # (N, W)
        ok = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        shifted = x.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand_as(x))
        shifted = shifted.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand_as(x))
        out = torch.where(pick("crop"), shifted * ok[:, None].to(dt), out)
    # flip: horizontal with probability p
    flip = pick("flip") & (u[:, 7] < cfg.flip_p).view(n, 1, 1, 1)
    out = torch.where(flip, x.flip(3), out)
    # scale / rotate: one affine grid sample, identity for the other samples
    lo = 1.0 / cfg.scale_ratio
    sx = u[:, 8] * (cfg.scale_ratio - lo) + lo
    sy = u[:, 9] * (cfg.scale_ratio - lo) + lo
    ang = (u[:, 8] - 0.5) * 2.0 * cfg.rotate_degrees * math.pi / 180.0
    cos, sin = torch.cos(ang), torch.sin(ang)
    is_scale, is_rot = op == code["scale"], op == code["rotate"]
    zero = torch.zeros_like(sx)
    a00 = torch.where(is_scale, sx, cos)
    a11 = torch.where(is_scale, sy, cos)
    a01 = torch.where(is_scale, zero, sin)
    a10 = torch.where(is_scale, zero, -sin)
    theta = torch.stack([a00, a01, zero, a10, a11, zero], dim=1).view(n, 2, 3)
    grid = F.affine_grid(theta, [n, x.shape[1], h, w], align_corners=True)
    warped = F.grid_sample(x, grid, align_corners=True)
    out = torch.where((is_scale | is_rot).view(n, 1, 1, 1), warped, out)
    # cutout: zero a square of side round(H * ratio) at a random centre, drawn as the single
    # form draws it (0..H-1, or 0..H for an even side: cutout_centres)
    side = int(h * cfg.cutout_ratio + 0.5)
    side_w = int(w * cfg.cutout_ratio + 0.5)
    rows, cols = cutout_centres(h, side), cutout_centres(w, side_w)
    cy = (u[:, 5] * rows).floor().long().clamp_(max=rows - 1)
    cx = (u[:, 6] * cols).floor().long().clamp_(max=cols - 1)
    top, left = cy - side // 2, cx - side_w // 2
    ys, xs = torch.arange(h, device=dev), torch.arange(w, device=dev)
    in_y = (ys[None] >= top[:, None]) & (ys[None] < (top + side)[:, None])  # (N, H)
    in_x = (xs[None] >= left[:, None]) & (xs[None] < (left + side_w)[:, None])  # (N, W)
    hole = (in_y[:, :, None] & in_x[:, None, :])[:, None] & pick("cutout")  # (N, 1, H, W)
    return out.masked_fill(hole, 0.0)
