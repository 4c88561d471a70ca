"""Vision transformer of the GLaD cross-architecture set, built as GLaD's code builds it.

GLaD (`networks/vit.py`, `networks/vit_cifar.py`, constructor arguments in `utils.get_network`)
adapts lucidrains' vit-pytorch. What sets its ViT apart from a textbook one, and is kept here:
- the 128 px "ViT" has NO LayerNorm at all (its PreNorm and head norms are commented out); the
  32 px "ViTCIFAR" keeps a pre-norm in every residual branch and one before the head;
- class token and position embeddings drawn from randn (std 1), not zeros or std 0.02;
- qkv projection without bias, heads of dim_head 64 whatever the width, softmax(q k^T / 8) v with
  no dropout on the attention weights; dropout after the output projection, inside the MLP and
  on the embeddings (emb_dropout);
- patches embedded by a Linear on each patch flattened row by row with channels last (p1 p2 c);
- the class token (cls pooling) feeds the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ladd.models.registry import register_model, small_variant


@dataclass(frozen=True)
class ViTConfig:
    """One ViT build; GLAD_VIT and GLAD_VIT_CIFAR are GLaD's two."""

    patch: int
    dim: int = 512
    depth: int = 10
    heads: int = 8
    dim_head: int = 64
    mlp: int = 512
    dropout: float = 0.1  # after the attention projection and in the MLP
    emb_dropout: float = 0.1  # on patch tokens + class token + positions
    norms: bool = False  # pre-norm LayerNorms in every branch and before the head


# utils.get_network, model == "ViT" (128 px) and "ViTCIFAR" (32 px); dim_head is the class default.
GLAD_VIT = ViTConfig(patch=16, depth=10, norms=False)
GLAD_VIT_CIFAR = ViTConfig(patch=4, depth=6, norms=True)


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, (H/p)(W/p), p*p*C): patches in raster order, each flattened row by
    row with its channels last, the layout GLaD's Rearrange('b c (h p1) (w p2) -> b (h w)
    (p1 p2 c)') gives."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch, patch, w // patch, patch).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // patch) * (w // patch), patch * patch * c)


class Attention(nn.Module):
    """Multi-head self-attention: softmax(q k^T / sqrt(dim_head)) v, qkv without bias."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.qkv = nn.Linear(dim, inner * 3, bias=False)
        # As GLaD: a single head as wide as the model needs no output projection.
        project = not (heads == 1 and dim_head == dim)
        self.proj: nn.Module = (
            nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout)) if project else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        b, t, _ = x.shape
        # (B, T, 3 * h * d): q, k, v one after another, heads outer, as GLaD's chunk + rearrange.
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        # SDPA's default scale is 1 / sqrt(dim_head), GLaD's `scale`; no attention dropout.
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, h, T, d)
        return self.proj(out.transpose(1, 2).reshape(b, t, self.heads * self.dim_head))


class Block(nn.Module):
    """x + attn(norm1(x)), then x + mlp(norm2(x)); the norms are Identity in GLaD's 128 px ViT."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        # Identity slots keep one GradCAM target (norm1) whether or not the build has norms.
        self.norm1: nn.Module = nn.LayerNorm(cfg.dim) if cfg.norms else nn.Identity()
        self.attn = Attention(cfg.dim, cfg.heads, cfg.dim_head, cfg.dropout)
        self.norm2: nn.Module = nn.LayerNorm(cfg.dim) if cfg.norms else nn.Identity()
        self.mlp = nn.Sequential(
            nn.Linear(cfg.dim, cfg.mlp),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.mlp, cfg.dim),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D)
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, num_classes: int, image_size: int, channels: int, cfg: ViTConfig) -> None:
        super().__init__()
        if image_size % cfg.patch:
            raise ValueError(f"image size {image_size} is not a multiple of patch {cfg.patch}")
        self.cfg = cfg
        self.patch = cfg.patch
        self.grid = image_size // cfg.patch
        self.embed = nn.Linear(channels * cfg.patch * cfg.patch, cfg.dim)
        self.cls = nn.Parameter(torch.randn(1, 1, cfg.dim))
        self.pos = nn.Parameter(torch.randn(1, self.grid * self.grid + 1, cfg.dim))
        self.drop = nn.Dropout(cfg.emb_dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm: nn.Module = nn.LayerNorm(cfg.dim) if cfg.norms else nn.Identity()
        self.head = nn.Linear(cfg.dim, num_classes)

    @property
    def cam_target_layer(self) -> nn.Module:
        # The last block's input as its attention sees it: only through that attention do the
        # patch tokens still reach the class token.
        return self.blocks[-1].norm1

    def cam_reshape(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1 + g*g, D) tokens -> (B, D, g, g) maps, class token dropped."""
        b, _, d = tokens.shape
        return tokens[:, 1:].reshape(b, self.grid, self.grid, d).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, K)
        x = self.embed(patchify(x, self.patch))  # (B, g*g, D)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.drop(x)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, 0]))


_FIELDS = {f.name for f in fields(ViTConfig)}


# GLaD glad_utils.py get_eval_lrs: "ViT" and "ViTCIFAR" 0.001.
@register_model("vit", lr_32=0.001, lr_128=0.001, family="vit", lr_adamw=0.0001)
def vit(num_classes: int, image_size: int, channels: int = 3, **options: Any) -> nn.Module:
    """GLaD's "ViTCIFAR" up to 64 px, its "ViT" above; options override ViTConfig fields.

    `dropout` alone sets emb_dropout too (GLaD gives both the same 0.1), so `dropout=0.0` makes
    the model deterministic in training mode.
    """
    unknown = set(options) - _FIELDS
    if unknown:
        raise ValueError(f"unknown ViT options {sorted(unknown)}; known: {sorted(_FIELDS)}")
    if "dropout" in options and "emb_dropout" not in options:
        options["emb_dropout"] = options["dropout"]
    base = GLAD_VIT_CIFAR if small_variant(image_size) else GLAD_VIT
    return ViT(num_classes, image_size, channels, replace(base, **options))
