"""What a sweep is: a SweepSpec (read from TOML or built from arguments) and the Cells it expands to.

A cell is one `ladd train` run: one set (optionally label-augmented by a labeler checkpoint at
one N x R grid), one architecture, one mode, one group of seeds, one protocol. Its `key` is a
hash of everything that decides its result -- the set's and labeler's bytes, the source, the
whole TrainConfig -- and nothing about where it runs (device, Ray resources), so a cell recorded
once is found again by any later sweep that asks for the same experiment, on any machine.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ladd.sweep.stores import (
    STORE_MODE_NAME,
    StorePairing,
    located,
    pairings_table,
    store_pairings,
)
from ladd.training import LOSSES, MODES, PRECISIONS, PROTOCOLS, TrainConfig, label_mode

__all__ = [
    "LABELER_MODES",
    "Cell",
    "CellInput",
    "StorePairing",
    "SweepSpec",
    "content_digest",
    "expand",
    "load_spec",
    "seed_groups",
]

# Modes that train on the labeler's labels (dense or full-image soft): a plain set needs a
# labeler for them, and the labeler epoch and the N x R grid are axes of the sweep for them.
LABELER_MODES: tuple[str, ...] = tuple(
    m.name for m in MODES.values() if m.needs_dense or m.needs_labeler
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def seed_groups(
    seeds: int, per_cell: int | None = None, base: int = 0
) -> tuple[tuple[int, ...], ...]:
    """Seeds base..base+seeds-1 in groups of `per_cell` (None: one group, so the fast trainer
    trains them together; smaller groups spread one configuration over more workers)."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    per = seeds if per_cell is None else int(per_cell)
    if per < 1:
        raise ValueError(f"seeds_per_cell must be >= 1, got {per_cell}")
    all_seeds = [base + i for i in range(seeds)]
    return tuple(tuple(all_seeds[i : i + per]) for i in range(0, seeds, per))


@dataclass(frozen=True)
class SweepSpec:
    """A grid of `ladd train` runs: sets x modes x (labeler epochs x N/R) x archs x seed groups.

    Experiment fields (they enter every cell's key): sets, source, zca, labeler, labeler_epochs,
    nr, codecs, archs, modes, seed_groups, epochs, lr, batch_size, width, trainer, precision,
    dsa, protocol, loss, full_labels. `codecs` (ladd.codecs specs, e.g. "topk:5,uint8"): the
    dense labels of each labelled input stored in each codec; () = the default codec
    (ladd.codecs.DEFAULT_CODEC, what `ladd augment` writes).
    `soft_labels` (issue 36): image-folder sets paired with the soft-label store made from them
    (ladd.sweep.stores; a sweep file's table set -> store); mode "store" replays a paired set's
    store and needs every set to have one. Unpaired sets and the other modes keep their keys.
    Label-strategy axes (ladd.strategies, issue 37): `loss_fns`, `label_schedules`, `balances`
    (() = LADD's own: soft_ce, constant, fixed) and `samplers` (ladd.samplers specs: the crops
    each labelled input is made with, in place of the nr grid; () = the nr grid).
    Execution fields (they never do): name, device, data_root, cpus_per_cell, gpus_per_cell,
    max_retries, threads, allow_unwhitened (train on sets that look ZCA-whitened without a ZCA,
    which ladd.sets.inputs otherwise refuses).
    """

    name: str
    sets: tuple[str, ...]
    source: str | None = None  # the real test split and normalisation (default: the set's own)
    archs: tuple[str, ...] = ("convnet_d3",)
    modes: tuple[str, ...] = ("baseline", "ladd")
    labeler: str | None = None  # a labeler folder (epoch_NNN.safetensors) or one checkpoint
    labeler_epochs: tuple[int, ...] = ()  # () = load_labeler's choice (epoch 10, else the first)
    nr: tuple[tuple[int, float], ...] = ()  # () = (5, 0.625) with a labeler, else the set's own
    codecs: tuple[str, ...] = ()  # label codecs of the labelled inputs; () = the default codec
    samplers: tuple[str, ...] = ()  # crops of the labelled inputs; () = the nr grid
    loss_fns: tuple[str, ...] = ()  # the label strategy's axes; () = LADD's own
    label_schedules: tuple[str, ...] = ()
    balances: tuple[str, ...] = ()
    soft_labels: tuple[StorePairing, ...] = ()  # sets with a store beside them (mode "store")
    seed_groups: tuple[tuple[int, ...], ...] = ((0, 1, 2, 3, 4),)
    epochs: int = 1000
    lr: float | None = None
    batch_size: int = 256
    width: int | None = None  # ConvNet width (other families ignore it, as `ladd evaluate`)
    trainer: str = "fast"
    precision: str = "fp32"
    dsa: bool = True
    protocol: str = "auto"  # ladd.training.PROTOCOLS, or auto (from the image size)
    loss: str = "mean"
    full_labels: str = "hard"
    zca: bool = False  # the sets are in ZCA space of `source` (MTT/DATM on CIFAR)
    # execution
    device: str = "auto"
    data_root: str | None = None
    cpus_per_cell: float = 1.0
    gpus_per_cell: float = 1.0  # a fraction lets small 32 px cells share a card
    max_retries: int = 2  # Ray reruns a cell whose worker died this many times
    threads: int | None = None  # torch threads per cell (None: Ray's cpus_per_cell; serial: as is)
    allow_unwhitened: bool = False

    def __post_init__(self) -> None:
        from ladd.models import list_models

        if not _NAME_RE.match(self.name):
            raise ValueError(f"sweep name {self.name!r}: use letters, digits, '.', '_', '-'")
        tup = {
            "sets": tuple(str(s) for s in self.sets),
            "archs": tuple(self.archs),
            "modes": tuple(self.modes),
            "labeler_epochs": tuple(int(e) for e in self.labeler_epochs),
            "nr": tuple((int(n), float(r)) for n, r in self.nr),
            "codecs": _codec_specs(self.codecs),
            "samplers": _sampler_specs(self.samplers),
            "loss_fns": _strategy_specs("loss_fns", self.loss_fns),
            "label_schedules": _strategy_specs("label_schedules", self.label_schedules),
            "balances": _strategy_specs("balances", self.balances),
            "seed_groups": tuple(tuple(int(s) for s in g) for g in self.seed_groups),
        }
        for k, v in tup.items():
            object.__setattr__(self, k, v)
        if not self.sets:
            raise ValueError("a sweep needs at least one set")
        for what, values, known in (
            ("architecture", self.archs, list_models()),
            ("mode", self.modes, [*MODES, STORE_MODE_NAME]),
        ):
            if not values:
                raise ValueError(f"a sweep needs at least one {what}")
            bad = [v for v in values if v not in known]
            if bad:
                raise ValueError(f"unknown {what} {bad[0]!r}; use one of {', '.join(known)}")
        object.__setattr__(
            self, "soft_labels", store_pairings(self.soft_labels, self.sets, self.modes)
        )
        from ladd.training import TRAINERS

        if self.trainer not in TRAINERS:
            raise ValueError(f"unknown trainer {self.trainer!r}; use one of {', '.join(TRAINERS)}")
        if self.protocol != "auto" and self.protocol not in PROTOCOLS:
            raise ValueError(
                f"unknown protocol {self.protocol!r}; use auto or one of {', '.join(PROTOCOLS)}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use fp32 or bf16")
        if not self.seed_groups or any(not g for g in self.seed_groups):
            raise ValueError("seed groups must be non-empty")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.labeler_epochs and not self.labeler:
            raise ValueError("labeler_epochs needs a labeler folder")
        g = self.gpus_per_cell
        if not (0 < g <= 1 or float(g).is_integer()):
            raise ValueError(f"gpus_per_cell must be in (0, 1] or a whole number, got {g}")
        if self.cpus_per_cell <= 0:
            raise ValueError(f"cpus_per_cell must be > 0, got {self.cpus_per_cell}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in (
            "sets",
            "archs",
            "modes",
            "labeler_epochs",
            "codecs",
            "samplers",
            "loss_fns",
            "label_schedules",
            "balances",
        ):
            d[k] = list(d[k])
        d["nr"] = [list(p) for p in self.nr]
        d["seed_groups"] = [list(g) for g in self.seed_groups]
        d["soft_labels"] = pairings_table(self.soft_labels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, base_dir: str | Path | None = None) -> SweepSpec:
        """A spec from a TOML/JSON table. `seeds` (+ `seeds_per_cell`, `seed`) may stand in for
        `seed_groups`; relative paths (sets, labeler, data_root, the soft_labels table's sets
        and stores) are taken from `base_dir`."""
        d = dict(d)
        known = {f.name for f in fields(cls)}
        seeds = d.pop("seeds", None)
        per_cell = d.pop("seeds_per_cell", None)
        base = d.pop("seed", 0)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown sweep field(s): {', '.join(unknown)}")
        if seeds is not None:
            if "seed_groups" in d:
                raise ValueError("give either seeds (+ seeds_per_cell) or seed_groups, not both")
            d["seed_groups"] = seed_groups(int(seeds), per_cell, int(base))
        elif per_cell is not None:
            raise ValueError("seeds_per_cell needs seeds")
        if base_dir is not None:
            root = Path(base_dir)

            def at(p: str) -> str:
                q = Path(p).expanduser()
                return str(q if q.is_absolute() else root / q)

            d["sets"] = [at(s) for s in d.get("sets", [])]
            for k in ("labeler", "data_root"):
                if d.get(k):
                    d[k] = at(d[k])
            if d.get("soft_labels"):
                d["soft_labels"] = located(d["soft_labels"], at)
        return cls(**d)

    def with_options(self, **changes: Any) -> SweepSpec:
        """A copy with some fields changed (checked again)."""
        return replace(self, **changes)


def _codec_specs(codecs: Any) -> tuple[str, ...]:
    """Codec specs in their full spelling ("topk:5,uint8" -> "topk:5,uint8,uniform"), checked."""
    from ladd.codecs import CodecError, parse_codec

    if isinstance(codecs, str):
        codecs = (codecs,)
    try:
        return tuple(dict.fromkeys(parse_codec(str(c)).spec for c in codecs))
    except CodecError as e:
        raise ValueError(f"codecs: {e}") from None


def _sampler_specs(samplers: Any) -> tuple[str, ...]:
    """Sampler specs in their full spelling, checked (ladd.samplers)."""
    from ladd.samplers import SamplerError, parse_sampler

    if isinstance(samplers, str):
        samplers = (samplers,)
    try:
        return tuple(dict.fromkeys(parse_sampler(str(s)).spec for s in samplers))
    except SamplerError as e:
        raise ValueError(f"samplers: {e}") from None


def _strategy_specs(axis: str, values: Any) -> tuple[str, ...]:
    """A label-strategy axis in full spellings, checked (ladd.strategies)."""
    from ladd.strategies import BALANCES, LOSSES, SCHEDULES, StrategyError

    if isinstance(values, str):
        values = (values,)
    try:
        if axis == "loss_fns":
            out = [LOSSES.parse(str(v)).spec for v in values]
        elif axis == "label_schedules":
            out = [SCHEDULES.parse(str(v)).spec for v in values]
        else:
            out = [str(v).strip().lower() for v in values]
            bad = [v for v in out if v not in BALANCES]
            if bad:
                raise StrategyError(f"unknown balance {bad[0]!r}; use one of {', '.join(BALANCES)}")
    except StrategyError as e:
        raise ValueError(f"{axis}: {e}") from None
    return tuple(dict.fromkeys(out))


def load_spec(path: str | Path, **overrides: Any) -> SweepSpec:
    """Read a sweep spec from a TOML file (relative paths are relative to the file's folder).

    The sweep's name defaults to the file's stem; `overrides` replace fields after reading.
    """
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # Python 3.10: the same parser as a package, when installed
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(path)
    with open(path, "rb") as fh:
        table = tomllib.load(fh)
    table.setdefault("name", path.stem)
    table.update({k: v for k, v in overrides.items() if v is not None})
    return SweepSpec.from_dict(table, base_dir=path.resolve().parent)


# ---------------------------------------------------------------------------------------------
# Cells


def content_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (relative names + bytes, hidden files
    skipped): a set or checkpoint rewritten in place gets a new cell key."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_file():
        files = [(p, "")]
    elif p.is_dir():
        files = [
            (f, f.relative_to(p).as_posix())
            for f in sorted(p.rglob("*"))
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
        ]
    else:
        raise FileNotFoundError(f"{p}: no such file or folder")
    for f, name in files:
        h.update(name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class CellInput:
    """The training set of a cell: a set file as is, or label-augmented by one labeler
    checkpoint at one N x R grid. Cells sharing an input share one prepared set."""

    set_path: str
    set_digest: str
    labeler_path: str | None = None  # one checkpoint file
    labeler_digest: str | None = None
    labeler_epoch: int | None = None
    n: int | None = None
    r: float | None = None
    codec: str | None = None  # the dense labels' codec (None: a made input's default codec; a
    # label-augmented set's own, as stored)
    sampler: str | None = None  # the crops when not the N x R grid (ladd.samplers spec)
    store_path: str | None = None  # the soft-label store replayed (mode "store" only)
    store_digest: str | None = None  # the store's own digest (SoftLabelStore.digest)
    label_temperature: float | None = None  # None: the store family's (ladd.stores.pairing)
    student_temperature: float | None = None

    @property
    def augmented(self) -> bool:
        return self.labeler_path is not None

    def identity(self) -> dict[str, Any]:
        """What names the input's bytes: paths left out, and each later field (codec, sampler,
        the store and its temperatures) only when it is set, so the cells of sweeps made before
        it keep their keys."""
        optional = ("codec", "sampler", "store_digest", "label_temperature", "student_temperature")
        skip = {"set_path", "labeler_path", "store_path"}
        skip |= {k for k in optional if getattr(self, k) is None}
        return {k: v for k, v in asdict(self).items() if k not in skip}

    @property
    def key(self) -> str:
        return _hash(self.identity())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Cell:
    """One `ladd train` run of a sweep."""

    input: CellInput
    config: TrainConfig
    source: str | None = None
    zca: bool = False

    @property
    def key(self) -> str:
        """Stable id: a hash of the input's bytes, the source and the whole TrainConfig."""
        inp = self.input.identity()
        return _hash(
            {"input": inp, "source": self.source, "zca": self.zca, "train": self.config.to_dict()}
        )

    @property
    def label(self) -> str:
        c, i = self.config, self.input
        parts = [Path(i.set_path).name, f"{c.arch}/{c.mode}"]
        if i.labeler_epoch is not None:
            parts.append(f"lab{i.labeler_epoch}")
        if i.sampler is not None:
            parts.append(i.sampler)
        elif i.n is not None:
            parts.append(f"N{i.n} R{i.r:g}")
        elif label_mode(c.mode).crops:
            parts.append(f"N{c.n} R{c.r:g}")  # a plain set's crop grid, or the set's own
        from ladd.training import STRATEGY_DEFAULTS

        for name in ("loss_fn", "label_schedule", "balance"):
            if getattr(c, name) != STRATEGY_DEFAULTS[name]:
                parts.append(getattr(c, name))
        seeds = c.seeds
        parts.append(f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "input": self.input.to_dict(),
            "train": self.config.to_dict(),
            "source": self.source,
            "zca": self.zca,
        }


def _hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _labeler_checkpoints(labeler: str, epochs: tuple[int, ...]) -> list[tuple[Path, int]]:
    """(checkpoint, epoch) for each asked epoch; with none asked, load_labeler's default choice."""
    from ladd.labeler import checkpoint_name, list_checkpoints, read_meta

    p = Path(labeler)
    if not p.exists():
        raise FileNotFoundError(f"labeler {p}: no such file or folder")
    if p.is_file():
        epoch = read_meta(p).epoch
        if epochs and set(epochs) != {epoch}:
            raise ValueError(
                f"labeler {p} is one checkpoint (epoch {epoch}); epochs {epochs} asked"
            )
        return [(p, epoch)]
    ckpts = list_checkpoints(p)
    if not ckpts:
        raise ValueError(f"{p}: no labeler checkpoints (epoch_NNN.safetensors) in it")
    by_epoch = {read_meta(c).epoch: c for c in ckpts}
    if not epochs:
        ten = [c for c in ckpts if c.name == checkpoint_name(10)]
        chosen = ten[0] if ten else ckpts[0]
        return [(chosen, read_meta(chosen).epoch)]
    missing = [e for e in epochs if e not in by_epoch]
    if missing:
        raise ValueError(f"{p} has no checkpoint at epoch(s) {missing}; it has {sorted(by_epoch)}")
    return [(by_epoch[e], e) for e in epochs]


def _own_grid(path: Path) -> tuple[int | None, float | None]:
    """(N, R) a label-augmented set file was made with, from its metadata alone; (None, None)
    for a set made with another sampler (its own crops, ladd.samplers)."""
    from safetensors import safe_open

    from ladd.sets.augmented import META_KEY

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {})[META_KEY])
    if meta.get("sampler"):
        return None, None
    return int(meta["n"]), float(meta["r"])


def _strategies(spec: SweepSpec) -> list[tuple[str, str, str]]:
    """The (loss, schedule, balance) combinations of a sweep's strategy axes; a combination
    no run can train (a temperature schedule with a loss that has no temperature) is left
    out, so that axes of losses and schedules can be crossed."""
    from ladd.strategies import LabelStrategy, StrategyError

    out = []
    for lf in spec.loss_fns or ("soft_ce",):
        for ls in spec.label_schedules or ("constant",):
            for bal in spec.balances or ("fixed",):
                try:
                    LabelStrategy.parse(lf, ls, bal)
                except StrategyError:
                    continue
                out.append((lf, ls, bal))
    return out


def _sampler_crops(spec: str) -> tuple[int | None, float | None, str | None]:
    """(n, r, sampler) of an input made with a sampler: a grid is said as n and r."""
    from ladd.samplers import parse_sampler

    grid = parse_sampler(spec).grid
    return (grid[0], grid[1], None) if grid is not None else (None, None, spec)


def _store_input(base: CellInput, pairing: StorePairing) -> CellInput:
    """A paired set's input of mode "store": the set with its store (named by the store's own
    cheap digest, SoftLabelStore.digest: a store of ImageNet-1K is never hashed whole) and the
    temperatures asked."""
    from ladd.stores import open_store

    store = Path(pairing.store).expanduser().resolve()
    if not store.exists():
        raise FileNotFoundError(f"soft-label store {store}: no such file or folder")
    return replace(
        base,
        store_path=str(store),
        store_digest=open_store(store).digest(),
        label_temperature=pairing.label_temperature,
        student_temperature=pairing.student_temperature,
    )


def expand(spec: SweepSpec) -> list[Cell]:
    """Every cell of the grid, in spec order, duplicates removed (reads the sets' and the
    labeler's bytes for their digests; raises ValueError on a grid that cannot run). Mode
    "store" trains each set with its paired store under LADD's own label strategy (a store
    replays its own loss), so the strategy axes do not multiply its cells."""
    from ladd.models import supported_options
    from ladd.sets import is_label_augmented_file

    labelers = _labeler_checkpoints(spec.labeler, spec.labeler_epochs) if spec.labeler else []
    lab_digest = {str(p): content_digest(p) for p, _ in labelers}
    stores = {pairing.set: pairing for pairing in spec.soft_labels}
    cells: dict[str, Cell] = {}
    for set_path in spec.sets:
        p = Path(set_path).expanduser().resolve()
        if not p.exists():
            raise FileNotFoundError(f"set {p}: no such file or folder")
        is_la = p.is_file() and is_label_augmented_file(p)
        own_nr = _own_grid(p) if is_la else None  # a label-augmented set's own N, R
        if is_la and spec.nr and not spec.labeler:
            raise ValueError(
                f"{p} is label-augmented already (its own N and R): an nr axis needs a labeler"
            )
        base = CellInput(str(p), content_digest(p))
        for mode in spec.modes:
            variants: list[tuple[CellInput, int | None, float | None]] = []
            if mode in LABELER_MODES and spec.labeler:
                for ckpt, epoch in labelers:
                    crops = [(n, r, None) for n, r in spec.nr or ((5, 0.625),)]
                    if spec.samplers:
                        crops = [_sampler_crops(sp) for sp in spec.samplers]
                    for n, r, sampler in crops:
                        inp = replace(
                            base,
                            labeler_path=str(ckpt),
                            labeler_digest=lab_digest[str(ckpt)],
                            labeler_epoch=epoch,
                            n=n,
                            r=r,
                            sampler=sampler,
                        )
                        variants += [(replace(inp, codec=c), n, r) for c in spec.codecs or (None,)]
            elif mode in LABELER_MODES and not is_la:
                raise ValueError(
                    f"mode {mode!r} on {p} needs dense labels: give the sweep a labeler, or "
                    "list label-augmented sets"
                )
            elif mode == "crops_hard" and not is_la:
                variants += [(base, n, r) for n, r in spec.nr or ((5, 0.625),)]
            elif mode in LABELER_MODES:  # a label-augmented set: its labels in each codec
                variants += [(replace(base, codec=c), None, None) for c in spec.codecs or (None,)]
            elif mode == STORE_MODE_NAME:  # every set has a store (SweepSpec checks)
                variants.append((_store_input(base, stores[set_path]), None, None))
            else:
                variants.append((base, None, None))
            strategies = _strategies(spec)
            if mode == STORE_MODE_NAME:
                from ladd.training import STRATEGY_DEFAULTS as D

                strategies = [(D["loss_fn"], D["label_schedule"], D["balance"])]
            for (inp, n, r), (loss_fn, schedule, balance) in (
                (v, st) for v in variants for st in strategies
            ):
                for arch in spec.archs:
                    opts = supported_options(arch, {"width": spec.width} if spec.width else {})
                    for seeds in spec.seed_groups:
                        cfg = TrainConfig(
                            arch=arch,
                            mode=mode,
                            epochs=spec.epochs,
                            lr=spec.lr,
                            batch_size=spec.batch_size,
                            seeds=seeds,
                            trainer=spec.trainer,
                            precision=spec.precision,
                            dsa=spec.dsa,
                            protocol=spec.protocol,
                            loss=spec.loss,
                            full_labels=spec.full_labels,
                            n=n if n is not None else (own_nr or (5, 0.625))[0],
                            r=r if r is not None else (own_nr or (5, 0.625))[1],
                            model_options=opts,
                            loss_fn=loss_fn,
                            label_schedule=schedule,
                            balance=balance,
                        )
                        cell = Cell(inp, cfg, spec.source, spec.zca)
                        cells.setdefault(cell.key, cell)
    return list(cells.values())
