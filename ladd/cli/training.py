"""Commands that train models on a set: train, evaluate (cross-architecture), and warmup (the
fast trainer's compile cache). Each gathers its options, has the library plan the run
(ladd.plan.plan_training), runs and records it (ladd.pipeline), and renders the result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ladd.cli.console import CLIError, fmt_flops, guard, note, out, print_json, progress_bar
from ladd.cli.options import (
    AllowUnwhitenedOpt,
    ArchOpt,
    BalanceOpt,
    BatchSizeOpt,
    DataRootOpt,
    DebugOpt,
    DeviceOpt,
    EpochsOpt,
    ExperimentOpt,
    FkdSeedOpt,
    FormatOpt,
    FullLabelsOpt,
    JsonOpt,
    LabelScheduleOpt,
    LossFnOpt,
    LossOpt,
    LrOpt,
    MeanOpt,
    ModeOpt,
    NoDsaOpt,
    NumClassesOpt,
    PrecisionOpt,
    ProtocolOpt,
    SamplerOpt,
    SeedOpt,
    SeedsOpt,
    SoftLabelsOpt,
    SourceOpt,
    StdOpt,
    StudentTemperatureOpt,
    TemperatureOpt,
    TrainerOpt,
    WidthOpt,
    WorkspaceOpt,
    ZcaOpt,
    model_options,
    open_workspace,
    set_reading,
    torch_device,
    train_config,
)
from ladd.cli.reading import load_training_set, with_soft_labels

if TYPE_CHECKING:
    import torch

    from ladd.plan import TrainPlan
    from ladd.results import DeployResult

app = typer.Typer()

ArchsOpt = Annotated[
    str | None, typer.Option("--archs", help="Comma-separated (default: the paper's five).")
]
GpusOpt = Annotated[
    int,
    typer.Option(
        "--gpus",
        min=0,
        help="Train one run over G processes on this machine, one per GPU (gloo processes "
        "with --device cpu): launches torchrun --standalone --nproc_per_node=G -m ladd "
        "train ... with --trainer ddp. 0 or 1: this process alone. Several machines: "
        "torchrun's own rendezvous flags (README).",
    ),
]
MonitorEveryOpt = Annotated[
    int,
    typer.Option(
        "--monitor-every",
        min=0,
        help="Every so many epochs, print each seed's accuracy on a fixed 500-image subset "
        "of the test split (shown only; nothing is chosen on it). 0: off.",
    ),
]


@app.command()
def train(
    file: Annotated[Path, typer.Argument(help="A label-augmented set or any distilled set.")],
    arch: ArchOpt = "convnet_d3",
    mode: ModeOpt = "ladd",
    protocol: ProtocolOpt = "auto",
    epochs: EpochsOpt = 1000,
    seeds: SeedsOpt = 5,
    loss: LossOpt = "mean",
    full_labels: FullLabelsOpt = "hard",
    lr: LrOpt = None,
    batch_size: BatchSizeOpt = 256,
    width: WidthOpt = None,
    trainer: TrainerOpt = "fast",
    precision: PrecisionOpt = "auto",
    no_dsa: NoDsaOpt = False,
    loss_fn: LossFnOpt = "soft_ce",
    label_schedule: LabelScheduleOpt = "constant",
    balance: BalanceOpt = "fixed",
    sampler: SamplerOpt = None,
    monitor_every: MonitorEveryOpt = 0,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
    gpus: GpusOpt = 0,
    source: SourceOpt = None,
    zca: ZcaOpt = False,
    mean: MeanOpt = None,
    std: StdOpt = None,
    fmt: FormatOpt = None,
    experiment: ExperimentOpt = None,
    num_classes: NumClassesOpt = None,
    allow_unwhitened: AllowUnwhitenedOpt = False,
    soft_labels: SoftLabelsOpt = None,
    label_temperature: TemperatureOpt = None,
    student_temperature: StudentTemperatureOpt = None,
    fkd_seed: FkdSeedOpt = 42,
    device: DeviceOpt = "auto",
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Train fresh models on a set and test them on the source's real test split."""
    with guard(debug):
        from ladd.pipeline import run_train
        from ladd.plan import plan_training
        from ladd.torchrun import end_distributed_job, join_torchrun_job, launch_local_ranks

        if gpus > 1:
            argv = sys.argv[1:]
            if "train" not in argv:
                raise CLIError("--gpus launches the command line again: run it as `ladd train ...`")
            code = launch_local_ranks(
                gpus,
                argv,
                device,
                announce=lambda cmd: note(f"launching {gpus} ranks: torchrun {' '.join(cmd[3:])}"),
            )
            raise typer.Exit(code)
        cfg = train_config(
            arch, seed, mode=mode, protocol=protocol, epochs=epochs, seeds=seeds, loss=loss,
            full_labels=full_labels, lr=lr, batch_size=batch_size, width=width, trainer=trainer,
            precision=precision, no_dsa=no_dsa, loss_fn=loss_fn, label_schedule=label_schedule,
            balance=balance, sampler=sampler,
        )  # fmt: skip
        reading = set_reading(
            source=source, zca=zca, mean=mean, std=std, fmt=fmt, experiment=experiment,
            num_classes=num_classes, allow_unwhitened=allow_unwhitened,
        )  # fmt: skip
        ws = open_workspace(workspace)
        dev = torch_device(device)
        job = join_torchrun_job(dev)
        if job is not None:
            dev = job[1]
        ds, test = load_training_set(file, reading, ws, data_root)
        ds = with_soft_labels(
            file, ds, soft_labels, label_temperature=label_temperature,
            student_temperature=student_temperature, fkd_seed=fkd_seed,
        )  # fmt: skip
        plan = plan_training(ds, cfg, dev)  # under torchrun the plan's engine is ddp
        _warn_long(cfg.epochs, dev)
        if job is None or job[0].leader:
            cost_note(plan, job[0].world if job is not None else 1)
        if job is not None and not job[0].leader:  # rank 0 shows, records and writes
            run_train(ws, plan, ds, test, set_path=file, reading=reading)
            end_distributed_job()
        with progress_bar(f"train {arch} ({cfg.mode})") as cb:
            run_id, res = run_train(
                ws,
                plan,
                ds,
                test,
                set_path=file,
                source=reading.source,
                progress=cb,
                monitor_every=monitor_every,
                reading=reading,
            )
        table = Table("seed", "top-1")
        for s, a in zip(cfg.seeds, res.per_seed, strict=True):
            table.add_row(str(s), f"{a:.2%}")
        out.print(table)
        out.print(
            f"{arch} / {cfg.mode}: {res.accuracy_mean:.2%} +- {res.accuracy_std:.2%} over "
            f"{len(res.per_seed)} seed(s), protocol {res.config.protocol}, lr {res.lr:g}, "
            f"{res.num_samples} samples/epoch, {res.seconds:.1f} s, {fmt_flops(res.flops)}"
        )
        if res.engine:
            out.print(_engine_line(res.engine))
        out.print(f"run {run_id}: results and model weights in {ws.db.run_dir(run_id)}")
        if json_out:
            print_json(_result_json(run_id, res))
        if job is not None:
            end_distributed_job()


@app.command()
def evaluate(
    file: Annotated[Path, typer.Argument(help="A label-augmented set or any distilled set.")],
    archs: ArchsOpt = None,
    mode: ModeOpt = "ladd",
    protocol: ProtocolOpt = "auto",
    epochs: EpochsOpt = 1000,
    seeds: SeedsOpt = 5,
    loss: LossOpt = "mean",
    full_labels: FullLabelsOpt = "hard",
    lr: LrOpt = None,
    batch_size: BatchSizeOpt = 256,
    width: WidthOpt = None,
    trainer: TrainerOpt = "fast",
    precision: PrecisionOpt = "auto",
    no_dsa: NoDsaOpt = False,
    loss_fn: LossFnOpt = "soft_ce",
    label_schedule: LabelScheduleOpt = "constant",
    balance: BalanceOpt = "fixed",
    sampler: SamplerOpt = None,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
    source: SourceOpt = None,
    zca: ZcaOpt = False,
    mean: MeanOpt = None,
    std: StdOpt = None,
    fmt: FormatOpt = None,
    experiment: ExperimentOpt = None,
    num_classes: NumClassesOpt = None,
    allow_unwhitened: AllowUnwhitenedOpt = False,
    soft_labels: SoftLabelsOpt = None,
    label_temperature: TemperatureOpt = None,
    student_temperature: StudentTemperatureOpt = None,
    fkd_seed: FkdSeedOpt = 42,
    device: DeviceOpt = "auto",
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Cross-architecture evaluation (the paper's Table 2)."""
    with guard(debug):
        from ladd.deploy import plan_architectures
        from ladd.models import check_model_options, list_models, supported_options
        from ladd.pipeline import run_evaluate

        arch_list = [a.strip() for a in archs.split(",") if a.strip()] if archs else None
        known = set(list_models())
        for a in arch_list or []:
            if a not in known:
                raise typer.BadParameter(
                    f"unknown model {a!r}; known: {', '.join(sorted(known))}", param_hint="--archs"
                )
        # a width reaches the ConvNets among the architectures (ladd.models.supported_options);
        # an option none of them takes is an error
        cfg = train_config(
            (arch_list or ["convnet_d3"])[0], seed, mode=mode, protocol=protocol, epochs=epochs,
            seeds=seeds, loss=loss, full_labels=full_labels, lr=lr, batch_size=batch_size,
            width=width, trainer=trainer, precision=precision, no_dsa=no_dsa, loss_fn=loss_fn,
            label_schedule=label_schedule, balance=balance, sampler=sampler, check_options=False,
        )  # fmt: skip
        if arch_list and cfg.model_options:
            if not any(supported_options(a, cfg.model_options) for a in arch_list):
                check_model_options(arch_list[0], cfg.model_options)
        reading = set_reading(
            source=source, zca=zca, mean=mean, std=std, fmt=fmt, experiment=experiment,
            num_classes=num_classes, allow_unwhitened=allow_unwhitened,
        )  # fmt: skip
        ws = open_workspace(workspace)
        dev = torch_device(device)
        ds, test = load_training_set(file, reading, ws, data_root)
        ds = with_soft_labels(
            file, ds, soft_labels, label_temperature=label_temperature,
            student_temperature=student_temperature, fkd_seed=fkd_seed,
        )  # fmt: skip
        plans = plan_architectures(ds, cfg, arch_list, dev)
        _warn_long(cfg.epochs, dev)
        with progress_bar(f"evaluate ({cfg.mode})") as cb:
            run_id, res = run_evaluate(
                ws,
                plans,
                ds,
                test,
                set_path=file,
                source=reading.source,
                progress=cb,
                reading=reading,
            )
        table = Table("architecture", "top-1 (mean +- std)", "seconds")
        for row in res.table():
            table.add_row(
                row["arch"],
                f"{row['accuracy_mean']:.2%} +- {row['accuracy_std']:.2%}",
                f"{row['seconds']:.1f}",
            )
        table.add_row("average", f"{res.average:.2%}", "")
        out.print(table)
        out.print(f"run {run_id}: results and model weights in {ws.db.run_dir(run_id)}")
        if json_out:
            print_json(
                {
                    "run_id": run_id,
                    "accuracy_mean": res.average,
                    "accuracy_std": None,
                    "table": res.table(),
                    "archs": {a: _result_json(run_id, r) for a, r in res.results.items()},
                    "seconds": sum(r.seconds for r in res.results.values()),
                    "flops": sum(r.flops for r in res.results.values()),
                }
            )


@app.command()
def warmup(
    arch: ArchOpt = "convnet_d3",
    image_size: Annotated[int, typer.Option("--image-size", min=8)] = 32,
    classes: Annotated[int, typer.Option("--classes", min=2)] = 10,
    seeds: Annotated[int, typer.Option("--seeds", min=1)] = 5,
    batch_size: BatchSizeOpt = 256,
    width: WidthOpt = None,
    precision: PrecisionOpt = "auto",
    no_dsa: NoDsaOpt = False,
    loss_fn: LossFnOpt = "soft_ce",
    label_schedule: LabelScheduleOpt = "constant",
    balance: BalanceOpt = "fixed",
    sampler: SamplerOpt = None,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Also write portable compile artifacts to this file."),
    ] = None,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Compile the fast trainer's step for these shapes now, into the workspace's cache, so
    that later `ladd train` runs (and the dashboard's) start without compiling."""
    with guard(debug):
        from ladd.compile_cache import compile_cache_dir
        from ladd.trainers.warmup import warmup as do_warmup

        ws = open_workspace(workspace)
        rep = do_warmup(
            arch,
            image_size,
            num_classes=classes,
            seeds=seeds,
            batch_size=batch_size,
            precision=precision,
            model_options=model_options(width),
            dsa=not no_dsa,
            device=torch_device(device),
            cache_dir=compile_cache_dir(ws.cache_dir / "compile"),
            export=export,
        )
        eager = f"{rep.eager_step_seconds * 1e3:.1f} ms" if rep.eager_step_seconds else "?"
        comp = f"{rep.compiled_step_seconds * 1e3:.1f} ms" if rep.compiled_step_seconds else "none"
        out.print(
            f"{arch} at {image_size} px, {seeds} seeds: compile mode {rep.compile_mode}, "
            f"{rep.seconds_compile:.1f} s compiling; a step takes {eager} eager, {comp} compiled"
        )
        out.print(f"cache: {rep.cache_dir or 'not used'}")
        for line in rep.notes:
            note(line)
        if json_out:
            print_json(rep.to_dict())


def cost_note(plan: TrainPlan, world: int = 1, *, over_s: float = 600.0) -> None:
    """Before a long training: its estimated time from the cost model (ladd.sweep.cost), from
    the plan's figures, said to be an estimate and on what it rests; nothing for a run
    estimated under `over_s`."""
    from ladd.sweep.cost import estimate_plan

    dev = plan.torch_device
    est = estimate_plan(plan)
    if est.seconds is None or est.seconds < over_s:
        return
    hours = est.seconds / 3600
    where = f"{hours:.1f} {dev.type} hours" if dev.type == "cuda" else f"{hours:.1f} hours"
    split = f", ~{hours / world:.1f} h on {world} ranks" if world > 1 else ""
    note(
        f"estimated training time ~{where}{split} ({est.seed_samples:,} seed-samples at "
        f"~{est.samples_per_s:,.0f}/s; {est.basis})"
    )


def _warn_long(epochs: int, dev: torch.device) -> None:
    if dev.type == "cpu" and epochs >= 200:
        note(
            f"{epochs} epochs on a CPU takes long; try --epochs 50 for a quick look, "
            "or --device cuda"
        )


def _engine_line(e: dict[str, Any]) -> str:
    """How the fast trainer ran, in one line: engine, compile mode, precision, where the time
    went and the compile policy's reason (why eager, compiled or sequential)."""
    line = (
        f"engine: {e.get('engine')} ({e.get('layout')}), compile {e.get('compile_mode')}, "
        f"{e.get('precision')}; {e.get('seconds_compile', 0.0):.1f} s compiling, "
        f"{e.get('seconds_train', 0.0):.1f} s training"
    )
    return f"{line}; {e['decision']}" if e.get("decision") else line


def _result_json(run_id: int, res: DeployResult) -> dict[str, Any]:
    d = res.to_dict()
    return {
        "run_id": run_id,
        "accuracy_mean": d["accuracy_mean"],
        "accuracy_std": d["accuracy_std"],
        "per_seed": d["per_seed"],
        "per_class": d["per_class_mean"],
        "seconds": d["seconds"],
        "flops": d["flops"],
        "lr": d["lr"],
        "mode": d["config"]["mode"],
        "arch": d["config"]["arch"],
        "protocol": d["config"]["protocol"],
        # how the fast trainer ran: compile mode, precision, compile vs train seconds (null
        # for the reference loop)
        "engine": d.get("engine"),
    }
