"""A seeded static random set of square boxes, stored as its seed.

Spec "random:25,seed=0" (defaults: side between 0.5 and 0.75 of the image side, the range of
the study's R values; "random:25,seed=3,min=0.4,max=0.9"). Box k's side fraction s_k is
uniform in [min, max] and its top and left fractions uniform in [0, 1], all drawn from
torch.Generator().manual_seed(seed) on the CPU: the boxes of a size-S image are side
round(s_k S) at round(top_k (S - side)), round(left_k (S - side)). The same spec gives the same
boxes on every machine, and the same boxes for every image of a set (static, like the grid).
"""

from __future__ import annotations

import math

import torch

from ladd.samplers.base import Box, Sampler, SamplerError, register_sampler

DEFAULT_MIN, DEFAULT_MAX = 0.5, 0.75


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


@register_sampler
class RandomBoxSampler(Sampler):
    name = "random"

    def __init__(
        self, count: int, seed: int = 0, low: float = DEFAULT_MIN, high: float = DEFAULT_MAX
    ) -> None:
        from ladd.limits import current_limits

        if int(count) < 1:
            raise SamplerError(f"random needs at least one box, got {count}")
        current_limits().check_n(max(1, math.isqrt(int(count) - 1) + 1))  # as many as a grid
        if not 0.0 < float(low) <= float(high) <= 1.0:
            raise SamplerError(f"random box sides need 0 < min <= max <= 1, got {low}, {high}")
        self.count, self.seed, self.low, self.high = int(count), int(seed), float(low), float(high)
        g = torch.Generator().manual_seed(self.seed)
        u = torch.rand(self.count, 3, generator=g, dtype=torch.float64)
        self._fractions = [
            (self.low + (self.high - self.low) * float(a), float(b), float(c)) for a, b, c in u
        ]

    @property
    def params(self):
        return {"count": self.count, "seed": self.seed, "min": self.low, "max": self.high}

    @property
    def spec(self) -> str:
        out = f"random:{self.count},seed={self.seed}"
        if (self.low, self.high) != (DEFAULT_MIN, DEFAULT_MAX):
            out += f",min={self.low:g},max={self.high:g}"
        return out

    @property
    def num_crops(self) -> int:
        return self.count

    def boxes(self, size: int) -> list[Box]:
        out = []
        for side_f, top_f, left_f in self._fractions:
            side = max(1, min(size, _round_half_up(side_f * size)))
            room = size - side
            out.append((_round_half_up(top_f * room), _round_half_up(left_f * room), side, side))
        return out

    @classmethod
    def from_options(cls, options: list[str]) -> RandomBoxSampler:
        kw: dict = {}
        positional = []
        for part in options:
            key, eq, value = part.partition("=")
            if eq:
                kw[{"min": "low", "max": "high"}.get(key.strip(), key.strip())] = value.strip()
            else:
                positional.append(part)
        if len(positional) != 1:
            raise SamplerError("random needs its box count first (random:25,seed=0)")
        unknown = set(kw) - {"seed", "low", "high"}
        if unknown:
            raise SamplerError(f"random: unknown option(s) {', '.join(sorted(unknown))}")
        return cls(
            int(positional[0]),
            int(kw.get("seed", 0)),
            float(kw.get("low", DEFAULT_MIN)),
            float(kw.get("high", DEFAULT_MAX)),
        )
