"""Dense-label codecs: one base class, a registry, spec strings.

A codec turns dense labels (probabilities [M, N*N, K]) into a payload: a dict of named tensors
whose leading dims are (M, N*N), plus JSON-able parameters; `decode` gives float32 probabilities
back. A spec string names a codec and its options: "float16", "int8:affine", "topk:5,uint8".
Each codec states its error (`max_abs_error`, on one probability) and counts its payload bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

Payload = dict[str, torch.Tensor]


class CodecError(ValueError):
    """A codec spec that cannot be parsed, or a payload that does not decode (one line)."""


@dataclass(frozen=True)
class TensorSpec:
    """What one payload tensor must be: its dtypes and its trailing shape (after (M, N*N))."""

    dtypes: tuple[torch.dtype, ...]
    tail: tuple[int, ...]


class Codec(ABC):
    """One dense-label encoding. Subclasses set `name` and implement encode/decode_rows.

    Examples:
        >>> import torch
        >>> from ladd import Codec, parse_codec
        >>> codec = parse_codec("topk:2,uint8")
        >>> isinstance(codec, Codec), codec.bytes_per_crop(10)  # 2 uint8 indices + 2 uint8 values
        (True, 4)
        >>> probs = torch.tensor([[[0.7, 0.2, 0.1]]])  # (M, N*N, K)
        >>> codec.decode(codec.encode(probs), 3).round(decimals=2)
        tensor([[[0.7000, 0.2000, 0.1000]]])
    """

    name: str = ""

    @property
    def params(self) -> dict[str, Any]:
        """The options that, with `name`, rebuild this codec (recorded in the file)."""
        return {}

    @property
    def spec(self) -> str:
        """The spec string of this codec (parse_codec(spec) rebuilds it)."""
        return self.name

    @abstractmethod
    def encode(self, probs: torch.Tensor) -> Payload:
        """probs (M, N*N, K) float -> payload tensors with leading dims (M, N*N)."""

    @abstractmethod
    def decode_rows(self, payload: Payload, num_classes: int) -> torch.Tensor:
        """Payload tensors with any leading dims (...) -> float32 probabilities (..., K)."""

    @abstractmethod
    def layout(self, num_classes: int) -> dict[str, TensorSpec]:
        """The payload tensors this codec writes, for checking a file's."""

    def max_abs_error(self, num_classes: int) -> float:
        """A bound on |decode(encode(p)) - p| for one probability (0 for lossless)."""
        return 0.0

    def decode(self, payload: Payload, num_classes: int) -> torch.Tensor:
        """Payload -> float32 probabilities (M, N*N, K); checks the payload first."""
        self.check(payload, num_classes)
        return self.decode_rows(payload, num_classes)

    def gather(self, payload: Payload, rows: torch.Tensor, num_crops: int) -> Payload:
        """The payload of flat crop rows `rows` (any shape; row = image * N*N + crop)."""
        return {k: v.flatten(0, 1)[rows] for k, v in payload.items()}

    def nbytes(self, payload: Payload) -> int:
        """Raw bytes of a payload (what the file stores for the dense labels)."""
        return sum(t.numel() * t.element_size() for t in payload.values())

    def bytes_per_crop(self, num_classes: int) -> int:
        """Raw payload bytes per crop at K classes."""
        total = 0
        for spec in self.layout(num_classes).values():
            size = torch.empty((), dtype=spec.dtypes[0]).element_size()
            total += size * int(torch.tensor(spec.tail).prod()) if spec.tail else size
        return total

    def check(self, payload: Payload, num_classes: int) -> None:
        """Raise CodecError (one line) on a payload of the wrong names, dtypes or shapes."""
        want = self.layout(num_classes)
        if set(payload) != set(want):
            raise CodecError(
                f"{self.spec} labels need tensors {sorted(want)}, the file has {sorted(payload)}"
            )
        lead: tuple[int, ...] | None = None
        for key, spec in want.items():
            t = payload[key]
            if t.dtype not in spec.dtypes:
                names = "/".join(str(d).replace("torch.", "") for d in spec.dtypes)
                raise CodecError(f"{self.spec} labels: {key} must be {names}, got {t.dtype}")
            if t.dim() != 2 + len(spec.tail) or tuple(t.shape[2:]) != spec.tail:
                raise CodecError(
                    f"{self.spec} labels: {key} must be (M, N*N, {', '.join(map(str, spec.tail))})"
                    f", got {tuple(t.shape)}".replace(", )", ")")
                )
            if lead is None:
                lead = tuple(t.shape[:2])
            elif tuple(t.shape[:2]) != lead:
                raise CodecError(f"{self.spec} labels: {key} is {tuple(t.shape)}, not {lead}")
            if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t.float()).all()):
                raise CodecError(f"{self.spec} labels: {key} contains NaN or Inf")
        self.check_values(payload, num_classes)

    def check_values(self, payload: Payload, num_classes: int) -> None:
        """Codec-specific value checks (index ranges, signs); CodecError when bad."""
        return None


_CODECS: dict[str, type[Codec]] = {}


def register_codec(cls: type[Codec]) -> type[Codec]:
    """Class decorator: make a codec buildable by its name."""
    if not cls.name or cls.name in _CODECS:
        raise ValueError(f"codec name {cls.name!r} is empty or taken")
    _CODECS[cls.name] = cls
    return cls


def codec_names() -> tuple[str, ...]:
    return tuple(_CODECS)


def build_codec(name: str, params: dict[str, Any] | None = None) -> Codec:
    """A codec from its recorded name and parameters (CodecError when unknown or bad)."""
    cls = _CODECS.get(name)
    if cls is None:
        raise CodecError(f"unknown label codec {name!r}; known: {', '.join(_CODECS)}")
    try:
        return cls(**(params or {}))
    except TypeError as e:
        raise CodecError(f"codec {name}: bad parameters {params} ({e})") from None


def parse_codec(spec: str | Codec) -> Codec:
    """A codec from a spec string: NAME[:OPT,OPT,...], e.g. "topk:5,uint8", "int8:log".

    Examples:
        >>> from ladd import parse_codec
        >>> parse_codec("topk:5,uint8").spec
        'topk:5,uint8,uniform'
        >>> parse_codec("fp16").name
        'float16'
    """
    if isinstance(spec, Codec):
        return spec
    text = str(spec).strip().lower()
    name, _, opts = text.partition(":")
    aliases = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
    name = aliases.get(name, name)
    cls = _CODECS.get(name)
    if cls is None:
        raise CodecError(f"unknown label codec {spec!r}; known: {', '.join(_CODECS)}")
    options = [o.strip() for o in opts.split(",") if o.strip()] if opts else []
    return cls.from_options(options)  # type: ignore[attr-defined]


def _no_options(cls: type[Codec], options: list[str]) -> Codec:
    if options:
        raise CodecError(f"codec {cls.name} takes no options, got {','.join(options)}")
    return cls()
