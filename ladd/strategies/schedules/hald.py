"""HALD's phases of soft and hard labels (Jiacheng8/HALD, validate/train_fkd.py).

HALD trains `soft_epochs` passes on the soft labels and `hard_epochs` on the images' hard
labels, in an order its --setting names; its ImageNet-1K script trains 150 + 150 epochs
(validate/scripts/imagenet1k/train.sh: soft_epochs=150, hard_epochs = 300 - soft_epochs) in
its default setting S6: soft_epochs // 2 soft, then hard_epochs hard, then the rest soft. S8
is soft then hard. The hard passes use timm's Mixup with label smoothing 0.8 (its
--label-smoothing default; CutMix is left out here: every protocol's own augmentation runs).

Here the split scales to the run: soft = passes // 2 (150 of 300), hard = passes - soft. In a
hard pass every sample (full image or crop) trains on its image's class smoothed by 0.8 with
timm's rule (ladd.strategies.base.smooth_one_hot); in a soft pass LADD's labels and the dense
loss.
"""

from __future__ import annotations

from ladd.strategies.base import Schedule, _fraction
from ladd.strategies.schedules import SCHEDULES

HALD_SMOOTHING = 0.8  # validate/train_fkd.py --label-smoothing default, passed to Mixup


def hald_phases(passes: int, order: str) -> list[tuple[str, int]]:
    """[(phase, passes)] of a run: S6 ("soft_hard_soft") or S8 ("soft_hard")."""
    soft = passes // 2
    hard = passes - soft
    if order == "soft_hard_soft":
        return [("soft", soft // 2), ("hard", hard), ("soft", soft - soft // 2)]
    return [("soft", soft), ("hard", hard)]


class _Phases(Schedule):
    order = ""

    def __init__(self, smoothing: float = HALD_SMOOTHING) -> None:
        self.hard_smoothing = _fraction("hard-label smoothing", smoothing)

    @property
    def params(self):
        if self.hard_smoothing == HALD_SMOOTHING:
            return {}
        return {"smoothing": self.hard_smoothing}

    def phase(self, p: int, passes: int) -> str:
        start = 0
        for kind, length in hald_phases(passes, self.order):
            if start <= p < start + length:
                return kind
            start += length
        return "soft"


@SCHEDULES.register
class HALD(_Phases):
    """HALD's default setting S6: soft, hard, soft (1/4, 1/2, 1/4 of the passes)."""

    name = "hald"
    order = "soft_hard_soft"


@SCHEDULES.register
class SoftHard(_Phases):
    """HALD's setting S8: the first half soft, the second half hard."""

    name = "soft_hard"
    order = "soft_hard"
