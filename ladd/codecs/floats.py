"""Lossless-ish float codecs: float32 (exact), float16, bfloat16 (one rounding each)."""

from __future__ import annotations

import torch

from ladd.codecs.base import Codec, CodecError, Payload, TensorSpec, _no_options, register_codec


class _FloatCodec(Codec):
    dtype: torch.dtype = torch.float32
    eps: float = 0.0  # unit roundoff of `dtype` (relative error of one rounding)

    @classmethod
    def from_options(cls, options: list[str]) -> Codec:
        return _no_options(cls, options)

    def encode(self, probs: torch.Tensor) -> Payload:
        return {"probs": probs.detach().to(self.dtype).contiguous()}

    def decode_rows(self, payload: Payload, num_classes: int) -> torch.Tensor:
        return payload["probs"].float()

    def layout(self, num_classes: int) -> dict[str, TensorSpec]:
        return {"probs": TensorSpec((self.dtype,), (num_classes,))}

    def max_abs_error(self, num_classes: int) -> float:
        return self.eps  # a probability is <= 1, so relative error bounds absolute

    def check_values(self, payload: Payload, num_classes: int) -> None:
        p = payload["probs"]
        if p.numel() and float(p.float().min()) < -1e-4:
            raise CodecError(f"{self.spec} labels: negative probabilities")


@register_codec
class Float32Codec(_FloatCodec):
    """float32 probabilities as they are: exact."""

    name = "float32"
    dtype = torch.float32


@register_codec
class Float16Codec(_FloatCodec):
    """float16 probabilities: 2 bytes each, relative error <= 2^-11."""

    name = "float16"
    dtype = torch.float16
    eps = 2.0**-11


@register_codec
class BFloat16Codec(_FloatCodec):
    """bfloat16 probabilities: 2 bytes each, relative error <= 2^-8 (float32's range)."""

    name = "bfloat16"
    dtype = torch.bfloat16
    eps = 2.0**-8
