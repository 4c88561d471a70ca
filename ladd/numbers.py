"""Numeric options checked before any work: a learning rate of inf or nan passes a "> 0" test
and then poisons every weight, so every config that takes a rate, a momentum or a decay asks
`require_finite` in its `__post_init__`."""

from __future__ import annotations

import math

__all__ = ["require_finite"]


def require_finite(name: str, value: float | None, *, positive: bool = False) -> None:
    """Raise a one-line ValueError unless `value` is a finite number >= 0 (> 0 when
    `positive`); None passes (an option left to a default rule)."""
    if value is None:
        return
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        need = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {need}, got {value}")
