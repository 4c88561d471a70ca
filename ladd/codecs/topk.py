"""Top-k codec: each crop keeps its k largest probabilities and their class indices.

"topk:K[,uint8|float16][,uniform|renorm]". Indices in the smallest integer type holding the
number of classes (uint8 up to 256 classes; 16-bit up to 65536, stored as int16 and read as
unsigned; int32 beyond). Values as float16 (relative error 2^-11) or uint8 (round(p * 255),
absolute error <= 1/510). The mass left out (1 - sum of kept values) is either spread
uniformly over the K - k other classes ("uniform", the default: rows keep summing to 1, the
argmax and every kept value stay as stored, and no class gets probability 0, so KL(p || q)
stays finite) or dropped by renormalising the kept values ("renorm").
"""

from __future__ import annotations

from typing import Any

import torch

from ladd.codecs.base import Codec, CodecError, Payload, TensorSpec, register_codec


def index_dtype(num_classes: int) -> torch.dtype:
    """The smallest integer dtype the file stores class indices in."""
    if num_classes <= 256:
        return torch.uint8
    if num_classes <= 65536:
        return torch.int16  # read as unsigned 16 bit
    return torch.int32


def _indices(t: torch.Tensor) -> torch.Tensor:
    """Stored indices -> int64 (16-bit ones read as unsigned)."""
    i = t.long()
    return i & 0xFFFF if t.dtype == torch.int16 else i


@register_codec
class TopKCodec(Codec):
    """k (index, value) pairs per crop."""

    name = "topk"

    def __init__(self, k: int = 5, values: str = "float16", residual: str = "uniform") -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise CodecError(f"topk needs k >= 1, got {k!r}")
        if values not in ("float16", "uint8"):
            raise CodecError(f"topk values must be float16 or uint8, got {values!r}")
        if residual not in ("uniform", "renorm"):
            raise CodecError(f"topk residual must be uniform or renorm, got {residual!r}")
        self.k, self.values, self.residual = k, values, residual

    @classmethod
    def from_options(cls, options: list[str]) -> Codec:
        kw: dict[str, Any] = {}
        for o in options:
            if o.isdigit():
                kw["k"] = int(o)
            elif o in ("float16", "fp16", "uint8"):
                kw["values"] = "float16" if o == "fp16" else o
            elif o in ("uniform", "renorm"):
                kw["residual"] = o
            else:
                raise CodecError(
                    f"topk option {o!r}: use a number k, float16|uint8 and uniform|renorm"
                )
        return cls(**kw)

    @property
    def params(self) -> dict[str, Any]:
        return {"k": self.k, "values": self.values, "residual": self.residual}

    @property
    def spec(self) -> str:
        return f"topk:{self.k},{self.values},{self.residual}"

    def kept(self, num_classes: int) -> int:
        return min(self.k, num_classes)

    def layout(self, num_classes: int) -> dict[str, TensorSpec]:
        k = self.kept(num_classes)
        vals = torch.uint8 if self.values == "uint8" else torch.float16
        return {
            "index": TensorSpec((index_dtype(num_classes),), (k,)),
            "value": TensorSpec((vals,), (k,)),
        }

    def max_abs_error(self, num_classes: int) -> float:
        k = self.kept(num_classes)
        quant = 1 / 510 if self.values == "uint8" else 2.0**-11
        if k == num_classes:
            return quant * (1 + num_classes) if self.residual == "renorm" else quant
        if self.residual == "uniform":  # a dropped p and the share it gets are both <= 1 / k
            return 1.0 / k + quant
        return 1.0 - k / num_classes + quant  # the kept mass is >= k / K

    def encode(self, probs: torch.Tensor) -> Payload:
        p = probs.detach().float()  # (M, n*n, K)
        k = self.kept(p.shape[-1])
        val, idx = p.topk(k, dim=-1, sorted=True)  # (M, n*n, k)
        if self.values == "uint8":
            v = (val * 255).round().clamp(0, 255).to(torch.uint8)
        else:
            v = val.to(torch.float16)
        return {"index": idx.to(index_dtype(p.shape[-1])), "value": v}

    def decode_rows(self, payload: Payload, num_classes: int) -> torch.Tensor:
        idx = _indices(payload["index"])  # (..., k)
        v = payload["value"].float()
        if payload["value"].dtype == torch.uint8:
            v = v / 255
        k = idx.shape[-1]
        kept = v.sum(-1, keepdim=True)  # (..., 1)
        if self.residual == "renorm" or k == num_classes:
            fill = torch.zeros_like(kept)
            v = v / kept.clamp_min(1e-12)
        else:
            fill = (1 - kept).clamp_min(0) / (num_classes - k)
            v = torch.where(kept > 1, v / kept, v)
        out = fill.expand(*idx.shape[:-1], num_classes).contiguous()
        return out.scatter(-1, idx, v)

    def check_values(self, payload: Payload, num_classes: int) -> None:
        idx = _indices(payload["index"])
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
            raise CodecError(f"{self.spec} labels: class index out of range 0..{num_classes - 1}")
        v = payload["value"].float()
        if v.numel() and float(v.min()) < 0:
            raise CodecError(f"{self.spec} labels: negative values")
        if idx.numel() and idx.shape[-1] > 1:
            s = idx.sort(-1).values
            if bool((s[..., 1:] == s[..., :-1]).any()):
                raise CodecError(f"{self.spec} labels: a class index repeats within a crop")
