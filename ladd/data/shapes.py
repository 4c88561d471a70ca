"""The offline demo source: ten shape classes drawn procedurally, vectorised in torch.

Every image is one bright shape of random size, position, slight rotation and stretch, in a random
colour, over a random textured background (low-frequency colour noise, a lighting gradient and
pixel noise). Colour is drawn the same way for every class, so only the outline tells classes
apart. Shapes are signed-distance functions on a coordinate grid, antialiased over one pixel.
Generation is deterministic per (seed, split); train and test use different streams.
"""

from __future__ import annotations

import math
import zlib

import torch

from ladd.data.base import LoadContext, Source, SourceError
from ladd.data.imageset import ImageSet, SourceInfo
from ladd.limits import current_limits

SHAPE_CLASSES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "diamond",
    "ring",
    "frame",
    "plus",
    "cross",
    "horizontal bars",
    "vertical bars",
)
# Measured on the 32 px train split (5,000 images, seed 0); 128 px agrees to within 0.01.
SHAPES_MEAN: tuple[float, float, float] = (0.3266, 0.3254, 0.3255)
SHAPES_STD: tuple[float, float, float] = (0.2532, 0.2537, 0.2524)
SHAPES_PER_CLASS = {"train": 500, "test": 100}

_SQRT2 = math.sqrt(2.0)


def _stripes(t: torch.Tensor, period: float = 0.6, half_width: float = 0.17) -> torch.Tensor:
    """Signed distance to bars centred at multiples of `period` along t."""
    return (t - period * torch.round(t / period)).abs() - half_width


def _bar_pair(a: torch.Tensor, b: torch.Tensor, arm: float = 0.28) -> torch.Tensor:
    """Signed distance to a plus made of two bars along the a and b axes."""
    along_a = torch.maximum(b.abs() - arm, a.abs() - 1.0)
    along_b = torch.maximum(a.abs() - arm, b.abs() - 1.0)
    return torch.minimum(along_a, along_b)


def _shape_distance(k: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside) of class k's outline, in units of the shape's radius.

    u, v: (n, H, W) coordinates in the shape's frame; v grows downwards.
    """
    name = SHAPE_CLASSES[k]
    box = torch.maximum(u.abs(), v.abs())
    if name == "circle":
        return torch.sqrt(u * u + v * v) - 1.0
    if name == "square":
        return box - 0.85
    if name == "triangle":  # apex up at (0, -1), base at v = 0.7
        side = (u.abs() * 1.7 - (v + 1.0) * 0.95) / math.hypot(1.7, 0.95)
        return torch.maximum(v - 0.7, side)
    if name == "diamond":
        return (u.abs() + v.abs() - 1.0) / _SQRT2
    if name == "ring":
        return (torch.sqrt(u * u + v * v) - 0.72).abs() - 0.28
    if name == "frame":
        return (box - 0.65).abs() - 0.22
    if name == "plus":
        return _bar_pair(u, v)
    if name == "cross":
        return _bar_pair((u + v) / _SQRT2, (u - v) / _SQRT2)
    if name == "horizontal bars":
        return torch.maximum(box - 0.9, _stripes(v))
    if name == "vertical bars":
        return torch.maximum(box - 0.9, _stripes(u))
    raise ValueError(f"unknown shape class {k}")


def _uniform(n: int, low: float, high: float, g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(n, *shape, generator=g) * (high - low) + low


def _interpolation_matrix(size: int, nodes: int) -> torch.Tensor:
    """(size, nodes) linear-interpolation weights from a coarse grid to pixel centres."""
    position = ((torch.arange(size) + 0.5) * nodes / size - 0.5).clamp(0, nodes - 1)
    low = position.floor().long().clamp(max=nodes - 2)
    frac = position - low
    weights = torch.zeros(size, nodes)
    weights[torch.arange(size), low] = 1.0 - frac
    weights[torch.arange(size), low + 1] = frac
    return weights


def _texture(n: int, size: int, g: torch.Generator, amplitude: float) -> torch.Tensor:
    """Smooth colour noise (n, 3, size, size) with zero mean: a 5x5 grid, interpolated.

    Two small matrix products instead of F.interpolate, which is ~10x slower at 128 px.
    """
    coarse = torch.randn(n, 3, 5, 5, generator=g) * amplitude
    weights = _interpolation_matrix(size, 5)  # (size, 5)
    return weights @ coarse @ weights.T


def _draw_class(k: int, n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """n images of class k as float (n, 3, size, size) in [0, 1]."""
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2.0 - 1.0  # pixel centres
    ys, xs = axis.view(1, size, 1), axis.view(1, 1, size)

    radius = _uniform(n, 0.35, 0.75, g, 1, 1)  # of the half-image
    reach = 1.0 - 0.85 * radius
    cx, cy = _uniform(n, -1, 1, g, 1, 1) * reach, _uniform(n, -1, 1, g, 1, 1) * reach
    angle = _uniform(n, -0.3, 0.3, g, 1, 1)
    stretch_x, stretch_y = _uniform(n, 0.85, 1.15, g, 1, 1), _uniform(n, 0.85, 1.15, g, 1, 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    dx, dy = xs - cx, ys - cy  # (n, size, size)
    u = (dx * cos + dy * sin) / (radius * stretch_x)
    v = (-dx * sin + dy * cos) / (radius * stretch_y)
    pixels_per_unit = radius * torch.minimum(stretch_x, stretch_y) * (size / 2.0)
    alpha = (0.5 - _shape_distance(k, u, v) * pixels_per_unit).clamp_(0.0, 1.0).unsqueeze(1)

    # Dark background, bright shape, hues random for both: the outline is always visible and
    # colour says nothing about the class, so a few images a class are enough to learn from.
    background = torch.rand(n, 3, 1, 1, generator=g) * 0.45
    foreground = 0.55 + torch.rand(n, 3, 1, 1, generator=g) * 0.45

    # Lighting gradient and pixel noise are grey (one channel), the texture is coloured.
    shade = _uniform(n, -0.15, 0.15, g, 1, 1, 1) * xs.unsqueeze(1)
    shade = shade + _uniform(n, -0.15, 0.15, g, 1, 1, 1) * ys.unsqueeze(1)  # (n, 1, S, S)
    shade = shade + torch.randn(n, 1, size, size, generator=g) * 0.05
    texture = _texture(n, size, g, 0.12)  # (n, 3, S, S), faint on the shape
    image = texture.mul_(1.0 - 0.6 * alpha).add_(shade).add_(background)
    image += alpha * (foreground - background)
    return image.clamp_(0.0, 1.0)


def split_seed(seed: int, split: str) -> int:
    """Seed of one split's stream: train and test never share random numbers."""
    return zlib.crc32(f"ladd-shapes/{split}/{int(seed)}".encode())


def generate_shapes(
    per_class: int, image_size: int = 32, *, seed: int = 0, split: str = "train"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-major uint8 images (C * per_class, 3, S, S) and int64 labels (C * per_class,)."""
    if image_size < 8:
        raise ValueError(f"shapes needs image_size >= 8, got {image_size}")
    count = len(SHAPE_CLASSES) * per_class  # --image-size sizes them: checked before allocating
    current_limits().check_decoded(count * 3 * image_size**2, f"shapes at {image_size} px")
    base = split_seed(seed, split)
    chunk = max(8, 2**18 // (image_size * image_size))  # ~1 MB per channel plane: cache-sized
    images = torch.empty(
        len(SHAPE_CLASSES) * per_class, 3, image_size, image_size, dtype=torch.uint8
    )
    for k in range(len(SHAPE_CLASSES)):
        g = torch.Generator().manual_seed(base * 16 + k)
        for start in range(0, per_class, chunk):
            n = min(chunk, per_class - start)
            block = _draw_class(k, n, image_size, g)
            offset = k * per_class + start
            images[offset : offset + n] = block.mul_(255.0).round_().to(torch.uint8)
    labels = torch.arange(len(SHAPE_CLASSES)).repeat_interleave(per_class)
    return images, labels


class ShapesSource(Source):
    """`shapes`: generated on demand (never cached: regenerating is as fast as reading)."""

    name = "shapes"
    default_size = 32

    def info(self, image_size: int | None = None) -> SourceInfo:
        size = self.resolve_size(image_size)
        return SourceInfo(self.name, SHAPE_CLASSES, size, SHAPES_MEAN, SHAPES_STD)

    def uses_cache(self, ctx: LoadContext) -> bool:
        return False

    def _generate(self, split: str, size: int, per_class: int, seed: int) -> ImageSet:
        images, labels = generate_shapes(per_class, size, seed=seed, split=split)
        return ImageSet(images, labels, self.info(size), split)

    def decode(self, split: str, image_size: int, ctx: LoadContext) -> dict[str, ImageSet]:
        return {split: self._generate(split, image_size, SHAPES_PER_CLASS[split], seed=0)}

    def load_limited(
        self,
        split: str,
        image_size: int | None,
        ctx: LoadContext,
        per_class: int | None = None,
        seed: int = 0,
    ) -> ImageSet:
        """Draws `per_class` images a class (default 500 train, 100 test) from stream `seed`."""
        if split not in SHAPES_PER_CLASS:
            raise SourceError(f"shapes: split must be 'train' or 'test', got {split!r}")
        per_class = SHAPES_PER_CLASS[split] if per_class is None else per_class
        return self._generate(split, self.resolve_size(image_size), per_class, seed)
