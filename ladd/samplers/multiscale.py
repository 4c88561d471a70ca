"""A multi-scale grid: the union of several N x R grids, the coarser scales first.

Spec "multiscale:3@0.75,4@0.5" = the 9 crops of a 3 x 3 grid at R 0.75, then the 16 of a
4 x 4 grid at R 0.5: 25 crops, as many as the paper's 5 x 5 grid (equal label bytes), at two
scales instead of one.
"""

from __future__ import annotations

from ladd.samplers.base import Box, Sampler, SamplerError, register_sampler


@register_sampler
class MultiScaleSampler(Sampler):
    name = "multiscale"

    def __init__(self, grids: list[tuple[int, float]]) -> None:
        from ladd.subsample import check_grid

        if not grids:
            raise SamplerError("multiscale needs at least one N@R grid")
        for n, r in grids:
            check_grid(int(n), float(r))
        self.grids = [(int(n), float(r)) for n, r in grids]

    @property
    def params(self):
        return {"grids": [[n, r] for n, r in self.grids]}

    @property
    def spec(self) -> str:
        return "multiscale:" + ",".join(f"{n}@{r:g}" for n, r in self.grids)

    @property
    def num_crops(self) -> int:
        return sum(n * n for n, _ in self.grids)

    def boxes(self, size: int) -> list[Box]:
        from ladd.subsample import crop_boxes

        return [b for n, r in self.grids for b in crop_boxes(size, n, r)]

    @classmethod
    def from_options(cls, options: list[str]) -> MultiScaleSampler:
        grids = []
        for part in options:
            n, at, r = part.partition("@")
            if not at:
                raise SamplerError(f"multiscale grids are N@R (e.g. 3@0.75), got {part!r}")
            grids.append((int(n), float(r)))
        return cls(grids)
