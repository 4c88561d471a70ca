"""ConvNet-Dk of the distillation field (DatasetCondensation networks.py `ConvNet`, MTT's too).

k blocks of [3x3 conv (width 128, padding 1) -> instance norm -> ReLU -> 2x2 average pool], then a
linear layer on the flattened map (2048 inputs for D3 at 32 px and D5 at 128 px).
"""

from __future__ import annotations

import torch
from torch import nn

from ladd.models.layers import AvgPool2, make_norm
from ladd.models.registry import register_model


class ConvNet(nn.Module):
    def __init__(
        self,
        num_classes: int,
        image_size: int,
        channels: int = 3,
        depth: int = 3,
        width: int = 128,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        size, c_in = image_size, channels
        for _ in range(depth):
            block = nn.Sequential(
                nn.Conv2d(c_in, width, 3, padding=1),
                make_norm(norm, width),
                nn.ReLU(inplace=True),
            )
            # Stop pooling once the map is 1 px (deep nets at 32 px).
            pool = size >= 2
            blocks.append(nn.Sequential(block, AvgPool2() if pool else nn.Identity()))
            size = size // 2 if pool else size
            c_in = width
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(width * size * size, num_classes)

    @property
    def cam_target_layer(self) -> nn.Module:
        # The last block before its pooling: bigger maps than after it.
        return self.features[-1][0]

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, width * s * s)
        """The flattened feature map the classifier sees (Distribution Matching's embedding)."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, K)
        return self.classifier(self.embed(x))


def _make(depth: int):
    def build(num_classes: int, image_size: int, channels: int = 3, **options) -> nn.Module:
        return ConvNet(num_classes, image_size, channels, depth=depth, **options)

    return build


# 128 px: GLaD's rate for the distillation model itself (glad_utils.py:131, `args.model: 0.001`).
# 32 px: the MTT lineage's 0.01 (`--lr_teacher`, GLaD buffer_mtt.py:242 and distill_mtt.py:377),
# the CIFAR protocol's rate when a set brings no learned lr; GLaD's CIFAR eval_loop uses 0.001.
# AdamW (rded): RDED's argument.py gives its ConvNet students of depth 3 to 6 0.001; the others
# have no RDED rate (a run under rded needs --lr).
for _d in range(1, 7):
    register_model(
        f"convnet_d{_d}",
        lr_32=0.01,
        lr_128=0.001,
        family="convnet",
        lr_adamw=0.001 if _d >= 3 else None,
    )(_make(_d))
