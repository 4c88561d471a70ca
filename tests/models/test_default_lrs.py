"""Default learning rates per architecture: GLaD's per-model evaluation rates.

GLaD = github.com/GeorgeCazenavette/glad at fe62863, `glad_utils.py` get_eval_lrs / eval_loop.
"""

from __future__ import annotations

import pytest

from ladd.models import default_lr


@pytest.mark.parametrize(
    ("name", "lr"),
    [("alexnet", 0.001), ("resnet18", 0.001), ("vit", 0.001), ("vgg11", 0.0001)],
)
@pytest.mark.parametrize("size", [32, 128])
def test_cross_architecture_lrs_are_glads(name, lr, size):
    """GLaD glad_utils.py:129-141 get_eval_lrs: "ResNet18" 0.001, "VGG11" 0.0001, "AlexNet"
    0.001, "ViT" 0.001 (lines 132-135), and the CIFAR variants alike (lines 137-140); eval_loop
    sets args.lr_net = eval_pool_dict[model_eval] (line 184) for every model it trains. Our
    32 px builds are GLaD's *CIFAR ones, so the same rate holds at both sizes."""
    assert default_lr(name, size) == lr


def test_distillation_convnet_lr():
    """128 px: GLaD glad_utils.py:131, `args.model: 0.001` (the distillation ConvNet, default
    model 'ConvNet' in shared_args.py:6). 32 px: kept at the MTT lineage's 0.01 (`--lr_teacher`
    default, GLaD buffer_mtt.py:242 and distill_mtt.py:377), the CIFAR protocol's rate for a
    ConvNet when the set brings no learned lr (GLaD's own CIFAR eval_loop would use 0.001)."""
    assert default_lr("convnet_d5", 128) == 0.001
    assert default_lr("convnet_d3", 32) == 0.01
