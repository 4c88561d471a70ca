"""The CIFAR-10 study of docs/results.md: does label augmentation do what the paper says?

    PYTHONPATH=. python scripts/study.py --profile gpu --parts 1,2,3,4,5,6,7
    PYTHONPATH=. python scripts/study.py --profile cpu --parts 1      # reduced, labelled as such

Every run group (dataset, distiller, ipc, arch, mode, n, r, labeler epoch) writes one JSON record
under docs/results/ as soon as it finishes; a rerun skips records that exist, so the study resumes
after a crash or across GPU sessions. Distilled sets, labelers and experts are cached in
--workspace. `python scripts/make_results.py` turns the records into docs/results.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import torch

from ladd.codecs import STANDARD_SPECS, parse_codec
from ladd.crop_stats import crop_stats
from ladd.data import load_source
from ladd.dense import augment, set_base_bytes, set_storage_report
from ladd.device import resolve_device
from ladd.distill import DMConfig, ExpertConfig, MTTConfig, distill_dm, distill_mtt, train_experts
from ladd.files import write_json
from ladd.labeler import (
    LabelerConfig,
    list_checkpoints,
    load_labeler,
    read_meta,
    train_labeler,
)
from ladd.progress import progress_reporter
from ladd.samplers import parse_sampler
from ladd.sets import load_distilled, random_real
from ladd.store import Workspace
from ladd.sweep import SweepSpec, TextProgress, expand, list_sweeps, run_sweep
from ladd.sweep.spec import LABELER_MODES
from ladd.training import MODES, TrainConfig, default_protocol, label_mode


@dataclass(frozen=True)
class Profile:
    """How big the study is. `gpu` is the paper's protocol; `cpu` a reduced version."""

    name: str
    epochs: int  # deployment epochs (protocol: 1000)
    seeds: int  # protocol: 5
    grid_seeds: int  # the N x R grid: 3
    width: int  # ConvNet width (protocol: 128)
    labeler_epochs: tuple[int, ...]  # checkpoints (protocol: 10..50)
    labeler_limit: int | None  # train images per class for the labeler (None: all 5,000)
    dm_iterations: int
    mtt_iterations: int
    expert_epochs: int
    num_experts: int
    distiller: str  # the built-in distiller the later tables use
    archs: tuple[str, ...]
    mtt_zca: bool = True  # MTT's CIFAR-10 sets live in ZCA space (its IPC 1 and 10 rows)


ALL_ARCHS = ("convnet_d3", "alexnet", "vgg11", "resnet18", "vit")  # the paper's Table 2 models
# The CPU profile's part 6 runs the first three. ResNet-18 and the ViT cost 3.3 and 3.7 GFLOPs a
# sample (forward + backward at 32 px, torch.utils.flop_counter) against AlexNet's 1.45 and
# VGG11's 0.91. AlexNet's LADD cell (2,600 samples x 61 passes x 3 seeds) ran at ~33 s a pass
# on 2 idle CPU cores, so theirs would take about 4 hours each; and at 61 SGD steps the part 6
# baselines sit near chance (docs/results), so there they would measure the step budget. They are in the GPU profile; `--archs` still asks for them.
CPU_ARCHS = ALL_ARCHS[:3]

PROFILES = {
    "gpu": Profile(
        "gpu",
        1000,
        5,
        3,
        128,
        (10, 20, 30, 40, 50),
        None,
        20000,
        5000,
        50,
        10,
        "mtt",
        ALL_ARCHS,
    ),
    "cpu": Profile(
        "cpu",
        60,
        3,
        3,
        32,
        (10, 20, 30, 40, 50),  # the paper's labeler epochs, on a 10,000-image subset
        1000,
        300,
        100,
        12,
        2,
        "dm",
        CPU_ARCHS,
    ),
}
N_DEFAULT, R_DEFAULT = 5, 0.625
DEFAULT_STRATEGY = ("soft_ce", "constant", "fixed")  # LADD's own (ladd.strategies)


def _tag(spec: str) -> str:
    """A spec string as a record-name part."""
    return re.sub(r"[^a-z0-9]+", "_", spec.lower()).strip("_")


def _strategy_fields(g: Group, recorded: dict, facts: dict, run_dir: Path) -> dict:
    """Part 8's fields of a record: the sampler and the label strategy as the run settled
    them, and the strategy's end state (learned weights, calibrated temperature)."""
    if g.part != "8":
        return {}
    out = {
        "sampler": facts.get("sampler")
        or (f"grid:{facts.get('n')},{facts.get('r'):g}" if facts.get("n") else None),
        "loss_fn": recorded.get("loss_fn", "soft_ce"),
        "label_schedule": recorded.get("label_schedule", "constant"),
        "balance": recorded.get("balance", "fixed"),
    }
    result = run_dir / "result.json"
    if result.is_file():
        end = json.loads(result.read_text()).get("strategy")
        if end:
            out["strategy_end"] = end
    return out


@dataclass(frozen=True)
class Group:
    """One run group of a table: what `Study.run` queued and `Study.flush` trains."""

    part: str
    key: str
    path: Path
    distiller: str
    ipc: int
    mode: str
    arch: str
    n: int
    r: float
    labeler_epoch: int | None
    seeds: int
    extra: dict
    reuse: tuple[str, ...]
    codec: str | None = None  # the dense labels' codec (None: as made, float32)
    sampler: str | None = None  # part 8: the crops when not the N x R grid (ladd.samplers)
    strategy: tuple[str, str, str] = ("soft_ce", "constant", "fixed")  # loss, schedule, balance


def progress_bar(what: str) -> Any:
    """The progress adapter for one long step (a run group, the labeler, a distillation) on
    stdout: a bar on a terminal, a plain line every 30 s in a log file (a GPU session's)."""
    return progress_reporter(what, stream=sys.stdout, every=30.0)


class Study:
    def __init__(
        self,
        profile: Profile,
        workspace: Path,
        out: Path,
        device: str,
        executor: str = "serial",
        address: str | None = None,
    ) -> None:
        self.p = profile
        self.executor, self.address = executor, address
        self.codecs: tuple[str, ...] = PART7_CODECS  # part 7 (--codecs overrides)
        self._pending: list[Group] = []
        self._tags: set[str] = set()  # the sweep names this study's flushes used
        self.ws = workspace / f"study-{profile.name}"
        self.ws.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(device)
        self.command = "PYTHONPATH=. python " + " ".join(shlex.quote(a) for a in sys.argv)
        self.sweep_ws = Workspace(self.ws)  # the runs of every part, recorded by the sweeps
        cache = self.sweep_ws.cache_dir  # one decoded cache for the study and its sweeps
        self.train = load_source("cifar10", "train", cache_dir=cache)
        self.test = load_source("cifar10", "test", cache_dir=cache)
        self._labelers: dict[int, object] = {}

    # -- artifacts ---------------------------------------------------------------------------
    def labeler_dir(self, upto: int | None = None, zca: bool = False) -> Path:
        """The labeler's folder, trained up to epoch `upto` (default: all the profile's
        checkpoints). Training stops there and a later call continues it (the schedule is
        constant, so checkpoints do not depend on where a session stopped). `zca`: the labeler
        of ZCA-space sets (MTT's CIFAR-10 sets), trained in that space."""
        d = self.ws / ("labeler-zca" if zca else "labeler")
        upto = upto or max(self.p.labeler_epochs)
        want = {e for e in self.p.labeler_epochs if e <= upto}
        have = {read_meta(p).epoch for p in list_checkpoints(d)}
        if not want <= have:
            cfg = LabelerConfig(
                arch="convnet_d3",
                epochs=upto,
                save_at=self.p.labeler_epochs,
                limit_per_class=self.p.labeler_limit,
                model_options={"width": self.p.width} if self.p.width != 128 else {},
                zca=zca,
            )
            print(f"training the labeler ({cfg.epochs} epochs)", flush=True)
            with progress_bar("labeler") as cb:
                train_labeler(
                    "cifar10",
                    cfg,
                    d,
                    device=self.device,
                    progress=cb,
                    cache_dir=self.sweep_ws.cache_dir,
                )
        return d

    def labeler(self, epoch: int | None = None, zca: bool = False):
        """The labeler checkpoint at `epoch`, loaded once per study (every run group asks)."""
        epoch = epoch or self.p.labeler_epochs[0]
        if (epoch, zca) not in self._labelers:
            folder = self.labeler_dir(upto=epoch, zca=zca)
            found = [p for p in list_checkpoints(folder) if read_meta(p).epoch == epoch]
            if not found:
                raise FileNotFoundError(f"no labeler checkpoint at epoch {epoch}")
            self._labelers[epoch, zca] = load_labeler(found[0], device=self.device)
        return self._labelers[epoch, zca]

    def set_dir(self, method: str, ipc: int) -> Path:
        """The distilled set's folder (made by `distilled` first)."""
        folder = self.ws / f"{method}-ipc{ipc}"
        if not (folder / "images_best.pt").exists():
            self.distilled(method, ipc)
        return folder

    def distilled(self, method: str, ipc: int):
        folder = self.ws / f"{method}-ipc{ipc}"
        if (folder / "images_best.pt").exists():
            return load_distilled(folder, source="cifar10")
        print(f"distilling {method} ipc {ipc}", flush=True)
        if method == "random":
            ds = random_real(self.train, ipc, seed=0)
            ds.save_mtt(folder)
            return ds
        opts = {"width": self.p.width} if self.p.width != 128 else {}
        if method == "dm":
            with progress_bar(f"dm ipc {ipc}") as cb:
                res = distill_dm(
                    self.train,
                    DMConfig(ipc=ipc, iterations=self.p.dm_iterations, model_options=opts),
                    device=self.device,
                    progress=cb,
                )
        elif method == "mtt":
            with progress_bar("experts") as cb:
                experts = train_experts(
                    self.train,
                    ExpertConfig(
                        num_experts=self.p.num_experts,
                        epochs=self.p.expert_epochs,
                        model_options=opts,
                        zca=self.p.mtt_zca,
                    ),
                    self.ws / ("experts-zca" if self.p.mtt_zca else "experts"),
                    device=self.device,
                    progress=cb,
                )
            cfg = mtt_config(ipc, self.p)
            with progress_bar(f"mtt ipc {ipc}") as cb:
                res = distill_mtt(
                    self.train,
                    experts,
                    cfg,
                    device=self.device,
                    checkpoint_dir=folder.with_suffix(".ckpt"),
                    progress=cb,
                )
        else:
            raise ValueError(method)
        res.save(folder)
        return res.distilled

    def la_set(
        self,
        method: str,
        ipc: int,
        n: int = N_DEFAULT,
        r: float = R_DEFAULT,
        labeler_epoch: int | None = None,
    ):
        return augment(
            self.distilled(method, ipc),
            self.labeler(labeler_epoch, zca=self.zca(method)),
            n,
            r,
            device=self.device,
            codec=None,  # float32: the study's reference; part 7 re-encodes it per codec
        )

    def zca(self, method: str) -> bool:
        """Whether a distiller's sets live in ZCA space (MTT's CIFAR-10 protocol)."""
        return method == "mtt" and self.p.mtt_zca

    # -- one run group -------------------------------------------------------------------------
    @staticmethod
    def _checked(path: Path, want: tuple) -> dict:
        rec = json.loads(path.read_text())
        have = (rec["epochs"], rec["seeds"], rec.get("width"), rec.get("protocol"))
        if have != want:  # an override must not pass off an old record as its own
            raise SystemExit(
                f"{path} holds a run with (epochs, seeds, width, protocol) = {have}, this study "
                f"asks for {want}: move the record away or use --out for a separate set"
            )
        return rec

    def run(
        self,
        part: str,
        dataset=None,
        *,
        distiller: str,
        ipc: int,
        mode: str,
        arch: str = "convnet_d3",
        n: int = N_DEFAULT,
        r: float = R_DEFAULT,
        labeler_epoch: int | None = None,
        seeds: int | None = None,
        extra=None,
        reuse: tuple[str, ...] = (),
        codec: str | None = None,
        sampler: str | None = None,
        strategy: tuple[str, str, str] | None = None,
    ) -> dict | None:
        """Ask for one run group. Its record when one exists (or another part's identical run
        group stands in); else it is queued, and `flush` trains every queued group of the part
        through the sweep runner and writes their records."""
        seeds = seeds or self.p.seeds
        lm = label_mode(mode)
        if not (lm.needs_dense or lm.needs_labeler):
            labeler_epoch = None  # hard labels only: no labeler, so any table's twin stands in
        run_key = f"{distiller}-ipc{ipc}-{arch}-{mode}-n{n}-r{r}-lab{labeler_epoch or 0}"
        if codec is not None:  # part 7: the labels stored in a codec (float32: as made)
            run_key += "-" + re.sub(r"[^a-z0-9]+", "_", parse_codec(codec).spec)
        strategy = tuple(strategy or DEFAULT_STRATEGY)
        if sampler is not None:  # part 8: another sampler's crops, a label strategy
            run_key += "-" + _tag(sampler)
        if strategy != DEFAULT_STRATEGY:
            run_key += "-" + "-".join(_tag(v) for v in strategy)
        key = f"{part}-{run_key}"
        path = self.out / f"{self.p.name}-{key}.json"
        protocol = default_protocol(int(self.test.images.shape[-1]))
        width = self.p.width if arch.startswith("convnet") else None
        want = (self.p.epochs, seeds, width, protocol)
        if path.exists():
            return self._checked(path, want)
        for other in reuse:  # the identical run group, already made for another table
            twin = self.out / f"{self.p.name}-{other}-{run_key}.json"
            if twin.exists():
                print(f"{key}: the part {other} run stands in", flush=True)
                return self.borrow(path, part, twin, want, extra)
        self._pending.append(
            Group(
                part,
                key,
                path,
                distiller,
                ipc,
                mode,
                arch,
                n,
                r,
                labeler_epoch,
                seeds,
                dict(extra or {}),
                reuse,
                parse_codec(codec).spec if codec is not None else None,
                sampler,
                strategy,  # type: ignore[arg-type]
            )
        )
        return None

    def _spec(self, name: str, groups: list[Group]) -> SweepSpec:
        """One sweep over these groups: their sets x archs x modes (labeler modes x labeler
        epochs x N/R), seeds 0..S-1, the profile's width and epochs."""
        labelled = [g for g in groups if g.mode in LABELER_MODES]
        seeds = {g.seeds for g in groups}
        if len(seeds) != 1:
            raise ValueError(f"one sweep needs one seed count, got {sorted(seeds)}")
        zcas = {self.zca(g.distiller) for g in groups}
        if len(zcas) != 1:
            raise ValueError("one sweep holds ZCA-space sets or others, not both")
        zca = zcas.pop()
        return SweepSpec(
            name=name,
            sets=tuple(dict.fromkeys(str(self.set_dir(g.distiller, g.ipc)) for g in groups)),
            source="cifar10",
            archs=tuple(dict.fromkeys(g.arch for g in groups)),
            modes=tuple(dict.fromkeys(g.mode for g in groups)),
            labeler=str(self.labeler_dir(max((g.labeler_epoch or 0) for g in labelled), zca=zca))
            if labelled
            else None,
            zca=zca,
            labeler_epochs=tuple(dict.fromkeys(g.labeler_epoch for g in labelled)),
            nr=tuple(dict.fromkeys((g.n, g.r) for g in labelled)),
            # a group without a codec keeps its labels exact (float32), as the study always has
            codecs=tuple(dict.fromkeys(g.codec or "float32" for g in labelled)),
            samplers=tuple(dict.fromkeys(g.sampler or f"grid:{g.n},{g.r}" for g in labelled))
            if any(g.sampler for g in labelled)
            else (),
            loss_fns=tuple(dict.fromkeys(g.strategy[0] for g in groups)),
            label_schedules=tuple(dict.fromkeys(g.strategy[1] for g in groups)),
            balances=tuple(dict.fromkeys(g.strategy[2] for g in groups)),
            seed_groups=(tuple(range(seeds.pop())),),
            epochs=self.p.epochs,
            width=self.p.width if self.p.width != 128 else None,
            trainer="fast",
            device=str(self.device),
        )

    def flush(self) -> None:
        """Train the queued run groups of a part as sweeps (all at once when their cells form a
        grid, else one sweep per set), then write one record per group."""
        groups, self._pending = self._pending, []
        if not groups:
            return
        part = groups[0].part
        tag = f"study-{self.p.name}-part{part}"
        wanted = {self._cell(g).key: g for g in groups}
        if tag in self._tags:  # a part that flushes more than once (8): one sweep record each
            digest = hashlib.sha256("".join(sorted(wanted)).encode()).hexdigest()[:6]
            tag = f"{tag}-{digest}"
        self._tags.add(tag)
        plans = [groups]
        mixed = len({self.zca(g.distiller) for g in groups}) > 1
        if mixed or {c.key for c in expand(self._spec(tag, groups))} != set(wanted):
            by_set: dict[tuple, list[Group]] = {}
            for g in groups:
                by_set.setdefault((g.distiller, g.ipc, g.seeds), []).append(g)
            plans = list(by_set.values())
        if any(not self._exact(members) for members in plans):  # part 8's strategies: one each
            plans = [[g] for g in groups]
        show = TextProgress(sys.stdout, every=30.0)

        def on_event(ev) -> None:
            show(ev)
            if ev.kind in ("done", "skip"):
                self._write_finished(wanted)  # each record as soon as its cell has run

        try:
            for i, members in enumerate(plans):
                spec = self._spec(f"{tag}-{i}" if len(plans) > 1 else tag, members)
                extra_cells = {c.key for c in expand(spec)} - set(wanted)
                if extra_cells:
                    raise ValueError(f"part {part}: sweep {spec.name} would train unasked cells")
                run_sweep(
                    spec,
                    self.sweep_ws,
                    executor=self.executor,
                    address=self.address,
                    on_event=on_event,
                )
        finally:  # interrupted or failed: the finished cells keep their records
            self._write_finished(wanted)
        missing = [g.key for g in wanted.values() if not g.path.exists()]
        if missing:
            raise RuntimeError(
                f"{missing[0]}: its sweep cell did not finish (see the sweep record)"
            )

    def _exact(self, members: list[Group]) -> bool:
        """Whether one sweep over these groups trains exactly their cells."""
        want = {self._cell(g).key for g in members}
        return {c.key for c in expand(self._spec("exact", members))} == want

    def _write_finished(self, wanted: dict) -> None:
        """Write the record of every wanted group whose cell has a finished run and no record."""
        runs = {  # grid cell id -> its run, from every sweep's record (skipped cells included)
            c.cell: c.run_id
            for rec in list_sweeps(self.sweep_ws)
            for c in rec.cells
            if c.cell and c.run_id is not None and c.status == "done"
        }
        for key, g in wanted.items():
            if key in runs and not g.path.exists():
                self._write(g, self.sweep_ws.db.get_run(runs[key]))

    def _cell(self, g: Group):
        (cell,) = expand(self._spec("one", [g]))
        return cell

    def _write(self, g: Group, run) -> dict:
        """The record of a run group: every field from what the run executed (its recorded
        settled config and plan), never from the request's defaults (a baseline cuts no
        crops, so it has no N or R)."""
        res = run.metrics
        recorded = run.config["train"]
        cfg = TrainConfig.from_dict(recorded)
        plan = run.config.get("plan") or {}
        facts = plan.get("set") or {}
        crops = bool(label_mode(g.mode).crops)
        n = facts.get("n") if facts.get("label_augmented") else recorded.get("n")
        r = facts.get("r") if facts.get("label_augmented") else recorded.get("r")
        rec = {
            "part": g.part,
            "profile": self.p.name,
            "dataset": "cifar10",
            "distiller": g.distiller,
            "ipc": g.ipc,
            "arch": g.arch,
            "mode": g.mode,
            "n": n if crops else None,
            "r": r if crops else None,
            "labeler_epoch": g.labeler_epoch,
            **({"codec": facts.get("codec") or g.codec} if g.codec is not None else {}),
            "epochs": cfg.epochs,
            "seeds": g.seeds,
            "width": self.p.width if g.arch.startswith("convnet") else None,
            "protocol": cfg.protocol,
            "passes": cfg.passes,
            "lr": res["lr"],
            "optimizer": recorded.get("optimizer"),
            "augmentation": recorded.get("augmentation"),
            "loss": cfg.loss,
            **({"full_labels": cfg.full_labels} if "full_labels" in recorded else {}),
            "engine": plan.get("engine"),
            "input_space": facts.get("input_space"),
            "test_space": facts.get("test_space"),
            **_strategy_fields(g, recorded, facts, self.sweep_ws.db.run_dir(run.id)),
            "per_seed": res["per_seed"],
            "mean": res["accuracy_mean"],
            "std": res["accuracy_std"],
            "seconds": res["seconds"],
            "run_id": run.id,
            "device": _device_name(self.device),
            "date": date.today().isoformat(),
            "command": self.command,
            # DSA's cutout centre as drawn: "0..H" for an even side, as DiffAugment draws it;
            # records before that fix (2026-12-07) say "0..H-1" (docs/results/DISCUSSION.md)
            "dsa_cutout": "0..H",
            **g.extra,
        }
        if g.labeler_epoch is not None and not {"labeler_accuracy", "labeler_recipe"} <= set(rec):
            # both, also where a part passes its own labeler_accuracy (part 4 once lost its recipe)
            meta = self.labeler(g.labeler_epoch, zca=self.zca(g.distiller)).meta
            rec.setdefault("labeler_accuracy", meta.test_accuracy)
            rec["labeler_recipe"] = LabelerConfig.from_dict(meta.config).recipe_name
        write_json(g.path, rec, indent=2)
        print(f"{g.key}: {100 * rec['mean']:.1f} +- {100 * rec['std']:.1f}", flush=True)
        return rec

    def borrow(
        self, path: Path, part: str, twin: Path, want: tuple, extra: dict | None = None
    ) -> dict:
        """Write this part's record (`path`) of a run group that another part already trained:
        the same numbers, marked with the run it was borrowed from, plus this part's own fields
        (`extra`: e.g. table 2's storage overhead, table 4's labeler statistics)."""
        rec = {**borrowed_record(part, self._checked(twin, want)), **(extra or {})}
        write_json(path, rec, indent=2)
        return rec

    # -- the six parts (each queues its run groups, then trains them as sweeps) ---------------
    def part1(self, methods: tuple[str, ...] | None = None) -> None:
        for method in methods or ("random", self.p.distiller):
            for ipc in (1, 10):
                self.run("1", distiller=method, ipc=ipc, mode="baseline")
                self.run(
                    "1",
                    distiller=method,
                    ipc=ipc,
                    mode="ladd",
                    labeler_epoch=self.p.labeler_epochs[0],
                )
        self.flush()

    def part2(self) -> None:
        m = self.p.distiller
        plus = self.distilled(m, 11)
        la = self.la_set(m, 10)
        report = set_storage_report(la, full_soft=False)  # the paper's: the dense labels alone
        self.run(
            "2",
            distiller=m,
            ipc=11,
            mode="baseline",
            extra={
                "overhead": set_base_bytes(plus) / report.base_bytes - 1.0,
                "label": "baseline++",
            },
        )
        self.run(
            "2",
            distiller=m,
            ipc=10,
            mode="ladd",
            labeler_epoch=self.p.labeler_epochs[0],
            extra={"overhead": report.overhead, "label": "ladd"},
            reuse=("1",),  # table 1's IPC 10 run groups
        )
        self.run(
            "2",
            distiller=m,
            ipc=10,
            mode="baseline",
            extra={"overhead": 0.0, "label": "baseline"},
            reuse=("1",),
        )
        self.flush()

    def part3(self) -> None:
        m = self.p.distiller
        for n in (3, 5, 7):
            for r in (0.5, 0.625, 0.75):
                la = self.la_set(m, 10, n, r)
                self.run(
                    "3",
                    distiller=m,
                    ipc=10,
                    mode="ladd",
                    n=n,
                    r=r,
                    labeler_epoch=self.p.labeler_epochs[0],
                    seeds=self.p.grid_seeds,
                    extra={"overhead": set_storage_report(la, full_soft=False).overhead},
                    reuse=("1",) if self.p.grid_seeds == self.p.seeds else (),  # N 5, R 0.625
                )
        self.flush()

    def part4(self) -> None:
        m = self.p.distiller
        for e in self.p.labeler_epochs:
            lab = self.labeler(e, zca=self.zca(m))
            la = augment(
                self.distilled(m, 10), lab, N_DEFAULT, R_DEFAULT, device=self.device, codec=None
            )
            stats = crop_stats(la.probs(), la.labels).summary()
            self.run(
                "4",
                distiller=m,
                ipc=10,
                mode="ladd",
                labeler_epoch=e,
                extra={"labeler_accuracy": lab.meta.test_accuracy, **stats},
                reuse=("1",),  # the first labeler epoch is table 1's run group
            )
        self.flush()

    def part5(self) -> None:
        m = self.p.distiller
        for mode in MODES:  # Table 6: every label mode
            self.run(
                "5",
                distiller=m,
                ipc=10,
                mode=mode,
                labeler_epoch=self.p.labeler_epochs[0],
                reuse=("1",),  # LADD here is table 1's run group
            )
        self.flush()

    def part6(self) -> None:
        m = self.p.distiller
        for arch in self.p.archs:
            for mode in ("baseline", "ladd"):
                self.run(
                    "6",
                    distiller=m,
                    ipc=10,
                    mode=mode,
                    arch=arch,
                    labeler_epoch=self.p.labeler_epochs[0],
                    reuse=("5", "1"),  # ConvNet-D3 here is table 5's (and 1's) run group
                )
        self.flush()

    def part7(self) -> None:
        """Accuracy against label bytes (issue 26): LADD at IPC 10 with its dense labels in each
        codec of PART7_CODECS, on random real and the profile's distiller, beside baseline and
        baseline++ (part 1 and 2's run groups). Each record carries the codec's label bytes
        per image and the zip overhead of the set stored that way."""
        for m in dict.fromkeys(("random", self.p.distiller)):
            la = self.la_set(m, 10)
            for spec in self.codecs:
                codec = parse_codec(spec)
                held = la.with_codec(codec)
                as_made = codec.spec == "float32"  # parts 1 and 2's LADD run group
                self.run(
                    "7",
                    distiller=m,
                    ipc=10,
                    mode="ladd",
                    labeler_epoch=self.p.labeler_epochs[0],
                    codec=None if as_made else codec.spec,
                    reuse=("2", "1") if as_made else (),
                    extra={
                        "codec": codec.spec,
                        "label_bytes_per_image": held.label_bytes() / len(held),
                        "overhead": set_storage_report(held, full_soft=False).overhead,
                        "max_abs_error": codec.max_abs_error(held.num_classes),
                    },
                )
            for ipc, label in ((10, "baseline"), (11, "baseline++")):
                plus = self.distilled(m, ipc)
                self.run(
                    "7",
                    distiller=m,
                    ipc=ipc,
                    mode="baseline",
                    extra={
                        "label": label,
                        "label_bytes_per_image": 0.0,
                        "overhead": set_base_bytes(plus) / set_storage_report(la).base_bytes - 1.0,
                    },
                    reuse=("2", "1"),
                )
        self.flush()

    # -- part 8: label strategies under one protocol (issue 37) ---------------------------------
    def part8(self) -> None:
        """Accuracy against label bytes at IPC 10 under one protocol: LADD's grid at N 5 and 3,
        other static samplers at N 5's 25 labels, random crops stored for E epochs (our
        FKD-style store, ladd.fkd_store) at several E and top-k, and each dense loss and
        schedule on LADD's N 5 labels; every label set in PART8_CODEC unless it says otherwise,
        beside the baseline. Run groups are queued in priority order and trained as they come;
        each record is written when its run finishes."""
        labeler_epoch = self.p.labeler_epochs[0]
        # One distiller whole before the next (random real first): its crops and stores, the
        # strategies on its labels, then the stores that trade k for epochs.
        for m in dict.fromkeys(("random", self.p.distiller)):
            self._part8_crops(m, labeler_epoch)
            for strategy in PART8_STRATEGIES:
                self.run(
                    "8",
                    distiller=m,
                    ipc=10,
                    mode="ladd",
                    labeler_epoch=labeler_epoch,
                    codec=PART8_CODEC,
                    strategy=strategy,
                    extra=self._grid_bytes(m, N_DEFAULT),
                )
            self.flush()
            for epochs, codec in PART8_STORES_LATE:
                self.store_run(m, epochs, codec, labeler_epoch)
            for sampler in PART8_SAMPLERS_LATE:
                self.run(
                    "8",
                    distiller=m,
                    ipc=10,
                    mode="ladd",
                    labeler_epoch=labeler_epoch,
                    codec=PART8_CODEC,
                    sampler=sampler,
                    extra={
                        **self._label_bytes(parse_sampler(sampler).num_crops),
                        "coord_bytes_per_image": 0.0,
                    },
                )
            self.flush()

    def _part8_crops(self, m: str, labeler_epoch: int) -> None:
        self.run(
            "8",
            distiller=m,
            ipc=10,
            mode="baseline",
            extra={"label_bytes_per_image": 0.0, "coord_bytes_per_image": 0.0},
            reuse=(),
        )
        for n in (N_DEFAULT, 3):
            self.run(
                "8",
                distiller=m,
                ipc=10,
                mode="ladd",
                n=n,
                labeler_epoch=labeler_epoch,
                codec=PART8_CODEC,
                extra=self._grid_bytes(m, n),
            )
        for sampler in PART8_SAMPLERS:
            count = parse_sampler(sampler).num_crops
            self.run(
                "8",
                distiller=m,
                ipc=10,
                mode="ladd",
                labeler_epoch=labeler_epoch,
                codec=PART8_CODEC,
                sampler=sampler,
                extra={**self._label_bytes(count), "coord_bytes_per_image": 0.0},
            )
        self.flush()
        for epochs, codec in PART8_STORES:
            self.store_run(m, epochs, codec, labeler_epoch)

    def _label_bytes(self, crops: int, codec: str | None = None) -> dict:
        spec = parse_codec(codec or PART8_CODEC)
        return {"label_bytes_per_image": float(spec.bytes_per_crop(10) * crops)}

    def _grid_bytes(self, m: str, n: int) -> dict:
        return {**self._label_bytes(n * n), "coord_bytes_per_image": 0.0}

    def store_dir(self, m: str, ipc: int, labeler_epoch: int) -> Path:
        """Our FKD-style store of a distiller's set (ladd.fkd_store), written once with the most
        epochs part 8 asks for; the runs use its first E epochs."""
        from ladd.fkd_store import StoreConfig, write_store

        epochs = max(e for e, _ in (*PART8_STORES, *PART8_STORES_LATE))
        folder = self.ws / f"fkd-{m}-ipc{ipc}-lab{labeler_epoch}"
        meta = folder / "ladd_store.json"
        if meta.is_file() and json.loads(meta.read_text())["config"]["epochs"] >= epochs:
            return folder
        print(f"writing the stored-crops store of {m} ipc {ipc} ({epochs} epochs)", flush=True)
        write_store(
            self.distilled(m, ipc),
            self.labeler(labeler_epoch, zca=self.zca(m)),
            folder,
            StoreConfig(epochs=epochs),
            device=self.device,
        )
        return folder

    def store_run(self, m: str, epochs: int, codec: str, labeler_epoch: int) -> dict:
        """One run group on stored random crops: LADD's full images with their hard labels and
        the first `epochs` epochs of the store's crops with their labels in `codec`, trained and
        recorded by the pipeline (ladd.fkd_store's own path: the store readers of issue 36 are
        not in this tree)."""
        from ladd.deploy import execute
        from ladd.fkd_store import store_label_bytes, store_training_data
        from ladd.pipeline import record_train
        from ladd.plan import plan_training

        spec = parse_codec(codec).spec
        key = f"8-{m}-ipc10-convnet_d3-store-e{epochs}-lab{labeler_epoch}-{_tag(spec)}"
        path = self.out / f"{self.p.name}-{key}.json"
        protocol = default_protocol(int(self.test.images.shape[-1]))
        want = (self.p.epochs, self.p.seeds, self.p.width, protocol)
        if path.exists():
            return self._checked(path, want)
        folder = self.store_dir(m, 10, labeler_epoch)
        ds = self.distilled(m, 10)
        data = store_training_data(ds, folder, epochs=epochs, codec=spec)
        cfg = TrainConfig(
            arch="convnet_d3",
            mode="ladd",
            epochs=self.p.epochs,
            seeds=tuple(range(self.p.seeds)),
            precision="fp32",
            model_options={"width": self.p.width} if self.p.width != 128 else {},
        )
        plan = plan_training(data, cfg, self.device)
        print(f"{key}: training ({len(data)} samples a pass)", flush=True)
        with progress_bar(key) as cb:
            res = execute(plan, ds, self.test, progress=cb, data=data)
        run_id = record_train(
            self.sweep_ws,
            plan,
            res,
            set_path=folder,
            source="cifar10",
            label=key,
            extra={"store": {"epochs": epochs, "codec": spec}},
        )
        labeler = self.labeler(labeler_epoch, zca=self.zca(m)).meta
        rec = {
            "part": "8",
            "profile": self.p.name,
            "dataset": "cifar10",
            "distiller": m,
            "ipc": 10,
            "arch": "convnet_d3",
            "mode": "ladd",
            "n": None,
            "r": None,
            "labeler_epoch": labeler_epoch,
            "codec": spec,
            "sampler": f"stored random crops: {epochs} epochs",
            "store_epochs": epochs,
            "loss_fn": "soft_ce",
            "label_schedule": "constant",
            "balance": "fixed",
            **store_label_bytes(10, epochs, spec),
            "epochs": cfg.epochs,
            "seeds": self.p.seeds,
            "width": self.p.width,
            "protocol": plan.config.protocol,
            "passes": plan.config.passes,
            "lr": res.lr,
            "optimizer": "sgd",
            "augmentation": plan.config.augmentation or "none",
            "loss": plan.config.loss,
            "engine": plan.engine,
            "per_seed": res.per_seed,
            "mean": res.accuracy_mean,
            "std": res.accuracy_std,
            "seconds": res.seconds,
            "run_id": run_id,
            "device": _device_name(self.device),
            "date": date.today().isoformat(),
            "command": self.command,
            "labeler_accuracy": labeler.test_accuracy,
            "labeler_recipe": LabelerConfig.from_dict(labeler.config).recipe_name,
        }
        write_json(path, rec, indent=2)
        print(f"{key}: {100 * rec['mean']:.1f} +- {100 * rec['std']:.1f}", flush=True)
        return rec


PART7_CODECS = STANDARD_SPECS  # every standard codec, a few k of top-k among them (issue 26)

# Part 8 (issue 37). Every label set in the codec `ladd augment` writes by default (part 7's
# pick), so that equal labels are equal bytes.
PART8_CODEC = "topk:3,uint8"
# Static samplers with the 25 crops of LADD's N 5 grid: two scales (9 at R 0.75 and 16 at R 0.5),
# and a seeded random set of boxes (sides 0.5 to 0.75 of the image, the study's R range).
PART8_SAMPLERS = ("multiscale:3@0.75,4@0.5", "random:25,seed=0")
# Two more draws of the random boxes (run after the rest of a distiller): is a gain of
# seed 0's boxes the sampler's, or that one draw's?
PART8_SAMPLERS_LATE = ("random:25,seed=1", "random:25,seed=2")
# Random crops stored for E epochs (ladd.fkd_store) with their top-k: E 25 = N 5's count of
# labels, E 9 = N 3's; the late ones (run after the strategies) trade the k for more epochs.
PART8_STORES = ((25, "topk:3,uint8"), (9, "topk:3,uint8"))
PART8_STORES_LATE = ((25, "topk:1,uint8"), (50, "topk:1,uint8"))
# The label strategies on LADD's default labels (loss, schedule, balance), each at its upstream
# constants (ladd.strategies).
PART8_STRATEGIES = (
    ("kl", "constant", "fixed"),
    ("gift", "constant", "fixed"),
    ("mse_gt", "constant", "fixed"),
    ("soft_ce", "hald", "fixed"),
    ("kl", "temperature:calibrated", "fixed"),
    ("soft_ce", "constant", "learned"),
)


def mtt_config(ipc: int, p: Profile) -> MTTConfig:
    """MTT's CIFAR-10 hyper-parameters (its paper's table, also DATM's CIFAR-10 IPC-1 lr_lr):
    IPC 1: 50 synthetic steps, 2 expert epochs, start epoch <= 2, lr_img 1000, lr_lr 1e-7;
    IPC 10: 30 steps, 2 expert epochs, start epoch <= 20, lr_img 100, lr_lr 1e-5; lr_teacher
    0.01, ZCA, 5,000 iterations. The profile may cut iterations (stated in the record)."""
    table = {1: (50, 2, 2, 1000.0, 1e-7), 10: (30, 2, 20, 100.0, 1e-5)}
    steps, expert_epochs, start, lr_img, lr_lr = table.get(ipc, (30, 2, 20, 1000.0, 1e-5))
    start = min(start, p.expert_epochs - expert_epochs)
    return MTTConfig(
        ipc=ipc,
        iterations=p.mtt_iterations,
        syn_steps=steps,
        expert_epochs=expert_epochs,
        max_start_epoch=start,
        lr_img=lr_img,
        lr_lr=lr_lr,
        lr_teacher=0.01,
    )


def borrowed_record(part: str, twin: dict) -> dict:
    """The record of `part` for a run group trained for another part (`twin`'s)."""
    origin = twin.get("borrowed_part", twin["part"])  # a borrowed twin names the real run
    rec = {**twin, "part": part, "borrowed": f"the table {origin} run", "borrowed_part": origin}
    return rec


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"CPU ({os.cpu_count()} cores)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="gpu")
    ap.add_argument("--parts", default="1,2,3,4,5,6")
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--executor",
        default="serial",
        choices=("serial", "ray"),
        help="how each part's run groups train: one after another, or as Ray tasks on every "
        "GPU of this machine (or the cluster at --address)",
    )
    ap.add_argument("--address", help="a Ray cluster to join (with --executor ray)")
    ap.add_argument("--workspace", type=Path, default=Path("ladd-workspace"))
    ap.add_argument("--out", type=Path, default=Path("docs/results"))
    ap.add_argument("--epochs", type=int, help="override the profile's deployment epochs")
    ap.add_argument("--seeds", type=int, help="override the profile's seeds")
    ap.add_argument(
        "--labeler-limit", type=int, help="override the labeler's train images per class"
    )
    ap.add_argument("--dm-iterations", type=int, help="override DM's iterations")
    ap.add_argument("--mtt-iterations", type=int, help="override MTT's iterations")
    ap.add_argument("--num-experts", type=int, help="override the number of MTT experts")
    ap.add_argument("--expert-epochs", type=int, help="override the experts' epochs")
    ap.add_argument("--width", type=int, help="override the ConvNet width (rehearsals)")
    ap.add_argument(
        "--labeler-epochs",
        help="override the profile's labeler checkpoints, e.g. 10 (constant lr: a checkpoint "
        "does not depend on how long the labeler trains after it)",
    )
    ap.add_argument(
        "--distillers", help="part 1 only: which distillers, e.g. random (default: random + best)"
    )
    ap.add_argument("--distiller", help="override the distiller of parts 2-7, e.g. random")
    ap.add_argument(
        "--codecs",
        help="part 7's label codecs, separated by ';' (default: PART7_CODECS), e.g. "
        "'float32;topk:5,uint8'",
    )
    ap.add_argument(
        "--archs",
        help="part 6 only: which architectures, e.g. vgg11,alexnet (default: the profile's, all "
        f"five on the GPU, {','.join(CPU_ARCHS)} on the CPU); any of {','.join(ALL_ARCHS)}",
    )
    args = ap.parse_args()
    profile = PROFILES[args.profile]
    if args.epochs:
        profile = replace(profile, epochs=args.epochs)
    if args.seeds:
        profile = replace(profile, seeds=args.seeds, grid_seeds=min(args.seeds, 3))
    if args.distiller:
        profile = replace(profile, distiller=args.distiller)
    if args.labeler_limit:
        profile = replace(profile, labeler_limit=args.labeler_limit)
    overrides = {
        "dm_iterations": args.dm_iterations,
        "mtt_iterations": args.mtt_iterations,
        "num_experts": args.num_experts,
        "expert_epochs": args.expert_epochs,
        "width": args.width,
    }
    profile = replace(profile, **{k: v for k, v in overrides.items() if v})
    if args.archs:
        archs = tuple(a.strip() for a in args.archs.split(","))
        unknown = set(archs) - set(ALL_ARCHS)
        if unknown:
            raise SystemExit(f"unknown architecture(s) {sorted(unknown)}; use {ALL_ARCHS}")
        profile = replace(profile, archs=archs)
    if args.labeler_epochs:
        epochs = tuple(int(e) for e in args.labeler_epochs.split(","))
        profile = replace(profile, labeler_epochs=epochs)
    study = Study(profile, args.workspace, args.out, args.device, args.executor, args.address)
    if args.codecs:
        study.codecs = tuple(c.strip() for c in args.codecs.split(";") if c.strip())
    for part in args.parts.split(","):
        if part.strip() == "1" and args.distillers:
            study.part1(tuple(m.strip() for m in args.distillers.split(",")))
        else:
            getattr(study, f"part{part.strip()}")()


if __name__ == "__main__":
    main()
