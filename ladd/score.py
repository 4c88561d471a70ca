"""How good is a set, and how much of it is its labels? (`ladd score`)

    spec = ScoreSpec("sets/dm_ipc10", reading=SetReading(source="cifar10"), labeler=LAB,
                     epochs=300, seeds=(0, 1, 2, 3, 4))
    plan = plan_score(spec, workspace)       # every training it needs; which are recorded; cost
    result = run_score(plan, workspace)      # trains the rest (serial or Ray), records, scores
    print("\\n".join(result.lines()))

The set is trained under the protocols that matter for it, each with its own random-real twin
drawn and trained by the same pipeline (ladd.sets.random_real at the set's IPC, one draw per
seed, as DD-Ranking draws one per evaluation run):

    shipped  its own labels as shipped: its soft-label store replayed (label mode "store"), its
             own soft labels (DATM's), or its hard labels when it has nothing else
    hard     hard labels only, with the protocol's augmentation
    no_aug   hard labels only, without augmentation
    ladd     LADD's dense labels from a labeler (N x N crops), with the protocol's augmentation

and, for the hard-label recovery, the whole train split (`full_epochs`; once by default, its
accuracy then serving every pair as DD-Ranking's one cached full-data number does,
ddranking/utils/train_and_eval.py:15-18) or a full-data accuracy the user states
(`full_accuracy`, with where it comes from). Every training is one seed, one
recorded "train" run (ladd.pipeline.record_train), named by its plan key: a score run again
trains only what is not recorded yet (resumable), and a cell killed mid-training resumes from
its checkpoint. Accuracy is the last epoch's, tested once (nothing is chosen on the test set).

Scores, as DD-Ranking defines them (NUS-HPC-AI-Lab/DD-Ranking, ddranking/metrics/), per seed
i (the i-th synthetic run paired with the i-th random run), then mean and std over seeds:

    HLR  = full accuracy - hard-label accuracy            (hard_label.py:380)
    IOR  = hard-label accuracy - random's, same protocol  (hard_label.py:381)
    LRS  = (e^a - e^-1) / (e - e^-1), a = 0.5 IOR - 0.5 HLR   (hard_label.py:382-383)
    ARS  = (e^b - e^-1) / (e - e^-1), b = 0.5 (IOR with augmentation) + 0.5 (IOR without)
                                                          (aug_robust.py:577-580)
    soft LRS: IOR of the soft labels (LADD's dense labels on both), HLR as above
                                                          (soft_label.py:561-564)

Units: DD-Ranking's accuracies are percentages (utils/meter.py:168, `correct_k * (100.0 /
batch_size)`), so its exponent takes percentage points: a 20-point HLR puts LRS near its floor
-e^-1 / (e - e^-1) = -0.157. Both are reported: `lrs`/`ars` with percentage points as its code
computes them, `lrs_fraction`/`ars_fraction` with accuracies as fractions in [0, 1] (the bounded
reading of its formula). Stds are sample stds (ddof 1), as for accuracies here (DD-Ranking's
np.std is ddof 0). Label bytes: the bytes each variant's labels take as stored (a hard label as
one byte, a class index below 256; a store's label payload over all its epochs; LADD's dense
labels in their codec plus the hard labels); accuracy per label byte is percentage points per
KiB.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from ladd.codecs import DEFAULT_CODEC
from ladd.plan import TrainPlan, plan_training
from ladd.progress import ProgressEvent, ProgressFn
from ladd.sets.inputs import SetReading
from ladd.training import TrainConfig

__all__ = [
    "SCORE_NAMES",
    "SUBJECTS",
    "VARIANTS",
    "ScoreCell",
    "ScorePlan",
    "ScoreResult",
    "ScoreSpec",
    "dd_ranking_scores",
    "plan_score",
    "run_score",
    "score_metrics",
    "score_rows",
    "squash",
]

VARIANTS: dict[str, str] = {
    "shipped": "its own labels as shipped",
    "hard": "hard labels only",
    "no_aug": "hard labels, no augmentation",
    "ladd": "LADD's dense labels",
}
SUBJECTS = ("set", "random", "full")


def squash(x: float) -> float:
    """DD-Ranking's (e^x - e^-1) / (e - e^-1) (hard_label.py:383, aug_robust.py:580)."""
    return (math.exp(x) - math.exp(-1.0)) / (math.e - math.exp(-1.0))


def _mean_std(values: list[float]) -> dict[str, Any]:
    return {
        "per_seed": values,
        "mean": statistics.fmean(values) if values else None,
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def dd_ranking_scores(
    acc: dict[str, list[float]], full: float | list[float] | None, lam: float = 0.5
) -> dict[str, dict[str, Any]]:
    """HLR, IOR, LRS and ARS (module doc) from per-seed accuracies (fractions in [0, 1]).

    `acc` keys are "set/hard", "random/hard", "set/no_aug", "random/no_aug", "set/ladd",
    "random/ladd" (those present are used; seeds pair by position). `full`: the full-data
    accuracy, one number or one per seed (None: no HLR, LRS). HLR and IOR come back in
    percentage points; `lrs`/`ars` as DD-Ranking's code computes them (points in the exponent),
    `*_fraction` with accuracies as fractions."""

    def pairs(a: str, b: str) -> list[tuple[float, float]]:
        if a not in acc or b not in acc:
            return []
        if len(acc[a]) != len(acc[b]):
            raise ValueError(f"{a} and {b} have {len(acc[a])} and {len(acc[b])} seeds")
        return list(zip(acc[a], acc[b], strict=True))

    hard = pairs("set/hard", "random/hard")
    fulls: list[float] = []
    if full is not None and hard:
        fulls = list(full) if isinstance(full, (list, tuple)) else [float(full)] * len(hard)
        if len(fulls) != len(hard):
            raise ValueError(f"{len(fulls)} full-data accuracies for {len(hard)} seeds")
    out: dict[str, dict[str, Any]] = {}
    if hard:
        out["ior"] = _mean_std([100 * (s - r) for s, r in hard])
    if fulls:
        out["hlr"] = _mean_std([100 * (f - s) for f, (s, _) in zip(fulls, hard, strict=True)])
        for unit, k in (("", 100.0), ("_fraction", 1.0)):
            out["lrs" + unit] = _mean_std(
                [
                    squash(lam * k * (s - r) - (1 - lam) * k * (f - s))
                    for f, (s, r) in zip(fulls, hard, strict=True)
                ]
            )
    noaug = pairs("set/no_aug", "random/no_aug")
    if hard and noaug:
        out["ior_no_aug"] = _mean_std([100 * (s - r) for s, r in noaug])
        for unit, k in (("", 100.0), ("_fraction", 1.0)):
            out["ars" + unit] = _mean_std(
                [
                    squash(lam * k * (s - r) + (1 - lam) * k * (s2 - r2))
                    for (s, r), (s2, r2) in zip(hard, noaug, strict=True)
                ]
            )
    ladd = pairs("set/ladd", "random/ladd")
    if ladd:
        out["ior_ladd"] = _mean_std([100 * (s - r) for s, r in ladd])
        if fulls:
            for unit, k in (("", 100.0), ("_fraction", 1.0)):
                out["lrs_ladd" + unit] = _mean_std(
                    [
                        squash(lam * k * (s - r) - (1 - lam) * k * (f - h))
                        for f, (s, r), (h, _) in zip(fulls, ladd, hard, strict=True)
                    ]
                )
    return out


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
            protocol=self.protocol,
            precision=self.precision,
            model_options=dict(self.model_options),
            n=self.n,
            r=self.r,
        )
        return replace(base, **changes)

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
    protocol = spec.protocol
    if protocol == "auto" and spec.soft_labels:
        protocol = "rded"  # every variant under the recipe the store pairs with
        notes.append("protocol rded for every variant: the soft-label store's recipe")
    spec_p = replace(spec, protocol=protocol)
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
        hard = spec_p.config()
        add("set", "hard", s, "set", hard)
        add("set", "no_aug", s, "set", replace(hard, dsa=False))
        if shipped_mode == "store":
            add("set", "shipped", s, shipped_data, spec_p.config(mode="store"))
        elif shipped_changes:
            add("set", "shipped", s, "set", spec_p.config(**shipped_changes))
        else:
            add("set", "shipped", s, "set", hard, alias="set/hard")
        add("random", "hard", s, f"random{s}", hard)
        add("random", "no_aug", s, f"random{s}", replace(hard, dsa=False))
        if spec.labeler:
            add("set", "ladd", s, "set+ladd", spec_p.config(mode="ladd"))
            add("random", "ladd", s, f"random{s}+ladd", spec_p.config(mode="ladd"))
        if spec.full_epochs and s in spec.seeds[: max(1, spec.full_seeds)]:
            add("full", "hard", s, "full", spec_p.config(epochs=int(spec.full_epochs)))
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
        spec=spec_p,
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
    from ladd.sweep.cost import estimate_cell

    kind = resolve_device(device).type
    total, bases = 0.0, set()
    seen: set[str] = set()
    for c in cells:
        if c.key in recorded or c.key in seen:
            continue
        seen.add(c.key)
        cfg, facts = c.plan.config, c.plan.set
        mode, images = cfg.mode, facts.images
        if mode == "store":  # as many samples an epoch as the store's crops, no crops cut
            mode, images = (
                "baseline",
                int((facts.soft_labels or {}).get("crops_per_epoch") or images),
            )
        est = estimate_cell(
            cfg.arch,
            mode,
            images=images,
            n=int(cfg.n or 5),
            image_size=facts.image_size,
            seeds=1,
            epochs=cfg.passes,
            width=cfg.model_options.get("width"),
            device=kind,
        )
        if est.seconds is None:
            return None, est.basis
        total += est.seconds
        bases.add(est.basis)
    return total, "; ".join(sorted(bases)) or "nothing to run"


# ---------------------------------------------------------------------------------------------
# Running and scoring


@dataclass
class ScoreResult:
    """Accuracies per subject/variant, their label bytes, DD-Ranking's scores (module doc)."""

    spec: ScoreSpec
    rows: dict[str, dict[str, Any]]  # "set/hard" -> per_seed, mean, std, label_bytes, runs
    scores: dict[str, dict[str, Any]]
    full: dict[str, Any]
    shipped: str
    protocol: str
    seconds: float
    trained: int
    reused: int
    notes: list[str] = field(default_factory=list)
    run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "rows": self.rows,
            "scores": self.scores,
            "full": self.full,
            "shipped": self.shipped,
            "protocol": self.protocol,
            "seconds": self.seconds,
            "trained": self.trained,
            "reused": self.reused,
            "notes": self.notes,
            "run_id": self.run_id,
            "units": "accuracies in [0, 1]; hlr/ior in percentage points; lrs/ars as DD-Ranking's "
            "code (percentage points in the exponent); *_fraction with fractions",
        }

    def lines(self) -> list[str]:
        out = [f"{'labels':<46} {'set':>16} {'random real':>16} {'label bytes':>12} {'pts/KiB':>9}"]
        for variant, what in VARIANTS.items():
            s, r = self.rows.get(f"set/{variant}"), self.rows.get(f"random/{variant}")
            if s is None:
                continue
            name = what if variant != "shipped" else f"shipped: {self.shipped}"
            cell = f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"
            rnd = f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}" if r else "—"
            per = s.get("points_per_kib")
            out.append(
                f"{name[:46]:<46} {cell:>16} {rnd:>16} {s['label_bytes']:>12,} {per:>9.3g}"
                if per is not None
                else f"{name[:46]:<46} {cell:>16} {rnd:>16}"
            )
        if self.full:
            f = self.full
            src = f.get("note") or "trained here"
            out.append(f"full data: {100 * f['mean']:.1f} % ({src})")
        for key, label in (
            ("hlr", "HLR (points)"),
            ("ior", "IOR (points)"),
            ("lrs", "LRS (DD-Ranking: points in exp)"),
            ("lrs_fraction", "LRS (fractions)"),
            ("ars", "ARS (DD-Ranking: points in exp)"),
            ("ars_fraction", "ARS (fractions)"),
            ("ior_ladd", "IOR, LADD's labels (points)"),
            ("lrs_ladd", "soft LRS, LADD (points in exp)"),
            ("lrs_ladd_fraction", "soft LRS, LADD (fractions)"),
        ):
            v = self.scores.get(key)
            if v is not None and v["mean"] is not None:
                out.append(f"{label:<46} {v['mean']:+.4g} ± {v['std']:.3g}")
        for variant, figure in self.spec.paper.items():
            out.append(f"paper, {variant} (their best epoch, not ours): {figure}")
        return out


class _Settings:
    """What the sweep's executors read of their spec (ladd.sweep.executor)."""

    def __init__(self, spec: ScoreSpec, device: str) -> None:
        self.device = device
        self.threads = spec.threads
        self.cpus_per_cell = spec.cpus_per_cell
        self.gpus_per_cell = spec.gpus_per_cell
        self.max_retries = spec.max_retries


def run_score(
    plan: ScorePlan,
    workspace: Any,
    *,
    executor: str = "serial",
    address: str | None = None,
    progress: ProgressFn | None = None,
    stop: Any = None,
    ray_options: dict[str, Any] | None = None,
    on_cell: Callable[[ScoreCell, int, float], None] | None = None,
) -> ScoreResult:
    """Train every cell of `plan` not recorded yet (the sweep's serial or Ray executor; the
    driver records each as it comes back), then score and record the score run."""
    from ladd.pipeline import record_train
    from ladd.sweep.executor import SerialExecutor, compute_cell

    t0 = time.perf_counter()
    spec = plan.spec
    settings = _Settings(spec, spec.device)
    ckpt_dir = workspace.root / "checkpoints"
    if executor == "serial":
        ex: Any = SerialExecutor(
            settings, compute=compute_cell, progress=progress, stop=stop, checkpoint_dir=ckpt_dir
        )
    elif executor == "ray":
        from ladd.sweep.ray_backend import RayExecutor

        ex = RayExecutor(
            settings,
            address=address,
            compute=compute_cell,
            checkpoint_dir=ckpt_dir,
            **(ray_options or {}),
        )
    else:
        raise ValueError(f"unknown executor {executor!r}: use serial or ray")
    recorded = dict(plan.recorded)
    todo = plan.todo
    trained = 0
    if todo:
        ex.start()
        try:
            shared: dict[str, Any] = {}
            test = ex.share(plan.test)
            pending = list(todo)
            in_flight: dict[Any, ScoreCell] = {}
            while pending or in_flight:
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt("score stopped")
                while pending and len(in_flight) < ex.slots():
                    cell = pending.pop(0)
                    if cell.data not in shared:
                        shared[cell.data] = ex.share(plan.datasets[cell.data])
                    in_flight[ex.submit(cell, shared[cell.data], test)] = cell
                for handle, out in ex.wait(timeout=1.0):
                    cell = in_flight.pop(handle)
                    if isinstance(out, BaseException):
                        raise out
                    run_id = record_train(
                        workspace,
                        cell.plan,
                        replace(out.result, models=out.models()),
                        set_path=spec.set_path,
                        source=getattr(plan.datasets["set"], "source", None),
                        label=f"{spec.name}: {cell.label}",
                        reading=spec.reading,
                        extra={
                            "score": {
                                "name": spec.name,
                                "subject": cell.subject,
                                "variant": cell.variant,
                                "seed": cell.seed,
                                "worker": out.worker,
                                "device": out.device,
                            }
                        },
                        resumed=out.resumed,
                    )
                    recorded[cell.key] = run_id
                    trained += 1
                    if on_cell is not None:
                        on_cell(cell, run_id, out.result.accuracy_mean)
        finally:
            ex.close()
    result = _collect(plan, workspace, recorded, time.perf_counter() - t0, trained)
    with workspace.db.run("score", {"score": spec.to_dict(), "plan": plan.summary()}) as run:
        run.write_json("score.json", result.to_dict())
        run.log_metrics(
            **{f"{k}_mean": v["mean"] for k, v in result.scores.items()},
            rows={k: {"mean": v["mean"], "std": v["std"]} for k, v in result.rows.items()},
            seconds=result.seconds,
            run_id=run.id,
        )
        result.run_id = run.id
    return result


def _collect(
    plan: ScorePlan, workspace: Any, recorded: dict[str, int], seconds: float, trained: int
) -> ScoreResult:
    spec = plan.spec
    acc: dict[str, list[float]] = {}
    runs: dict[str, list[int]] = {}
    for cell in plan.cells:
        run_id = recorded[cell.key]
        metrics = workspace.db.get_run(run_id).metrics
        acc.setdefault(cell.row, []).append(float(metrics["per_seed"][0]))
        runs.setdefault(cell.row, []).append(run_id)
    rows: dict[str, dict[str, Any]] = {}
    for row, values in acc.items():
        d = _mean_std(values)
        d["runs"] = runs[row]
        d["label_bytes"] = plan.label_bytes.get(row)
        if d["label_bytes"] and row.startswith("set/"):
            d["points_per_kib"] = 100 * d["mean"] / (d["label_bytes"] / 1024)
        rows[row] = d
    full: dict[str, Any] = {}
    full_value: float | list[float] | None = None
    if spec.full_accuracy is not None:
        full = {"mean": float(spec.full_accuracy), "std": 0.0, "note": spec.full_note or "stated"}
        full_value = float(spec.full_accuracy)
    elif "full/hard" in acc:
        done = acc["full/hard"]
        full = {
            **_mean_std(done),
            "note": f"the whole train split trained here, {spec.full_epochs} epochs, "
            f"{len(done)} seed(s)",
        }
        # one full-data number for every pair (as DD-Ranking's REAL_DATA_ACC_CACHE), or one a seed
        full_value = done if len(done) == len(spec.seeds) else statistics.fmean(done)
    scores = dd_ranking_scores(acc, full_value)
    return ScoreResult(
        spec=spec,
        rows=rows,
        scores=scores,
        full=full,
        shipped=plan.shipped,
        protocol=plan.protocol,
        seconds=seconds,
        trained=trained,
        reused=len({c.key for c in plan.cells}) - trained,
        notes=list(plan.notes) + [f"recorded {date.today().isoformat()}"],
    )


# ---------------------------------------------------------------------------------------------
# Tables of a recorded score (ScoreResult.to_dict()): the dashboard's and docs/results.md's

SCORE_NAMES: dict[str, str] = {
    "hlr": "HLR (points)",
    "ior": "IOR, hard labels (points)",
    "ior_no_aug": "IOR, no augmentation (points)",
    "lrs": "LRS (DD-Ranking's code: points in the exponent)",
    "lrs_fraction": "LRS (accuracies as fractions)",
    "ars": "ARS (DD-Ranking's code: points in the exponent)",
    "ars_fraction": "ARS (accuracies as fractions)",
    "ior_ladd": "IOR, LADD's dense labels (points)",
    "lrs_ladd": "soft LRS, LADD's labels (points in the exponent)",
    "lrs_ladd_fraction": "soft LRS, LADD's labels (fractions)",
}


def score_rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant of a recorded score: the set's and its random twin's accuracy
    (percent, mean and std over seeds), the label bytes and points per KiB."""
    rows = d.get("rows", {})
    out = []
    for variant, what in VARIANTS.items():
        s, r = rows.get(f"set/{variant}"), rows.get(f"random/{variant}")
        if s is None:
            continue
        out.append(
            {
                "variant": variant,
                "labels": f"shipped: {d.get('shipped', '')}" if variant == "shipped" else what,
                "set_mean": 100 * s["mean"],
                "set_std": 100 * s["std"],
                "random_mean": 100 * r["mean"] if r else None,
                "random_std": 100 * r["std"] if r else None,
                "label_bytes": s.get("label_bytes"),
                "points_per_kib": s.get("points_per_kib"),
                "seeds": len(s["per_seed"]),
            }
        )
    return out


def score_metrics(d: dict[str, Any]) -> list[dict[str, Any]]:
    """DD-Ranking's scores of a recorded score, named with their units."""
    out = []
    for key, name in SCORE_NAMES.items():
        v = d.get("scores", {}).get(key)
        if v and v.get("mean") is not None:
            out.append({"score": name, "key": key, "mean": v["mean"], "std": v["std"]})
    return out
