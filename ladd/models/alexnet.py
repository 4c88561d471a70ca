"""AlexNet of the distillation field: 5 convs 128-192-256-192-192, kernels 5,5,3,3,3, 3 max-pools,
no normalisation (GLaD networks/alexnet.py).

Same layers as GLaD's `networks/alexnet.py` (128 px, Linear(192 * (s/8)^2, K)) and
`alexnet_cifar.py` (32 px, Linear(192*4*4, K)); GLaD widens the first conv's padding to 4 for
one-channel (MNIST) inputs, which no LADD source has, so it is not copied.
"""

from __future__ import annotations

import torch
from torch import nn

from ladd.models.registry import register_model


class AlexNet(nn.Module):
    def __init__(self, num_classes: int, image_size: int, channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(128, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(192, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 192, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(192, 192, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        size = image_size // 8
        self.classifier = nn.Linear(192 * size * size, num_classes)

    @property
    def cam_target_layer(self) -> nn.Module:
        return self.features[-3]  # last conv, before its ReLU and pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


# GLaD glad_utils.py get_eval_lrs: "AlexNet" and "AlexNetCIFAR" 0.001.
@register_model("alexnet", lr_32=0.001, lr_128=0.001, family="alexnet", lr_adamw=0.0001)
def alexnet(num_classes: int, image_size: int, channels: int = 3) -> nn.Module:
    return AlexNet(num_classes, image_size, channels)
