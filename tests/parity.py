"""Helpers the engine-parity tests share (not a test module)."""

from __future__ import annotations

import torch

NORMS = (torch.nn.GroupNorm, torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d, torch.nn.LayerNorm)


def normed_conv_biases(model: torch.nn.Module) -> set[str]:
    """Names of the conv biases a norm layer follows directly (the norm subtracts them)."""
    out = set()
    for prefix, module in model.named_modules():
        if isinstance(module, torch.nn.Sequential):
            kids = list(module.named_children())
            for (name, a), (_, b) in zip(kids, kids[1:], strict=False):
                if isinstance(a, torch.nn.Conv2d) and a.bias is not None and isinstance(b, NORMS):
                    out.add(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    return out
