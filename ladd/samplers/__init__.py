"""Static sub-samplers (one file each) and their registry: parse_sampler("grid:5,0.625").

grid.py          the paper's N x N grid (the default)
multiscale.py    the union of several grids
random_boxes.py  a seeded static random set of boxes, stored as its seed
"""

from ladd.samplers import grid, multiscale, random_boxes  # noqa: F401  (registers them)
from ladd.samplers.base import (
    Box,
    Sampler,
    SamplerError,
    grid_sampler,
    parse_sampler,
    register_sampler,
    sampler_names,
)
from ladd.samplers.cut import cut_boxes

__all__ = [
    "Box",
    "Sampler",
    "SamplerError",
    "cut_boxes",
    "grid_sampler",
    "parse_sampler",
    "register_sampler",
    "sampler_names",
]
