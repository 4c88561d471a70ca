"""Planning a score: every training it needs (each one seed, one plan), which are recorded, and what the rest costs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ladd.codecs import DEFAULT_CODEC
from ladd.plan import TrainPlan, plan_training
from ladd.progress import ProgressEvent, ProgressFn
from ladd.sets.inputs import SetReading
from ladd.training import TrainConfig

# ---------------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class ScoreSpec:
    """What `ladd score` is asked (module doc). Accuracy options are fractions in [0, 1]."""

    set_path: str
    reading: SetReading = field(default_factory=SetReading)
    soft_labels: str | None = None  # a soft-label store beside the image folder
    label_temperature: float | None = None  # None: the store family's (ladd.stores.pairing)
    student_temperature: float | None = None
    labeler: str | None = None  # a labeler checkpoint or folder: the "ladd" variant
    n: int = 5
    r: float = 0.625
    codec: str | None = DEFAULT_CODEC  # the dense labels' codec (`ladd augment`'s default)
    arch: str = "convnet_d3"
    model_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 1000
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    protocol: str = "auto"
    lr: float | None = None
    batch_size: int = 256
    precision: str = "fp32"
    full_accuracy: float | None = None  # stated by the user (say where from in full_note)
    full_note: str = ""
    full_epochs: int | None = None  # or: train the whole train split this many epochs
    full_seeds: int = 1  # the full split's trainings: 1 = one number for every pair (DD-Ranking)
    paper: dict[str, str] = field(default_factory=dict)  # variant -> a paper's figure, labelled
    name: str = "score"
    device: str = "auto"
    data_root: str | None = None
    # execution (Ray or serial, as a sweep's)
    threads: int | None = None
    cpus_per_cell: float = 1.0
    gpus_per_cell: float = 1.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.seeds:
            raise ValueError("a score needs at least one seed")
        if self.full_accuracy is not None and not 0.0 <= float(self.full_accuracy) <= 1.0:
            raise ValueError(
                f"the full-data accuracy is a fraction in [0, 1], got {self.full_accuracy}"
            )
        if self.full_accuracy is not None and self.full_epochs:
            raise ValueError("give the full-data accuracy or full_epochs to train it, not both")

    def config(self, **changes: Any) -> TrainConfig:
        base = TrainConfig(
            arch=self.arch,
            mode="baseline",
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            seeds=self.seeds[:1],
            protocol=self.variant_protocol,
            precision=self.precision,
            model_options=dict(self.model_options),
            n=self.n,
            r=self.r,
        )
        return replace(base, **changes)

    @property
    def variant_protocol(self) -> str:
        """The protocol every variant asks its plan for: as given, except that "auto" with a
        soft-label store is RDED's (the recipe the store pairs with) for every variant, so that
        they stay comparable. plan_training settles it."""
        return "rded" if self.protocol == "auto" and self.soft_labels else self.protocol

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["reading"] = self.reading.to_dict()
        d["seeds"] = list(self.seeds)
        return d


@dataclass(frozen=True)
class ScoreCell:
    """One training of the score: a subject (the set, its random twin, the full split), a
    variant, one seed, its plan. Duck-types the sweep's PlannedCell for its executors."""

    subject: str
    variant: str
    seed: int
    plan: TrainPlan
    data: str  # which prepared dataset it trains on (ScorePlan.datasets)
    alias_of: str | None = None  # "set/shipped" of a set with hard labels only is "set/hard"

    @property
    def key(self) -> str:
        return self.plan.key

    @property
    def label(self) -> str:
        return f"{self.subject}/{self.variant} seed {self.seed}"

    @property
    def row(self) -> str:
        return f"{self.subject}/{self.variant}"


@dataclass
class ScorePlan:
    """Every training a score needs, the datasets they train on, what is recorded already and
    what the rest is estimated to cost."""

    spec: ScoreSpec
    cells: list[ScoreCell]
    datasets: dict[str, Any]  # name -> the set, its LADD copy, each seed's random draw, ...
    test: Any  # the real test split
    recorded: dict[str, int]  # plan key -> run id
    label_bytes: dict[str, int]  # "set/hard" -> bytes of its labels
    shipped: str  # what "shipped" trained on, in words
    protocol: str
    estimate_seconds: float | None
    estimate_basis: str
    notes: list[str] = field(default_factory=list)

    @property
    def todo(self) -> list[ScoreCell]:
        seen: set[str] = set()
        out = []
        for c in self.cells:
            if c.key in self.recorded or c.key in seen:
                continue
            seen.add(c.key)
            out.append(c)
        return out

    def summary(self) -> str:
        n, todo = len({c.key for c in self.cells}), len(self.todo)
        est = (
            f"~{self.estimate_seconds / 3600:.2f} h ({self.estimate_basis})"
            if self.estimate_seconds is not None
            else f"not estimated ({self.estimate_basis})"
        )
        return (
            f"score {self.spec.name}: {n} trainings ({todo} to run, {n - todo} recorded), "
            f"protocol {self.protocol}; estimated {est}"
        )


def _hard_label_bytes(ds: Any) -> int:
    k = int(ds.num_classes)
    return len(ds) * (1 if k <= 256 else 2 if k <= 65536 else 4)


def _dense_bytes(la: Any) -> int:
    dense = la.dense_labels()
    return int(dense.codec.nbytes(dense.payload))


def plan_score(
    spec: ScoreSpec,
    workspace: Any,
    *,
    device: str | None = None,
    progress: ProgressFn | None = None,
) -> ScorePlan:
    """Read the set (and its store), draw the random twins, label-augment when a labeler is
    given, and plan every training (module doc). Raises ValueError (one line) for anything
    that cannot be trained."""
    from ladd.dense import augment
    from ladd.sets import random_real
    from ladd.sets.inputs import load_training_inputs
    from ladd.sweep.record import recorded_runs

    dev = device or spec.device

    def note(msg: str) -> None:
        if progress is not None:
            progress(ProgressEvent("score", 0, 0, None, msg, note=True))

    inputs = load_training_inputs(
        spec.set_path, spec.reading, data_root=spec.data_root, cache_dir=workspace.cache_dir
    )
    ds, test = inputs.dataset, inputs.test
    notes = list(inputs.warnings)
    source = ds.source or spec.reading.source
    if not source:
        raise ValueError("a score draws random-real twins from the set's source: give --source")
    counts = ds.ipc_per_class()
    if len(set(counts)) > 1:
        notes.append(f"uneven classes {min(counts)}..{max(counts)}: random twins at IPC {ds.ipc}")
    ipc = int(ds.ipc)
    datasets: dict[str, Any] = {"set": ds}
    shipped_data, shipped_mode, shipped_changes = "set", "baseline", {}
    if spec.soft_labels:
        from ladd.stores.pairing import open_soft_label_set

        sset = open_soft_label_set(
            spec.set_path,
            spec.soft_labels,
            dataset=ds,
            label_temperature=spec.label_temperature,
            student_temperature=spec.student_temperature,
        )
        datasets["set+store"] = sset
        shipped_data, shipped_mode = "set+store", "store"
        shipped = f"its soft-label store ({sset.store.info().title}) replayed"
    elif getattr(ds, "soft_labels", None) is not None:
        shipped_changes = {"full_labels": "set_soft"}
        shipped = "its own soft labels"
    else:
        shipped = "its hard labels (it ships no soft labels)"
    if spec.variant_protocol != spec.protocol:
        notes.append("protocol rded for every variant: the soft-label store's recipe")
    zca = getattr(ds, "zca", None)
    for s in spec.seeds:
        note(f"drawing the random-real twin of seed {s} (IPC {ipc})")
        datasets[f"random{s}"] = random_real(
            source, ipc, seed=s, zca=zca, data_root=spec.data_root, cache_dir=workspace.cache_dir
        )
    if spec.labeler:
        note("label-augmenting the set and its random twins (LADD's dense labels)")
        datasets["set+ladd"] = augment(
            ds, spec.labeler, spec.n, spec.r, device=dev, codec=spec.codec
        )
        for s in spec.seeds:
            datasets[f"random{s}+ladd"] = augment(
                datasets[f"random{s}"], spec.labeler, spec.n, spec.r, device=dev, codec=spec.codec
            )
    if spec.full_epochs:
        from ladd.data import load_source

        train = load_source(
            source, "train", data_root=spec.data_root, cache_dir=workspace.cache_dir
        )
        datasets["full"] = random_real(train, min(train.class_counts()), seed=0, zca=zca)

    cells: list[ScoreCell] = []

    def add(subject: str, variant: str, seed: int, data: str, cfg: TrainConfig, alias=None):
        plan = plan_training(datasets[data], replace(cfg, seeds=(seed,)), dev)
        cells.append(ScoreCell(subject, variant, seed, plan, data, alias))

    for s in spec.seeds:
        hard = spec.config()
        add("set", "hard", s, "set", hard)
        add("set", "no_aug", s, "set", replace(hard, dsa=False))
        if shipped_mode == "store":
            add("set", "shipped", s, shipped_data, spec.config(mode="store"))
        elif shipped_changes:
            add("set", "shipped", s, "set", spec.config(**shipped_changes))
        else:
            add("set", "shipped", s, "set", hard, alias="set/hard")
        add("random", "hard", s, f"random{s}", hard)
        add("random", "no_aug", s, f"random{s}", replace(hard, dsa=False))
        if spec.labeler:
            add("set", "ladd", s, "set+ladd", spec.config(mode="ladd"))
            add("random", "ladd", s, f"random{s}+ladd", spec.config(mode="ladd"))
        if spec.full_epochs and s in spec.seeds[: max(1, spec.full_seeds)]:
            add("full", "hard", s, "full", spec.config(epochs=int(spec.full_epochs)))
    label_bytes = {
        "set/hard": _hard_label_bytes(ds),
        "set/no_aug": _hard_label_bytes(ds),
        "random/hard": _hard_label_bytes(ds),
        "random/no_aug": _hard_label_bytes(ds),
    }
    if shipped_mode == "store":
        label_bytes["set/shipped"] = int(datasets["set+store"].store.info().label_bytes)
    elif shipped_changes:
        soft = ds.soft_labels
        label_bytes["set/shipped"] = int(soft.numel() * soft.element_size())
    else:
        label_bytes["set/shipped"] = _hard_label_bytes(ds)
    if spec.labeler:
        label_bytes["set/ladd"] = _dense_bytes(datasets["set+ladd"]) + _hard_label_bytes(ds)
        label_bytes["random/ladd"] = label_bytes["set/ladd"]
    recorded = recorded_runs(workspace)
    seconds, basis = _estimate(cells, datasets, recorded, dev)
    protocol = cells[0].plan.config.protocol  # settled by the plans ("auto" resolved)
    return ScorePlan(
        spec=spec,
        cells=cells,
        datasets=datasets,
        test=test,
        recorded={c.key: recorded[c.key] for c in cells if c.key in recorded},
        label_bytes=label_bytes,
        shipped=shipped,
        protocol=protocol,
        estimate_seconds=seconds,
        estimate_basis=basis,
        notes=notes,
    )


def _estimate(
    cells: list[ScoreCell], datasets: dict[str, Any], recorded: dict[str, int], device: str
) -> tuple[float | None, str]:
    """The cost model of ladd.sweep.cost (what `ladd train` prints) summed over what is left."""
    from ladd.device import resolve_device
    from ladd.sweep.cost import estimate_plan

    kind = resolve_device(device).type
    total, bases = 0.0, set()
    seen: set[str] = set()
    for c in cells:
        if c.key in recorded or c.key in seen:
            continue
        seen.add(c.key)
        est = estimate_plan(c.plan, kind)
        if est.seconds is None:
            return None, est.basis
        total += est.seconds
        bases.add(est.basis)
    return total, "; ".join(sorted(bases)) or "nothing to run"
