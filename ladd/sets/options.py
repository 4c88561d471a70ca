"""How to read a set: the user's reading fields turned into `load_set` options, one rule set.

The command line (`--format --source --mean --std --zca --experiment --num-classes`) and the
dashboard's "How to read this set" fields both call `read_options`; each maps
`SetOptionError.field` to its own wording (a flag, a field label), so the two cannot drift on
what makes sense.

    read_options(source="cifar10", mean="0.49,0.48,0.45", std="0.25,0.24,0.26")
    # {'source': 'cifar10', 'mean': (0.49, 0.48, 0.45), 'std': (0.25, 0.24, 0.26)}
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from ladd.sets.base import FORMATS

__all__ = ["SetOptionError", "read_options"]


class SetOptionError(ValueError):
    """A reading field that does not make sense; `field` names it: format, source, mean,
    std, zca, experiment or num_classes (read_options' keywords)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _numbers(value: str | Sequence[float], field: str) -> tuple[float, ...]:
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        out = tuple(float(v) for v in parts if not (isinstance(v, str) and not v.strip()))
    except (TypeError, ValueError):
        raise SetOptionError(
            field, f"{field} must be comma-separated numbers, one per channel (got {value!r})"
        ) from None
    if not out:
        raise SetOptionError(field, f"{field} has no numbers")
    return out


def _blank(value: str | Sequence[float] | None) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_options(
    *,
    format: str | None = None,
    source: str | None = None,
    mean: str | Sequence[float] | None = None,
    std: str | Sequence[float] | None = None,
    zca: bool = False,
    experiment: int | None = None,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """`load_set` keyword options for these reading fields (None or blank: from the files).

    mean and std come together (comma-separated text or numbers); ZCA space needs the source,
    whose train split fits the whitening; experiment is 0-based (None: the file's last);
    num_classes is the class count of a set whose files do not say it (a bare image tensor:
    class-major labels are inferred from it).
    Raises SetOptionError naming the field at fault. The per-channel count and the value checks
    stay with the loader, which knows the images."""
    opts: dict[str, Any] = {}
    if format is not None:
        if format not in FORMATS:
            raise SetOptionError(
                "format", f"unknown format {format!r}: use one of {', '.join(FORMATS)}"
            )
        opts["format"] = format
    if source is not None:
        if not source.strip():
            raise SetOptionError("source", "the source name is empty")
        opts["source"] = source
    if _blank(mean) != _blank(std):
        raise SetOptionError("std" if _blank(std) else "mean", "give the mean and the std together")
    if not _blank(mean):
        opts["mean"] = _numbers(mean, "mean")  # type: ignore[arg-type]
        opts["std"] = _numbers(std, "std")  # type: ignore[arg-type]
    if zca:
        if source is None:
            raise SetOptionError(
                "zca", "ZCA space needs the source dataset (its train split fits the ZCA)"
            )
        opts["zca_source"] = source
    if experiment is not None:
        if int(experiment) < 0:
            raise SetOptionError(
                "experiment", "the experiment is 0-based; leave it out for the file's last"
            )
        opts["experiment"] = int(experiment)
    if num_classes is not None:
        try:
            count = None if isinstance(num_classes, bool) else operator.index(num_classes)
        except TypeError:
            count = None
        if count is None or count < 1:
            raise SetOptionError(
                "num_classes",
                f"the class count must be a positive whole number (got {num_classes!r})",
            )
        opts["num_classes"] = count
    return opts
