"""KL divergence at a temperature, the loss of SRe2L / FKD and the methods that follow it.

    KL(softmax(t / T) || softmax(z / T_s)),  summed over classes, batch-mean

with t the teacher's logits (here log p of the stored label: softmax(log p / T) is exactly
softmax(t / T), the row constant cancels) and T_s the student's temperature (T unless a
calibrated schedule fits it). Not multiplied by T^2: SRe2L's validation leaves that line
commented out, and LPQLD scales by T^2 only on Tiny-ImageNet. Default T = 20, the value
SRe2L's validation script and GIFT's loss benchmark use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ladd.strategies.base import PROB_FLOOR, DenseLoss, _positive
from ladd.strategies.losses import LOSSES


@LOSSES.register
class KL(DenseLoss):
    """KL at temperature `t` (spec "kl:20"); `scaled=true` multiplies by T^2 (Hinton's KD)."""

    name = "kl"
    uses_temperature = True
    positional = ("t",)

    def __init__(self, t: float = 20.0, scaled: bool = False) -> None:
        self.temperature = _positive("kl temperature", t)
        self.scaled = bool(scaled)

    @property
    def params(self):
        out = {"t": self.temperature}
        if self.scaled:
            out["scaled"] = True
        return out

    def per_sample(self, logits, probs, classes, temperature=None, student_temperature=None):
        t = temperature if temperature is not None else torch.tensor(self.temperature)
        ts = student_temperature if student_temperature is not None else t
        t = t.to(logits.device).unsqueeze(-1)  # broadcasts over (..., B, K)
        ts = ts.to(logits.device).unsqueeze(-1)
        logp = probs.float().clamp_min(PROB_FLOOR).log()
        q = torch.softmax(logp / t, dim=-1)  # the teacher at T
        log_s = F.log_softmax(logits.float() / ts, dim=-1)  # the student at T_s
        kl = (q * (q.clamp_min(1e-30).log() - log_s)).sum(-1)
        return kl * (t.squeeze(-1) ** 2) if self.scaled else kl
