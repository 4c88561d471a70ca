"""8-bit codecs: per-crop affine quantisation of probabilities, or of log-probabilities.

"int8:affine": per crop, lo = min p and a step s = (max p - lo) / 255 (both float16); codes
q in 0..255 with p ~ lo + q s. Codes are rounded by largest remainder so a crop's decoded row
sums to 1 within s / 2 (plain rounding lets K rounding errors add up: at K = 1000 the row sum
would drift by ~0.04). Error <= 1.5 s + float16 slack <= 2 / 255 per probability.

"int8:log": the same quantisation of log p (p floored at 1e-12), decoded by exp and renormalised:
a relative error <= exp(s / 2) - 1 per probability before renormalisation, so small
probabilities keep their digits; the absolute error bound is looser than affine's.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ladd.codecs.base import Codec, CodecError, Payload, TensorSpec, register_codec

LOG_FLOOR = 1e-12
_LEVELS = 255


def _step16(span: torch.Tensor) -> torch.Tensor:
    """A float16 step s with 255 s >= span (rounded up, never 0)."""
    s = (span / _LEVELS).to(torch.float16)
    short = s.float() * _LEVELS < span
    s = torch.where(short, torch.nextafter(s, torch.full_like(s, math.inf)), s)
    return s.clamp_min(2.0**-24)


@register_codec
class Int8Codec(Codec):
    """One byte per probability plus a float16 offset and step per crop."""

    name = "int8"

    def __init__(self, mode: str = "affine") -> None:
        if mode not in ("affine", "log"):
            raise CodecError(f"int8 mode must be affine or log, got {mode!r}")
        self.mode = mode

    @classmethod
    def from_options(cls, options: list[str]) -> Codec:
        if len(options) > 1:
            raise CodecError(f"int8 takes one option (affine or log), got {','.join(options)}")
        return cls(options[0] if options else "affine")

    @property
    def params(self) -> dict[str, Any]:
        return {"mode": self.mode}

    @property
    def spec(self) -> str:
        return f"int8:{self.mode}"

    def layout(self, num_classes: int) -> dict[str, TensorSpec]:
        return {
            "codes": TensorSpec((torch.uint8,), (num_classes,)),
            "lo": TensorSpec((torch.float16,), ()),
            "step": TensorSpec((torch.float16,), ()),
        }

    def max_abs_error(self, num_classes: int) -> float:
        if self.mode == "affine":
            return 2.0 / _LEVELS
        eps = math.exp(0.5 * (-math.log(LOG_FLOOR) / _LEVELS) * (1 + 2**-10)) - 1
        return (1 + eps) / (1 - eps) - 1 + LOG_FLOOR  # relative, so absolute too (p <= 1)

    def encode(self, probs: torch.Tensor) -> Payload:
        p = probs.detach().float()  # (M, n*n, K)
        x = p.clamp_min(LOG_FLOOR).log() if self.mode == "log" else p
        lo = x.amin(-1).to(torch.float16)  # (M, n*n)
        lo = torch.where(
            lo.float() > x.amin(-1), torch.nextafter(lo, torch.full_like(lo, -1e4)), lo
        )
        step = _step16(x.amax(-1) - lo.float())
        u = ((x - lo.float()[..., None]) / step.float()[..., None]).clamp(0, _LEVELS)
        if self.mode == "log":
            codes = u.round()
        else:  # largest remainder: the decoded row sums to 1 within step / 2
            fl = u.floor()
            k = p.shape[-1]
            want = (1 - k * lo.float()) / step.float() - fl.sum(-1)  # units still to hand out
            n_up = want.round().clamp(0, k)
            rank = (-(u - fl)).argsort(-1).argsort(-1)  # 0 = largest remainder
            codes = (fl + (rank < n_up[..., None]).float()).clamp(0, _LEVELS)
        return {"codes": codes.to(torch.uint8), "lo": lo, "step": step}

    def decode_rows(self, payload: Payload, num_classes: int) -> torch.Tensor:
        lo = payload["lo"].float()[..., None]
        x = lo + payload["codes"].float() * payload["step"].float()[..., None]
        p = x.exp() if self.mode == "log" else x.clamp_min(0)
        return p / p.sum(-1, keepdim=True).clamp_min(1e-12)

    def check_values(self, payload: Payload, num_classes: int) -> None:
        if payload["step"].numel() and float(payload["step"].float().min()) <= 0:
            raise CodecError(f"{self.spec} labels: step must be positive")
        lo = payload["lo"].float()
        if self.mode == "affine" and lo.numel() and float(lo.min()) < -1e-3:
            raise CodecError(f"{self.spec} labels: negative offsets")
        if self.mode == "log" and lo.numel() and float(lo.max()) > 1e-2:
            raise CodecError(f"{self.spec} labels: log-probability offsets above 0")
