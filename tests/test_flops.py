"""ladd.flops: a step's FLOPs counted on a meta-device copy of the model (shapes only, no
arithmetic) are those of a real step on the CPU, with attention in plain matmuls: on a CPU,
PyTorch's fused attention kernel has no FlopCounterMode formula, so a real CPU step of a ViT
used to miss 12 L T^2 d FLOPs a sample (6 layers, 65 tokens, width 512 at 32 px: 155,750,400,
4% of the step) that a CUDA step counts."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from ladd.flops import inference_flops_per_sample, train_flops_per_sample
from ladd.models import create_model


def counted_on_cpu(model, x, *, train: bool) -> float:
    """A real step on the CPU under FlopCounterMode, attention through the math backend."""
    probe = copy.deepcopy(model).train(train)
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        if train:
            F.cross_entropy(probe(x), torch.zeros(x.shape[0], dtype=torch.long)).backward()
        else:
            with torch.no_grad():
                probe(x)
    return counter.get_total_flops() / x.shape[0]


@pytest.mark.parametrize(
    ("arch", "size"), [("convnet_d3", 32), ("resnet18", 32), ("tv_resnet18", 64), ("vit", 32)]
)
def test_the_meta_count_is_a_real_steps(arch, size) -> None:
    model = create_model(arch, 10, size, seed=0)
    x = torch.randn(2, 3, size, size)
    assert train_flops_per_sample(model, x, 10) == counted_on_cpu(model, x, train=True)
    model.eval()
    assert inference_flops_per_sample(model, x) == counted_on_cpu(model, x, train=False)


def test_vit_attention_is_counted() -> None:
    """12 L T^2 d a sample: QK^T and AV forward (2 T^2 d each), twice that backward."""
    model = create_model("vit", 10, 32, seed=0)
    x = torch.randn(2, 3, 32, 32)
    fused = copy.deepcopy(model).train()
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(fused(x), torch.zeros(2, dtype=torch.long)).backward()
    mm_only = (
        sum(
            v
            for k, v in counter.get_flop_counts()["Global"].items()
            if str(k) in ("aten.mm", "aten.addmm")
        )
        / 2
    )  # the linear layers, whichever attention kernel ran
    assert train_flops_per_sample(model, x, 10) - mm_only == 12 * 6 * 65**2 * 512


def test_counting_leaves_the_model_as_it_was() -> None:
    model = create_model("resnet18", 10, 32, seed=0).eval()
    before = copy.deepcopy(model.state_dict())
    train_flops_per_sample(model, torch.randn(2, 3, 32, 32), 10)
    after = model.state_dict()
    assert not model.training and all(t.device.type == "cpu" for t in after.values())
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics included
