"""A set and its test split, loaded one way for every front end (CLI, dashboard jobs, sweeps).

    reading = SetReading(source="cifar10", zca=True)
    inputs = load_training_inputs("runs/datm_cifar10_ipc10", reading)
    inputs.dataset, inputs.test, inputs.warnings

`SetReading` is the user's reading fields (the CLI's set flags, a sweep spec's, the dashboard's);
`load_input_set` reads a set with them and refuses one whose images look ZCA-whitened while no
ZCA is applied (MTT/DATM/DD-Ranking save such sets; trained on and tested as plainly normalised
images they lose several points without a word) unless `allow_unwhitened` says so;
the converse too: a set read as ZCA space (`--zca`) whose images look plainly normalised (a DM
result file: its images would be used as they are while the test split is whitened) is
refused; `load_test_split` is the real test split its models are scored on; `set_warnings` is what
every front end shows about a set. Nothing here prints: front ends show `warnings`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ladd.data import ImageSet, load_source
from ladd.sets.base import DistilledFileError
from ladd.sets.conventions import looks_unwhitened, looks_whitened
from ladd.sets.loading import load_set
from ladd.sets.options import read_options

__all__ = [
    "SetReading",
    "NotWhitenedSetError",
    "TrainingInputs",
    "UnwhitenedSetError",
    "load_input_set",
    "load_test_split",
    "load_training_inputs",
    "set_warnings",
]


class UnwhitenedSetError(DistilledFileError):
    """A set whose images look ZCA-whitened, read without its ZCA (and not allowed to be)."""


class NotWhitenedSetError(DistilledFileError):
    """A set read as ZCA space (--zca) whose images look plainly normalised, not whitened."""


@dataclass(frozen=True)
class SetReading:
    """How to read a set: the user's reading fields (None: from the files).

    zca: the images are in ZCA space of `source` (MTT/DATM on CIFAR): fit it on that source.
    allow_unwhitened: train on images that look ZCA-whitened without a ZCA (the user's word
    that they are not, or that this is meant); a warning still says so."""

    source: str | None = None
    format: str | None = None
    mean: str | Sequence[float] | None = None
    std: str | Sequence[float] | None = None
    zca: bool = False
    experiment: int | None = None
    num_classes: int | None = None
    allow_unwhitened: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what a run records of how its set was read (SetReading(**d) again)."""
        d = asdict(self)
        if d["mean"] is not None and not isinstance(d["mean"], str):
            d["mean"], d["std"] = list(d["mean"]), list(d["std"])
        return d

    def load_options(self) -> dict[str, Any]:
        """`load_set` keyword options (ladd.sets.options.read_options' rules; SetOptionError
        names the field at fault)."""
        return read_options(
            format=self.format,
            source=self.source,
            mean=self.mean,
            std=self.std,
            zca=self.zca,
            experiment=self.experiment,
            num_classes=self.num_classes,
        )


def _whitening_hint(dataset: Any) -> str | None:
    """ladd.sets.conventions.looks_whitened's hint for a set read without any ZCA, else None."""
    if getattr(dataset, "zca", None) is not None or getattr(dataset, "zca_source", None):
        return None
    images = getattr(dataset, "images", None)
    if images is None or not images.is_floating_point():
        return None
    return looks_whitened(images)


def _zca_space_hint(dataset: Any) -> str | None:
    """ladd.sets.conventions.looks_unwhitened's hint for a set read as ZCA space (a ZCA fitted
    or named) whose float images look like plainly normalised photos, else None."""
    if getattr(dataset, "zca", None) is None and not getattr(dataset, "zca_source", None):
        return None
    images = getattr(dataset, "images", None)
    if images is None or not images.is_floating_point():
        return None
    return looks_unwhitened(images)


def set_warnings(dataset: Any) -> tuple[str, ...]:
    """What every front end shows about a set: its reader's warnings, and for a label-augmented
    set the input-space mismatches its labeler had."""
    found = list(getattr(dataset, "warnings", None) or ())
    labeler = getattr(dataset, "labeler", None)
    if isinstance(labeler, dict):
        found += [str(m) for m in labeler.get("mismatch") or () if str(m) not in found]
    return tuple(str(w) for w in found)


def load_input_set(
    path: str | Path,
    reading: SetReading | None = None,
    *,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    describe_only: bool = False,
    check_source: Callable[[str], str] | None = None,
) -> Any:
    """The set at `path` read with `reading` (ladd.sets.load_set), ready to train on.

    check_source vets the source the set will be tested on first (the dashboard's allow-list
    comes before any other refusal). Raises UnwhitenedSetError when its images look
    ZCA-whitened and no ZCA is applied, unless reading.allow_unwhitened (or describe_only:
    describing a set never refuses it)."""
    reading = reading or SetReading()
    kwargs = reading.load_options()
    if describe_only:
        kwargs["describe_only"] = True
    if cache_dir is not None:
        kwargs["cache_dir"] = cache_dir
    if data_root is not None:
        kwargs["data_root"] = data_root
    dataset = load_set(path, **kwargs)
    zca_hint = _zca_space_hint(dataset)
    if zca_hint is not None and describe_only:
        if hasattr(dataset, "warnings") and zca_hint not in set_warnings(dataset):
            dataset.warnings = (
                *tuple(dataset.warnings or ()),
                f"read as ZCA space, but {zca_hint}",
            )
    if describe_only:
        return dataset
    if zca_hint is not None:
        raise NotWhitenedSetError(
            getattr(dataset, "origin", None) or path,
            f"read as ZCA space (--zca, or its file's record), but {zca_hint}: its images would "
            "be used as they are while the test split is whitened. Drop --zca for a set that "
            "was not saved in ZCA space (a DC/DSA/DM result file, GLaD, SRe2L, RDED)",
        )
    name = reading.source or getattr(dataset, "source", None)
    if check_source is not None and name:
        check_source(name)
    hint = _whitening_hint(dataset)
    if hint is not None and not reading.allow_unwhitened:
        raise UnwhitenedSetError(
            getattr(dataset, "origin", None) or path,
            f"{hint.split(':')[0]}, but no ZCA is applied: pass --zca with --source NAME "
            "(zca = true in a sweep spec) to whiten as MTT/DATM do, or --allow-unwhitened "
            "to train on them as they are",
        )
    if hint is not None and hint not in set_warnings(dataset) and hasattr(dataset, "warnings"):
        dataset.warnings = (*tuple(dataset.warnings or ()), hint)
    return dataset


def load_test_split(
    dataset: Any,
    source: str | None = None,
    *,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    check_source: Callable[[str], str] | None = None,
) -> ImageSet:
    """The real test split (of `source`, else the set's own source) at the set's image size.

    check_source: vets the name first (the dashboard's allow-list: a set's metadata must not
    lead outside it) and returns the name to load."""
    name = source or getattr(dataset, "source", None)
    if not name:
        raise ValueError(
            "the set does not name its source: pass --source NAME (for the real test split)"
        )
    if check_source is not None:
        name = check_source(name)
    return load_source(
        name,
        "test",
        image_size=int(dataset.images.shape[-1]),
        data_root=data_root,
        cache_dir=cache_dir,
    )


@dataclass(frozen=True)
class TrainingInputs:
    """A set, the real test split its models are scored on, and what to tell the user."""

    dataset: Any
    test: ImageSet
    source: str | None  # the source named (reading.source), else the set's
    warnings: tuple[str, ...]


def load_training_inputs(
    path: str | Path,
    reading: SetReading | None = None,
    *,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    check_source: Callable[[str], str] | None = None,
) -> TrainingInputs:
    """The set at `path` (load_input_set) and its test split (load_test_split), with the set's
    warnings: what `ladd train`/`evaluate` and the dashboard's training job start from."""
    reading = reading or SetReading()
    dataset = load_input_set(
        path, reading, data_root=data_root, cache_dir=cache_dir, check_source=check_source
    )
    test = load_test_split(
        dataset,
        reading.source,
        data_root=data_root,
        cache_dir=cache_dir,
        check_source=check_source,
    )
    source = reading.source or getattr(dataset, "source", None)
    if check_source is not None and source:
        source = check_source(source)
    return TrainingInputs(dataset, test, source, set_warnings(dataset))
