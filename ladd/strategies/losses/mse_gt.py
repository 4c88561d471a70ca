"""EDC's "mse_gt" loss (shaoshitong/EDC, e.g. Branch_CIFAR_10/train/train_FKD.py):

    mse(z, t) + ce_weight * cross_entropy(z, y),   ce_weight = 0.025 (every branch's train.sh)

with z the student's logits, t the teacher's logits (here: log p centred per row,
ladd.strategies.base.teacher_logits), y the image's class. F.mse_loss averages over the
classes and the batch: per sample, the mean over K of the squared differences.
"""

from __future__ import annotations

import torch.nn.functional as F

from ladd.strategies.base import DenseLoss, StrategyError, teacher_logits
from ladd.strategies.losses import LOSSES


@LOSSES.register
class MSEGT(DenseLoss):
    """Spec "mse_gt" (CE weight 0.025, EDC's); "mse_gt:ce=0.1"."""

    name = "mse_gt"
    positional = ("ce",)

    def __init__(self, ce: float = 0.025) -> None:
        self.ce_weight = float(ce)
        if not self.ce_weight >= 0:
            raise StrategyError(f"mse_gt's CE weight must be >= 0, got {ce}")

    @property
    def params(self):
        return {"ce": self.ce_weight}

    def per_sample(self, logits, probs, classes, temperature=None, student_temperature=None):
        z = logits.float()
        mse = (z - teacher_logits(probs)).pow(2).mean(-1)
        ce = F.cross_entropy(z.flatten(0, -2), classes.reshape(-1).long(), reduction="none")
        return mse + self.ce_weight * ce.view(classes.shape)
