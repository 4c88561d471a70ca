"""Vision transformer of the GLaD cross-architecture set (REFERENCE.md section 3).

128 px: patch 16, dim 512, depth 10, 8 heads, MLP 512, dropout 0.1.  32 px: patch 4, depth 6.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ladd.models.registry import register_model


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D)
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=p)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(
        self,
        num_classes: int,
        image_size: int,
        channels: int = 3,
        patch: int | None = None,
        dim: int = 512,
        depth: int | None = None,
        heads: int = 8,
        mlp: int = 512,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        small = image_size <= 64
        self.patch = patch or (4 if small else 16)
        depth = depth or (6 if small else 10)
        if image_size % self.patch:
            raise ValueError(f"image size {image_size} is not a multiple of patch {self.patch}")
        self.grid = image_size // self.patch
        self.embed = nn.Conv2d(channels, dim, self.patch, self.patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, self.grid * self.grid + 1, dim) * 0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    @property
    def cam_target_layer(self) -> nn.Module:
        return self.blocks[-1].norm1

    def cam_reshape(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1 + g*g, D) tokens -> (B, D, g, g) maps, class token dropped."""
        b, _, d = tokens.shape
        return tokens[:, 1:].reshape(b, self.grid, self.grid, d).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)  # (B, g*g, D)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.drop(x)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, 0]))


@register_model("vit", lr_32=0.001, lr_128=0.001, family="vit")
def vit(num_classes: int, image_size: int, channels: int = 3, **options) -> nn.Module:
    return ViT(num_classes, image_size, channels, **options)
