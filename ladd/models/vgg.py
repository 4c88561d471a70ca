"""VGG11 with instance norm, as GLaD builds it (`networks/vgg.py`, `networks/vgg_cifar.py`).

Eight [3x3 conv -> instance norm (GroupNorm, one group per channel) -> ReLU] blocks with five 2x2
max-pools (cfg 64 M 128 M 256 256 M 512 512 M 512 512 M). The two builds differ in the head:
- 128 px, GLaD "VGG11": AdaptiveMaxPool2d((7, 7)) after the last pool, whatever the map size
  (a 4 x 4 map at 128 px is spread to 7 x 7 by overlapping windows), then Linear(512*7*7, K);
- 32 px, GLaD "VGG11CIFAR": the 1 x 1 map goes straight to Linear(512, K) (GLaD appends an
  AvgPool2d(1, 1), an identity, left out here). Up to 64 px we keep this build and size the
  linear layer to the map, 512 * (s / 32)^2.
"""

from __future__ import annotations

import torch
from torch import nn

from ladd.models.layers import make_norm
from ladd.models.registry import register_model, small_variant

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
        self._cam_index = len(layers) - 2  # the last conv block's ReLU, before the final pool
        if small_variant(image_size):
            features = 512 * max(size, 1) ** 2
        else:
            layers.append(nn.AdaptiveMaxPool2d((7, 7)))
            features = 512 * 7 * 7
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(features, num_classes)

    @property
    def cam_target_layer(self) -> nn.Module:
        return self.features[self._cam_index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, K)
        return self.classifier(self.features(x).flatten(1))


# GLaD glad_utils.py get_eval_lrs: "VGG11" and "VGG11CIFAR" 0.0001.
@register_model("vgg11", lr_32=0.0001, lr_128=0.0001, family="vgg", lr_adamw=0.0005)
def vgg11(
    num_classes: int, image_size: int, channels: int = 3, norm: str = "instance"
) -> nn.Module:
    """GLaD's VGG11CIFAR up to 64 px, its VGG11 above."""
    return VGG(num_classes, image_size, channels, norm=norm)
