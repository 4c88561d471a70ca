"""Layouts of S stacked models beyond vmap: seeds along the batch axis, and channels-last memory.

The fast trainer (ladd.trainers.fast) trains S seeds in one step over stacked (S, ...)
parameters. With vmap ("grouped" layout) the seeds sit along the channel axis: every
convolution becomes a grouped convolution, whose cuDNN kernels were 57 % of the compiled step's
GPU time on an H200 (docs/benchmarks.md). The "dense" layout here lays the seeds end to end
along the batch axis instead, (S*B, C, H, W): each weight layer applies seed s's slice of the
stacked parameters to seed s's samples (S dense convolutions, one batched matrix product), and
every other layer (norm statistics, ReLU, pooling) runs once over all S*B samples. That needs
every parameter in a Conv2d / Linear / GroupNorm / LayerNorm and no BatchNorm (whose batch
statistics would mix seeds): the ConvNets, AlexNet, VGG11 and ResNet18, not the ViT (its class
token and positions are bare parameters). "streams" puts each seed's convolutions on its own
CUDA stream (eager). The channels-last helpers lay out images and stacked weights so that
cuDNN sees NHWC without layout conversions (15-17 % of GPU time in the grouped step).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ladd.training import soft_cross_entropy

__all__ = [
    "conv_weight_channels_last",
    "dense_layout_allowed",
    "grouped_channels_last",
    "seeded_loss",
    "seeded_model",
]


# ---------------------------------------------------------------------------------------------
# Channels-last


def grouped_channels_last(x5: torch.Tensor) -> torch.Tensor:
    """(S, B, C, H, W) with memory (B, H, W, S, C): what vmap's grouped convolution turns into an
    NHWC (B, S*C, H, W) input without a copy."""
    return x5.permute(1, 3, 4, 0, 2).contiguous().permute(3, 0, 4, 1, 2)


def conv_weight_channels_last(w: torch.Tensor) -> torch.Tensor:
    """Stacked conv weight (S, O, I, kh, kw) stored as (S, O, kh, kw, I): each seed's weight, and
    the grouped (S*O, I, kh, kw) view vmap makes of them, are channels-last."""
    return w.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


# ---------------------------------------------------------------------------------------------
# Layouts "dense" / "streams": seeds along the batch axis, weight layers per seed

_SEEDED_TYPES = (nn.Conv2d, nn.Linear, nn.GroupNorm, nn.LayerNorm)


def dense_layout_allowed(model: nn.Module) -> bool:
    """True when every parameter sits in a Conv2d, Linear, GroupNorm or LayerNorm and the model
    has no buffers (no BatchNorm): then S seeds can share the batch axis."""
    if any(True for _ in model.buffers()):
        return False
    for name, mod in model.named_modules():
        if any(True for _ in mod.parameters(recurse=False)):
            if not name or not isinstance(mod, _SEEDED_TYPES):
                return False
            if isinstance(mod, nn.Conv2d) and mod.padding_mode != "zeros":
                return False
    return True


class _SeedLayer(nn.Module):
    """A weight layer holding S seeds' stacked parameters; input (S*B, ...) -> output (S*B, ...)."""

    def __init__(self, seeds: int, params: dict[str, nn.Parameter]) -> None:
        super().__init__()
        self.seeds = seeds
        for name, p in params.items():
            setattr(self, name, p)  # the optimiser's own stacked Parameter objects

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return x.view(self.seeds, -1, *x.shape[1:]).unbind(0)  # S views (B, ...)


class _SeedConv2d(_SeedLayer):
    def __init__(self, conv: nn.Conv2d, seeds: int, params: dict, streams: list | None) -> None:
        super().__init__(seeds, params)
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        self.has_bias = conv.bias is not None
        self.streams = streams

    def _one(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (S*B, C, H, W) -> (S*B, O, H', W')
        xs = self._split(x)
        ws = self.weight.unbind(0)  # one stack in backward, not S scatters
        bs = self.bias.unbind(0) if self.has_bias else (None,) * self.seeds
        if not self.streams or not x.is_cuda:
            return torch.cat([self._one(a, w, b) for a, w, b in zip(xs, ws, bs, strict=True)])
        cur = torch.cuda.current_stream(x.device)
        outs = []
        for a, w, b, st in zip(xs, ws, bs, self.streams, strict=True):
            st.wait_stream(cur)
            with torch.cuda.stream(st):
                outs.append(self._one(a, w, b))
        for st, o in zip(self.streams, outs, strict=True):
            cur.wait_stream(st)
            o.record_stream(cur)  # made on `st`, read on `cur`: keep it until `cur` is done
        return torch.cat(outs)


class _SeedLinear(_SeedLayer):
    def __init__(self, lin: nn.Linear, seeds: int, params: dict) -> None:
        super().__init__(seeds, params)
        self.has_bias = lin.bias is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (S*B, ..., F) -> (S*B, ..., O)
        xs = x.reshape(self.seeds, -1, x.shape[-1])  # (S, B*..., F)
        wt = self.weight.transpose(1, 2)  # (S, F, O)
        out = torch.baddbmm(self.bias.unsqueeze(1), xs, wt) if self.has_bias else xs @ wt
        return out.reshape(*x.shape[:-1], out.shape[-1])


class _SeedGroupNorm(_SeedLayer):
    def __init__(self, gn: nn.GroupNorm, seeds: int, params: dict) -> None:
        super().__init__(seeds, params)
        self.groups, self.eps, self.affine = gn.num_groups, gn.eps, gn.affine

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # per-sample statistics: seeds share them
        y = F.group_norm(x, self.groups, None, None, self.eps)
        if not self.affine:
            return y
        c, rest = x.shape[1], [1] * (x.dim() - 2)
        ys = y.view(self.seeds, -1, *y.shape[1:])  # (S, B, C, ...)
        w = self.weight.view(self.seeds, 1, c, *rest)
        b = self.bias.view(self.seeds, 1, c, *rest)
        return (ys * w + b).reshape(y.shape)


class _SeedLayerNorm(_SeedLayer):
    def __init__(self, ln: nn.LayerNorm, seeds: int, params: dict) -> None:
        super().__init__(seeds, params)
        self.shape, self.eps = tuple(ln.normalized_shape), ln.eps
        self.affine = ln.weight is not None
        self.has_bias = getattr(ln, "bias", None) is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, self.shape, None, None, self.eps)
        if not self.affine:
            return y
        ys = y.reshape(self.seeds, -1, *self.shape)
        ys = ys * self.weight.unsqueeze(1)
        if self.has_bias:
            ys = ys + self.bias.unsqueeze(1)
        return ys.reshape(y.shape)


def seeded_model(
    base: nn.Module,
    params: dict[str, torch.Tensor],
    seeds: int,
    *,
    streams: list | None = None,
) -> nn.Module:
    """A copy of `base` that runs S seeds laid end to end along the batch axis.

    Input (S*B, ...) holds seed 0's batch, then seed 1's, ...; each weight layer applies seed
    s's slice of the stacked `params` (S, ...) to seed s's samples (the tensors themselves are
    shared, so an optimiser over `params` trains this model); every other layer sees one batch of
    S*B samples. Needs `dense_layout_allowed(base)`. `streams`: one CUDA stream per seed for the
    convolutions (eager only).
    """
    if not dense_layout_allowed(base):
        raise ValueError(f"{type(base).__name__} cannot share the batch axis between seeds")
    net = copy.deepcopy(base)
    owners = [
        (name, mod)
        for name, mod in net.named_modules()
        if any(True for _ in mod.parameters(recurse=False))
    ]
    for name, mod in owners:
        own = {k: params[f"{name}.{k}"] for k, _ in mod.named_parameters(recurse=False)}
        if isinstance(mod, nn.Conv2d):
            new: nn.Module = _SeedConv2d(mod, seeds, own, streams)
        elif isinstance(mod, nn.Linear):
            new = _SeedLinear(mod, seeds, own)
        elif isinstance(mod, nn.GroupNorm):
            new = _SeedGroupNorm(mod, seeds, own)
        else:
            new = _SeedLayerNorm(mod, seeds, own)
        parent_name, _, leaf = name.rpartition(".")
        setattr(net.get_submodule(parent_name) if parent_name else net, leaf, new)
    return net


def seeded_loss(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    bf16: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`stacked_loss` for a `seeded_model`: x (S*B, C, H, W), y (S, B, K), weight (S, B)."""
    s, b = y.shape[0], y.shape[1]
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = net(x)  # (S*B, K)
    per_seed = soft_cross_entropy(logits.view(s, b, -1), y, weight)  # (S,)
    return per_seed.sum(), per_seed.detach()
