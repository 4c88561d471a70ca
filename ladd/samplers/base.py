"""Static sub-samplers: one base class, a registry, spec strings (like ladd.codecs).

A sampler names the crops of every image: a list of boxes (top, left, height, width) in pixels
for an image of a given size, in a fixed order. Static: nothing is stored per crop, the spec
alone rebuilds every box (a seeded random set is stored as its seed). The paper's sampler is
the N x R grid (`grid`); its future work asks for "alternative static sub-sampling methods".

Spec strings: "grid:5,0.625"; "multiscale:3@0.75,4@0.5"; "random:25,seed=0".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

Box = tuple[int, int, int, int]  # top, left, height, width (pixels)


class SamplerError(ValueError):
    """A sampler spec that cannot be parsed or used (one line)."""


class Sampler(ABC):
    """One static sub-sampler. Subclasses set `name` and implement boxes and from_options."""

    name: str = ""

    @property
    def params(self) -> dict[str, Any]:
        return {}

    @property
    @abstractmethod
    def spec(self) -> str:
        """The spec string (parse_sampler(spec) rebuilds this sampler)."""

    @property
    @abstractmethod
    def num_crops(self) -> int:
        """Crops per image."""

    @abstractmethod
    def boxes(self, size: int) -> list[Box]:
        """The crops of a size x size image, in order."""

    @property
    def grid(self) -> tuple[int, float] | None:
        """(N, R) when this is the paper's N x N grid, else None."""
        return None

    @classmethod
    @abstractmethod
    def from_options(cls, options: list[str]) -> Sampler:
        """Build from a spec's options (the text after the colon, split on commas)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sampler) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


_SAMPLERS: dict[str, type[Sampler]] = {}


def register_sampler(cls: type[Sampler]) -> type[Sampler]:
    if not cls.name or cls.name in _SAMPLERS:
        raise ValueError(f"sampler name {cls.name!r} is empty or taken")
    _SAMPLERS[cls.name] = cls
    return cls


def sampler_names() -> tuple[str, ...]:
    return tuple(_SAMPLERS)


def parse_sampler(spec: str | Sampler) -> Sampler:
    """A sampler from its spec string: NAME[:OPT,OPT,...] (SamplerError when bad)."""
    if isinstance(spec, Sampler):
        return spec
    text = str(spec).strip().lower()
    name, _, opts = text.partition(":")
    cls = _SAMPLERS.get(name.strip())
    if cls is None:
        raise SamplerError(f"unknown sampler {spec!r}; use one of {', '.join(_SAMPLERS)}")
    options = [o.strip() for o in opts.split(",") if o.strip()] if opts else []
    try:
        return cls.from_options(options)
    except SamplerError:
        raise
    except (TypeError, ValueError) as err:
        raise SamplerError(f"sampler {name}: bad options in {spec!r} ({err})") from None


def grid_sampler(n: int, r: float) -> Sampler:
    """The paper's N x N grid covering R of each side."""
    return parse_sampler(f"grid:{int(n)},{float(r)!r}")
