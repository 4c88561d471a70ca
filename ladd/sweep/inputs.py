"""A sweep's inputs, prepared once on the driver: each set read once, each (set, labeler
checkpoint, N, R, codec) label-augmented once through the pipeline's augment step (an "augment"
run, its file under sweeps/<name>/inputs/), each test split loaded once, as `ladd train` loads
them (ladd.sets.inputs), and each paired set's soft-label store opened beside it once."""

from __future__ import annotations

from pathlib import Path

import torch

from ladd.codecs import DEFAULT_CODEC
from ladd.data.imageset import ImageSet
from ladd.sets.augmented import TrainableSet
from ladd.sets.inputs import SetReading
from ladd.store import Workspace
from ladd.sweep.record import sweep_dir
from ladd.sweep.spec import CellInput, SweepSpec

__all__ = ["SweepInputs"]


class SweepInputs:
    """Loads each set once, label-augments each (set, labeler checkpoint, N, R) once, loads each
    test split once, as `ladd train` loads them (ladd.sets.inputs). Label-augmented inputs are
    written to sweeps/<name>/inputs/<key> and read back on a rerun, so every run points at the
    exact file it trained on. `warnings`: each set's warnings, by path, as they were found."""

    def __init__(self, spec: SweepSpec, workspace: Workspace) -> None:
        self.spec = spec
        self.ws = workspace
        self._sets: dict[str, TrainableSet] = {}
        self._prepared: dict[str, TrainableSet] = {}
        self._tests: dict[tuple[str, int], ImageSet] = {}
        self.warnings: dict[str, tuple[str, ...]] = {}

    def _device(self) -> torch.device:
        from ladd.device import resolve_device

        want = self.spec.device
        if want.startswith("cuda") and not torch.cuda.is_available():
            want = "cpu"  # a Ray client driver without a GPU labels on its CPU
        return resolve_device(want)

    def reading(self) -> SetReading:
        """The sweep's reading fields (source, zca, allow_unwhitened)."""

        if self.spec.zca and not self.spec.source:
            raise ValueError("zca needs the sweep's source (ZCA is fitted on it)")
        return SetReading(
            source=self.spec.source or None,
            zca=bool(self.spec.zca),
            allow_unwhitened=self.spec.allow_unwhitened,
        )

    def base(self, path: str) -> TrainableSet:
        from ladd.sets.inputs import load_input_set, set_warnings

        if path not in self._sets:
            self._sets[path] = load_input_set(
                path, self.reading(), data_root=self.spec.data_root, cache_dir=self.ws.cache_dir
            )
            self.warnings[path] = set_warnings(self._sets[path])
        return self._sets[path]

    def set_file(self, inp: CellInput) -> str:
        """The file a cell's run records as its set."""
        if not inp.augmented:
            return inp.set_path
        return str(sweep_dir(self.ws, self.spec.name) / "inputs" / f"{inp.key}.safetensors")

    def dataset(self, inp: CellInput) -> TrainableSet:
        """The input's training set: the set as read, the set with its soft-label store (mode
        "store", ladd.stores.pairing), or label-augmented once by the pipeline's augment step
        (an "augment" run of the workspace) and read back from its file on a rerun."""
        if inp.key in self._prepared:
            return self._prepared[inp.key]
        if inp.store_path is not None:
            from ladd.stores.pairing import open_soft_label_set

            ds = open_soft_label_set(
                inp.set_path,
                inp.store_path,
                dataset=self.base(inp.set_path),
                label_temperature=inp.label_temperature,
                student_temperature=inp.student_temperature,
            )
        elif not inp.augmented:
            ds = self.base(inp.set_path)
            if inp.codec is not None and hasattr(ds, "dense_labels"):
                ds = ds.with_codec(inp.codec)  # a label-augmented set, its labels re-encoded
        else:
            from ladd.pipeline import run_label_augment
            from ladd.sets import LabelAugmentedSet

            path = Path(self.set_file(inp))
            if not path.is_file():
                base = self.base(inp.set_path)
                if hasattr(base, "dense_labels"):  # a label-augmented set: label its images again
                    base = base.to_distilled()
                path.parent.mkdir(parents=True, exist_ok=True)
                run_label_augment(
                    self.ws,
                    base,
                    str(inp.labeler_path),
                    n=int(inp.n or 5),
                    r=float(inp.r or 0.625),
                    distilled_path=inp.set_path,
                    out=path,
                    codec=inp.codec or DEFAULT_CODEC,  # what `ladd augment` writes
                    sampler=inp.sampler,
                    device=self._device(),
                    extra={"sweep": {"name": self.spec.name, "input": inp.key}},
                )
            # Always the file as written: a rerun reads the same tensors, so the plan's set
            # digest (and with it the cell's key) is the same whether the input was made now.
            ds = LabelAugmentedSet.load(
                path, data_root=self.spec.data_root, cache_dir=self.ws.cache_dir
            )
        self._prepared[inp.key] = ds
        return ds

    def source(self, dataset: TrainableSet) -> str | None:
        return self.spec.source or getattr(dataset, "source", None)

    def test_split(self, dataset: TrainableSet) -> ImageSet:
        from ladd.sets.inputs import load_test_split

        name = self.source(dataset)
        if not name:
            raise ValueError("the set does not name its source: give the sweep a source")
        size = int(dataset.images.shape[-1])
        if (name, size) not in self._tests:
            self._tests[(name, size)] = load_test_split(
                dataset, name, data_root=self.spec.data_root, cache_dir=self.ws.cache_dir
            )
        return self._tests[(name, size)]

    def shape(self, inp: CellInput) -> tuple[int, int, int]:
        """(images, image size, N) of an input without label-augmenting it (for estimates)."""
        base = self.base(inp.set_path)
        n = inp.n if inp.n is not None else int(getattr(base, "n", 5) or 5)
        return len(base), int(base.images.shape[-1]), n
