"""Dense losses, one file each, registered in LOSSES (ladd.strategies.base.DenseLoss)."""

from ladd.strategies.base import DenseLoss, Registry

LOSSES: Registry[DenseLoss] = Registry("label loss")

from ladd.strategies.losses import gift, kl, mse_gt, soft_ce  # noqa: E402,F401  (registers)

__all__ = ["LOSSES"]
