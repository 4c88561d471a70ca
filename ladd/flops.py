"""Counting training FLOPs: one measured step, scaled by the number of samples.

Counting every step with FlopCounterMode is slow, so we count one forward + backward of a batch
on a throwaway copy of the model and multiply. Augmentation and optimiser arithmetic are not
counted (they are small next to the network); nor does FlopCounterMode count element-wise ops.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def train_flops_per_sample(model: nn.Module, sample: torch.Tensor, num_classes: int) -> float:
    """FLOPs of one training step (forward + backward) per sample, measured on `sample` (B, C, H, W)."""
    probe = copy.deepcopy(model).train()
    x = sample.detach()
    target = torch.full((x.shape[0],), 0, dtype=torch.long, device=x.device) % max(num_classes, 1)
    counter = FlopCounterMode(display=False)
    with counter:
        loss = F.cross_entropy(probe(x), target)
        loss.backward()
    return counter.get_total_flops() / max(1, x.shape[0])


def inference_flops_per_sample(model: nn.Module, sample: torch.Tensor) -> float:
    """FLOPs of one forward pass per sample, measured on `sample` (B, C, H, W)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(sample)
    return counter.get_total_flops() / max(1, sample.shape[0])
