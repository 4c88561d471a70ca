"""The stacked engine's tensor pieces (ladd.trainers.stacked): the loss of S stacked models on S
batches under vmap, and the stacking of models into (S, ...) parameters and back."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ladd.strategies import Objective
from ladd.training import soft_cross_entropy

__all__ = [
    "conv_weight_channels_last",
    "grouped_channels_last",
    "stack_models",
    "stacked_loss",
    "unstack_into",
]


# ---------------------------------------------------------------------------------------------
# The step: vmap over stacked parameters


def stacked_loss(
    base: nn.Module,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    bf16: bool = False,
    temperature: float = 1.0,
    objective: Objective | None = None,
    kinds: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed-over-seeds loss and per-seed losses of S stacked models on S batches.

    x (S, B, C, H, W), y (S, B, K) probabilities, weight (S, B) 1 for real samples and 0 for
    padding (None: all real). Each seed's loss is the soft-target cross-entropy averaged over its
    real samples, exactly what the reference computes on that batch; the seeds' parameters are
    disjoint, so the gradient of the sum is each seed's own gradient. With a label strategy's
    `objective` (ladd.strategies), its loss instead, from the samples' `kinds` (classes (S, B),
    soft (S, B)); its learned weights are one pair per seed, so the same holds.
    """
    from torch.func import functional_call, vmap

    def one(p, b, xs):
        return functional_call(base, (p, b), (xs,))

    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = vmap(one, randomness="different")(params, buffers, x)  # (S, B, K)
    if objective is None:
        per_seed = soft_cross_entropy(logits, y, weight, temperature)  # (S,)
    else:
        assert kinds is not None
        per_seed = objective(logits, y, kinds[0], kinds[1], weight)  # (S,)
    return per_seed.sum(), per_seed.detach()


# ---------------------------------------------------------------------------------------------
# Stacking


def grouped_channels_last(x5: torch.Tensor) -> torch.Tensor:
    """(S, B, C, H, W) with memory (B, H, W, S, C): what vmap's grouped convolution turns into an
    NHWC (B, S*C, H, W) input without a copy."""
    return x5.permute(1, 3, 4, 0, 2).contiguous().permute(3, 0, 4, 1, 2)


def conv_weight_channels_last(w: torch.Tensor) -> torch.Tensor:
    """Stacked conv weight (S, O, I, kh, kw) stored as (S, O, kh, kw, I): each seed's weight, and
    the grouped (S*O, I, kh, kw) view vmap makes of them, are channels-last."""
    return w.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


def stack_models(
    models: list[nn.Module], *, channels_last: bool = False
) -> tuple[nn.Module, dict, dict]:
    """S models of one architecture as one meta-device module and their stacked (S, ...)
    parameters (fresh leaves) and buffers, conv weights channels-last when asked."""
    from torch.func import stack_module_state

    params, buffers = stack_module_state(models)
    out = {}
    for k, v in params.items():
        v = v.detach().clone()
        if channels_last and v.dim() == 5:  # stacked conv weights
            v = conv_weight_channels_last(v)
        out[k] = nn.Parameter(v)
    base = copy.deepcopy(models[0]).to("meta")
    return base, out, buffers


def unstack_into(models: list[nn.Module], params: dict, buffers: dict) -> None:
    """Copy each seed's slice of the stacked parameters and buffers back into its model."""
    with torch.no_grad():
        for s, model in enumerate(models):
            for name, t in model.named_parameters():
                t.copy_(params[name][s])
            for name, t in model.named_buffers():
                if name in buffers:
                    t.copy_(buffers[name][s])
