"""VGG11 with instance norm, as the distillation field evaluates it (REFERENCE.md section 3)."""

from __future__ import annotations

import torch
from torch import nn

from ladd.models.layers import make_norm
from ladd.models.registry import register_model

_CFG_11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(nn.Module):
    def __init__(
        self, num_classes: int, image_size: int, channels: int = 3, norm: str = "instance"
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, size = channels, image_size
        for v in _CFG_11:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                size //= 2
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), make_norm(norm, v), nn.ReLU(True)]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512 * max(size, 1) ** 2, num_classes)

    @property
    def cam_target_layer(self) -> nn.Module:
        return self.features[-2]  # the last conv block's ReLU, before the final pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


@register_model("vgg11", lr_32=0.01, lr_128=0.0001, family="vgg")
def vgg11(
    num_classes: int, image_size: int, channels: int = 3, norm: str = "instance"
) -> nn.Module:
    return VGG(num_classes, image_size, channels, norm=norm)
