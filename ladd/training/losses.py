"""The losses a student is trained with."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["soft_cross_entropy"]


def soft_cross_entropy(
    logits: torch.Tensor, target_probs: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy with probability targets, averaged over the batch axis (the second last).

    (B, K), (B, K) -> (); stacked seeds (S, B, K), (S, B, K) -> (S,), each seed's own mean.
    `weight` (B,) or (S, B): 1 for real samples, 0 for padding; the mean is over real samples.
    Computed in float32 whatever the logits' dtype.
    """
    ce = -(target_probs * F.log_softmax(logits.float(), dim=-1)).sum(-1)  # (..., B)
    if weight is None:
        return ce.mean(-1)
    return (ce * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)
