"""The balance between LADD's two terms: the hard-labelled samples' and the dense-labelled ones'.

"fixed": Eq. 5, both terms weigh 1 (the batch mean of every sample's loss).

"learned" (the paper's future work: "learning a weight parameter"): uncertainty weighting
(Kendall, Gal and Cipolla, CVPR 2018) with one log-weight per term and per seed, s_h and s_d,
trained by the run's optimiser with the model (no weight decay on them):

    loss = (exp(-s_h) * H + exp(-s_d) * D) / B  +  f_h * s_h + f_d * s_d

where H and D are the sums of the hard and dense samples' losses over the batch's B real
samples and f_h, f_d their shares of the batch. At s = 0 it is Eq. 5's loss; its minimum over
s_h alone is at exp(-s_h) = 1 / (H / (f_h B)): each term is weighed by the inverse of its own
mean loss, so neither term can win by shrinking the other's weight to 0 (a convex weight
lambda * H + (1 - lambda) * D would simply drift to the smaller term).
"""

from __future__ import annotations

BALANCES: tuple[str, ...] = ("fixed", "learned")

__all__ = ["BALANCES"]
