"""GIFT's loss (LINs-lab/GIFT, validate/losses_benchmark.py `compute_loss`, criterion "gift"):
one minus the cosine similarity between the student's logits and

    normalize(t) + 0.1 * normalize(smooth(y, alpha = 0.1))

where t is the teacher's output, smooth gives the true class 1 - alpha and every other class
alpha / (K - 1), and normalize is the L2 norm per row. GIFT's teacher gives logits online;
a label-augmented set stores probabilities, so t here is the teacher's logits as far as they
tell (ladd.strategies.base.teacher_logits: log p centred per row).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ladd.strategies.base import DenseLoss, _fraction, teacher_logits
from ladd.strategies.losses import LOSSES


def gift_smoothing(classes: torch.Tensor, num_classes: int, alpha: float) -> torch.Tensor:
    """GIFT's `batch_label_smoothing`: alpha / (K - 1) off the class, 1 - alpha on it."""
    out = torch.full(
        (*classes.shape, num_classes), alpha / (num_classes - 1), device=classes.device
    )
    return out.scatter_(-1, classes.unsqueeze(-1).long(), 1.0 - alpha)


@LOSSES.register
class GIFT(DenseLoss):
    """Spec "gift" (alpha 0.1, weight 0.1: GIFT's constants); "gift:alpha=0.2,weight=0.5"."""

    name = "gift"

    def __init__(self, alpha: float = 0.1, weight: float = 0.1) -> None:
        self.alpha = _fraction("gift alpha", alpha)
        self.weight = float(weight)

    @property
    def params(self):
        return {"alpha": self.alpha, "weight": self.weight}

    def per_sample(self, logits, probs, classes, temperature=None, student_temperature=None):
        k = logits.shape[-1]
        teacher = F.normalize(teacher_logits(probs), dim=-1)
        smooth = F.normalize(gift_smoothing(classes, k, self.alpha), dim=-1)
        target = teacher + self.weight * smooth
        return 1.0 - F.cosine_similarity(logits.float(), target, dim=-1)
