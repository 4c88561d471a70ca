"""Reading a set with the command line's set flags, as every front end reads it
(ladd.sets.inputs): its warnings printed, a flag that makes no sense said in the flag's words."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ladd.cli.console import CLIError, warn

if TYPE_CHECKING:
    from ladd.data import ImageSet
    from ladd.sets.augmented import TrainableSet
    from ladd.sets.inputs import SetReading
    from ladd.store import Workspace

__all__ = ["load_set", "load_training_set"]


@contextmanager
def _reading_errors() -> Iterator[None]:
    """A reading flag that makes no sense, said in the command line's words (its flag)."""
    from ladd.sets.options import SetOptionError

    try:
        yield
    except SetOptionError as e:
        if e.field == "zca":
            msg = "--zca needs --source: ZCA is fitted on that source's train split"
            raise CLIError(msg) from None
        hint = "--mean/--std" if e.field in ("mean", "std") else f"--{e.field.replace('_', '-')}"
        raise typer.BadParameter(str(e), param_hint=hint) from None


def load_set(
    path: Path,
    reading: SetReading,
    ws: Workspace | None = None,
    data_root: Path | None = None,
    *,
    describe_only: bool = False,
) -> TrainableSet:
    """The set at `path` read with the set flags (ladd.sets.inputs.load_input_set); its
    warnings are printed."""
    from ladd.sets.inputs import load_input_set, set_warnings

    if not path.exists():
        raise CLIError(f"{path}: no such file or folder")
    with _reading_errors():
        ds = load_input_set(
            path,
            reading,
            data_root=data_root,
            cache_dir=ws.cache_dir if ws is not None else None,
            describe_only=describe_only,
        )
    for w in set_warnings(ds):
        warn(w)
    return ds


def load_training_set(
    path: Path, reading: SetReading, ws: Workspace, data_root: Path | None
) -> tuple[TrainableSet, ImageSet]:
    """The set a training command trains on and the real test split its models are scored on
    (ladd.sets.inputs.load_training_inputs, as the dashboard and sweeps load them); the set's
    warnings are printed."""
    from ladd.sets.inputs import load_training_inputs

    if not path.exists():
        raise CLIError(f"{path}: no such file or folder")
    with _reading_errors():
        inputs = load_training_inputs(path, reading, data_root=data_root, cache_dir=ws.cache_dir)
    for w in inputs.warnings:
        warn(w)
    return inputs.dataset, inputs.test
