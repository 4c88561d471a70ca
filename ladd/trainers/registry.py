"""The trainer registry: names -> training engines. Imports no engine (they register themselves
through ladd.trainers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_TRAINERS: dict[str, Callable[..., Any]] = {}


def register_trainer(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register `f(data, spec, cfg, *, lr, device, hooks) -> TrainedModels` (hooks: a
    ladd.trainers.loop.TrainHooks; the trainer runs ladd.trainers.loop.fit with its engine)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _TRAINERS and _TRAINERS[name] is not fn:
            raise ValueError(f"trainer {name!r} registered twice")
        _TRAINERS[name] = fn
        return fn

    return wrap


def get_trainer(name: str) -> Callable[..., Any]:
    """The trainer called `name` (ValueError naming the registered ones when unknown)."""
    try:
        return _TRAINERS[name]
    except KeyError:
        raise ValueError(
            f"unknown trainer {name!r}; use one of {', '.join(sorted(_TRAINERS))}"
        ) from None


def list_trainers() -> list[str]:
    """Registered trainer names, sorted."""
    return sorted(_TRAINERS)
