"""Counting training FLOPs: one measured step, scaled by the number of samples.

Counting every step with FlopCounterMode is slow, so we count one forward + backward of a batch
on a throwaway copy of the model and multiply. Augmentation and optimiser arithmetic are not
counted (they are small next to the network); nor does FlopCounterMode count element-wise ops.

The copy lives on the meta device: shapes only, no arithmetic (the field's ResNet-18 at 128 px:
0.14 s against 2.0 s for a real step on two CPU cores, once warm), and one count whatever
device trains. On a CPU, PyTorch runs
attention (scaled_dot_product_attention) in a fused kernel FlopCounterMode has no formula for,
so a ViT's attention matmuls went uncounted there (4% of its step at 32 px) and counted on
CUDA; on meta they are counted, as on CUDA.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _shape_only(model: nn.Module, sample: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """A meta-device copy of `model` and an input of `sample`'s shape and dtype there."""
    return copy.deepcopy(model).to("meta"), torch.empty_like(sample, device="meta")


def train_flops_per_sample(model: nn.Module, sample: torch.Tensor, num_classes: int) -> float:
    """FLOPs of one training step (forward + backward) per sample, measured on `sample`'s shape
    (B, C, H, W) on a meta copy of `model` (the model itself is untouched)."""
    probe, x = _shape_only(model, sample.detach())
    probe.train()
    target = torch.zeros(x.shape[0], dtype=torch.long, device=x.device) % max(num_classes, 1)
    counter = FlopCounterMode(display=False)
    with counter:
        loss = F.cross_entropy(probe(x), target)
        loss.backward()
    return counter.get_total_flops() / max(1, x.shape[0])


def inference_flops_per_sample(model: nn.Module, sample: torch.Tensor) -> float:
    """FLOPs of one forward pass per sample, measured on `sample`'s shape (B, C, H, W) on a
    meta copy of `model` in its own train/eval mode."""
    probe, x = _shape_only(model, sample.detach())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        probe(x)
    return counter.get_total_flops() / max(1, x.shape[0])
