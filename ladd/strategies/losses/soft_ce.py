"""LADD's loss (Eq. 5): the soft-target cross-entropy -sum_k p_k log softmax(z)_k."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ladd.strategies.base import DenseLoss
from ladd.strategies.losses import LOSSES


@LOSSES.register
class SoftCE(DenseLoss):
    """The soft-target cross-entropy: what the hard-labelled samples get too (the default)."""

    name = "soft_ce"

    def per_sample(self, logits, probs, classes, temperature=None, student_temperature=None):
        return -(probs.float() * F.log_softmax(logits.float(), dim=-1)).sum(-1)


def cross_entropy(logits: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """-sum_k p_k log softmax(z)_k per sample: (..., B, K) -> (..., B)."""
    return -(probs.float() * F.log_softmax(logits.float(), dim=-1)).sum(-1)
