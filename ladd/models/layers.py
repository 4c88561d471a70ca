"""Small building blocks shared by the architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def instance_norm(channels: int) -> nn.GroupNorm:
    """'Instance norm' of the distillation code lineage: GroupNorm, one group per channel, affine."""
    return nn.GroupNorm(channels, channels, affine=True)


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return instance_norm(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: use instance, batch or none")


class AvgPool2(nn.Module):
    """2x2 average pooling as reshape-and-mean: same numbers as AvgPool2d(2), cheaper backward.

    Falls back to avg_pool2d for odd sizes (floor semantics, like nn.AvgPool2d).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            return F.avg_pool2d(x, 2)
        return x.reshape(b, c, h // 2, 2, w // 2, 2).mean(dim=(3, 5))
