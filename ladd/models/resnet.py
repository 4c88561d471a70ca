"""ResNet-18 of the distillation field: 3x3 stride-1 stem, no max-pool, instance norm
(GLaD networks/resnet.py).

Same layers as GLaD's `networks/resnet.py` ResNet18 with norm="instancenorm" (128 px, global
average pool) and `resnet_cifar.py` ResNet18CIFAR (32 px, avg_pool2d(4) on the 4 x 4 map: the
same global average).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ladd.models.layers import make_norm
from ladd.models.registry import register_model


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = make_norm(norm, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = make_norm(norm, c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), make_norm(norm, c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(
        self, num_classes: int, image_size: int, channels: int = 3, norm: str = "instance"
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(channels, 64, 3, 1, 1, bias=False), make_norm(norm, 64), nn.ReLU(True)
        )
        stages, c_in = [], 64
        for i, c_out in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            stages.append(
                nn.Sequential(
                    BasicBlock(c_in, c_out, stride, norm), BasicBlock(c_out, c_out, 1, norm)
                )
            )
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.classifier = nn.Linear(512, num_classes)

    @property
    def cam_target_layer(self) -> nn.Module:
        return self.layer4[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


# GLaD glad_utils.py get_eval_lrs: "ResNet18" and "ResNet18CIFAR" 0.001.
@register_model("resnet18", lr_32=0.001, lr_128=0.001, family="resnet", lr_adamw=0.001)
def resnet18(
    num_classes: int, image_size: int, channels: int = 3, norm: str = "instance"
) -> nn.Module:
    return ResNet18(num_classes, image_size, channels, norm=norm)
