"""The losses a student is trained with."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["soft_cross_entropy"]


def soft_cross_entropy(
    logits: torch.Tensor,
    target_probs: torch.Tensor,
    weight: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy with probability targets, averaged over the batch axis (the second last).

    (B, K), (B, K) -> (); stacked seeds (S, B, K), (S, B, K) -> (S,), each seed's own mean.
    `weight` (B,) or (S, B): 1 for real samples, 0 for padding; the mean is over real samples.
    Computed in float32 whatever the logits' dtype. `temperature` T: the logits are divided by
    it first, log_softmax(logits / T) (knowledge distillation's student temperature; the KL
    divergence from the targets differs by their entropy, a constant: the same gradients).
    """
    z = logits.float() if temperature == 1.0 else logits.float() / temperature
    ce = -(target_probs * F.log_softmax(z, dim=-1)).sum(-1)  # (..., B)
    if weight is None:
        return ce.mean(-1)
    return (ce * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)
