"""The LADD loss (Kang, Lim et al., WACV 2025, arXiv 2409.16239, Eq. 5) as a function and a module.

Per distilled image x_i with hard label y_i and dense labels y^d_i (N*N crops S_j(x_i)):

    L_i = CE(h(x_i), y_i) + sum_j CE(h(S_j(x_i)), y^d_{i,j})     (soft-target cross-entropy)

The global view learns the hard label, every local view its dense label. Two reductions over a
batch of B images:

- "mean": the mean over all B * (1 + N*N) samples, what a DataLoader over the flat sample list
  gives (`ladd.LabelAugmentedDataset`, `ladd.expand`) and what `ladd train --loss mean` uses;
- "image_sum": the paper's per-image sum, averaged over the B images: (1 + N*N) times "mean"
  (`ladd train --loss image_sum`).

`hard` and `soft` are the two parts under the same reduction (hard + soft = loss), for logging.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LADDLoss", "LADDLossOutput", "ladd_loss", "soft_target_cross_entropy"]

Reduction = Literal["mean", "image_sum"]
REDUCTIONS: tuple[str, ...] = ("mean", "image_sum")


class LADDLossOutput(NamedTuple):
    """The LADD loss of a batch and its two parts (hard + soft = loss, same reduction).

    Examples:
        >>> import torch
        >>> from ladd import LADDLossOutput, ladd_loss
        >>> out = ladd_loss(torch.zeros(2, 4), torch.tensor([0, 1]))
        >>> isinstance(out, LADDLossOutput), out._fields
        (True, ('loss', 'hard', 'soft'))
    """

    loss: torch.Tensor  # () the value to back-propagate
    hard: torch.Tensor  # () the full images' cross-entropy with their hard (or soft) labels
    soft: torch.Tensor  # () the crops' cross-entropy with their dense labels


def soft_target_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy with probability targets: (..., K), (..., K) -> (...).

    -sum_k target_k log softmax(logits)_k, in float32 whatever the logits' dtype; the same
    number as torch.nn.functional.cross_entropy(logits, target, reduction="none") for (B, K).

    Examples:
        >>> import torch
        >>> from ladd import soft_target_cross_entropy
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
        >>> soft_target_cross_entropy(logits, torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
        tensor([0.1269, 0.6931])
    """
    return -(target.float() * F.log_softmax(logits.float(), dim=-1)).sum(-1)


def _hard_targets(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B,) class indices -> one-hot (B, K); (B, K) probabilities as they are."""
    if labels.dim() == 1:
        return F.one_hot(labels.long(), num_classes).float()
    if labels.shape[-1] != num_classes:
        raise ValueError(f"labels have {labels.shape[-1]} classes, the logits {num_classes}")
    return labels.float()


def ladd_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    crop_logits: torch.Tensor | None = None,
    dense: torch.Tensor | None = None,
    *,
    reduction: Reduction = "mean",
) -> LADDLossOutput:
    """The LADD loss of a batch of B images and their N*N crops each.

    `logits` (B, K): the model on the full images; `labels`: their hard labels (B,) or soft
    labels (B, K) (a distilled set's own, e.g. DATM's, as probabilities). `crop_logits`
    (B, N*N, K) or (B*N*N, K), crops in `ladd.sub_sample`'s order: the model on the crops;
    `dense` (B, N*N, K): their dense labels (probabilities, `ladd.dense_labels`). Without crops
    the loss is the plain cross-entropy of the full images (the baseline).

    Examples:
        >>> import torch
        >>> from ladd import ladd_loss
        >>> logits, labels = torch.zeros(2, 10), torch.tensor([3, 7])
        >>> crop_logits, dense = torch.zeros(2, 25, 10), torch.full((2, 25, 10), 0.1)
        >>> out = ladd_loss(logits, labels, crop_logits, dense)
        >>> round(out.loss.item(), 4), round((out.hard + out.soft).item(), 4)  # log(10) everywhere
        (2.3026, 2.3026)
        >>> per_image = ladd_loss(logits, labels, crop_logits, dense, reduction="image_sum")
        >>> round(per_image.loss.item() / out.loss.item(), 4)  # 1 + N*N samples per image
        26.0
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")
    b, k = logits.shape
    hard_ce = soft_target_cross_entropy(logits, _hard_targets(labels, k))  # (B,)
    if (crop_logits is None) != (dense is None):
        raise ValueError("give both crop_logits and dense, or neither")
    if crop_logits is None or dense is None:
        soft_sum, crops = hard_ce.new_zeros(()), 0
    else:
        if dense.dim() != 3 or dense.shape[0] != b or dense.shape[-1] != k:
            raise ValueError(
                f"dense must be (B, N*N, K) = ({b}, N*N, {k}), got {tuple(dense.shape)}"
            )
        crops = dense.shape[1]
        crop_logits = crop_logits.reshape(b, crops, k)
        soft_sum = soft_target_cross_entropy(crop_logits, dense).sum()  # over B * N*N crops
    per = b * (1 + crops) if reduction == "mean" else b  # the samples, or the images
    hard, soft = hard_ce.sum() / per, soft_sum / per
    return LADDLossOutput(hard + soft, hard, soft)


class LADDLoss(nn.Module):
    """`ladd_loss` as a module: `LADDLoss(reduction="image_sum")(logits, labels, crop_logits,
    dense)` returns a LADDLossOutput (loss, hard, soft).

    Examples:
        >>> import torch
        >>> from ladd import LADDLoss
        >>> criterion = LADDLoss()
        >>> out = criterion(torch.zeros(4, 10), torch.arange(4))
        >>> round(out.loss.item(), 4), out.soft.item()  # no crops: the plain cross-entropy
        (2.3026, 0.0)
    """

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")
        self.reduction: Reduction = reduction

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        crop_logits: torch.Tensor | None = None,
        dense: torch.Tensor | None = None,
    ) -> LADDLossOutput:
        return ladd_loss(logits, labels, crop_logits, dense, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
