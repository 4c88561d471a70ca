"""The paper's static sampler: N x N crops covering R of each side, evenly strided from the
top-left corner, raster order (ladd.subsample)."""

from __future__ import annotations

from ladd.samplers.base import Box, Sampler, SamplerError, register_sampler


@register_sampler
class GridSampler(Sampler):
    """Spec "grid:N,R" (e.g. "grid:5,0.625")."""

    name = "grid"

    def __init__(self, n: int, r: float) -> None:
        from ladd.subsample import check_grid

        check_grid(int(n), float(r))
        self.n, self.r = int(n), float(r)

    @property
    def params(self):
        return {"n": self.n, "r": self.r}

    @property
    def spec(self) -> str:
        return f"grid:{self.n},{self.r:g}"

    @property
    def num_crops(self) -> int:
        return self.n * self.n

    @property
    def grid(self) -> tuple[int, float]:
        return self.n, self.r

    def boxes(self, size: int) -> list[Box]:
        from ladd.subsample import crop_boxes

        return crop_boxes(size, self.n, self.r)

    @classmethod
    def from_options(cls, options: list[str]) -> GridSampler:
        if len(options) != 2:
            raise SamplerError(f"grid needs N and R (grid:5,0.625), got {','.join(options)!r}")
        return cls(int(options[0]), float(options[1]))
