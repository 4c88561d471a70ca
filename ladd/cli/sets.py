"""Commands about sets and what LADD knows: info, sources, models, random-real, and the
built-in distillers (distill, experts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ladd.cli.console import CLIError, guard, out, print_json, progress_bar
from ladd.cli.options import (
    AllowUnwhitenedOpt,
    DataRootOpt,
    DebugOpt,
    DeviceOpt,
    ExperimentOpt,
    ForceOpt,
    FormatOpt,
    JsonOpt,
    MeanOpt,
    NumClassesOpt,
    SeedOpt,
    SourceOpt,
    StdOpt,
    WorkspaceOpt,
    ZcaOpt,
    model_options,
    open_workspace,
    set_reading,
    torch_device,
)
from ladd.cli.reading import load_set

app = typer.Typer()


@app.command()
def info(
    path: Annotated[
        Path, typer.Argument(help="A distilled-set file/folder or a label-augmented file.")
    ],
    source: SourceOpt = None,
    zca: ZcaOpt = False,
    mean: MeanOpt = None,
    std: StdOpt = None,
    fmt: FormatOpt = None,
    experiment: ExperimentOpt = None,
    num_classes: NumClassesOpt = None,
    allow_unwhitened: AllowUnwhitenedOpt = False,
    json_out: JsonOpt = False,
    data_root: DataRootOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Describe a distilled set or a label-augmented set (its warnings on stderr)."""
    with guard(debug):
        reading = set_reading(
            source=source, zca=zca, mean=mean, std=std, fmt=fmt, experiment=experiment,
            num_classes=num_classes, allow_unwhitened=allow_unwhitened,
        )  # fmt: skip
        ds = load_set(path, reading, data_root=data_root, describe_only=True)
        d = ds.describe()
        if not isinstance(d, dict):  # a describe() that returns text
            out.print(str(d))
            return
        from ladd.sets import LabelAugmentedSet

        if isinstance(ds, LabelAugmentedSet):  # the paper's zip measurement, in its codec
            from ladd.dense import set_storage_report

            d["zip_overhead"] = set_storage_report(ds).overhead
        table = Table(show_header=False, box=None)
        for k, v in d.items():
            if k == "warnings" and not v:
                continue
            table.add_row(str(k), _short(v))
        out.print(table)
        if json_out:
            print_json(d)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and len(v) > 12:
        return f"{list(v[:12])}... ({len(v)} items)"
    if isinstance(v, (list, tuple)) and all(isinstance(x, float) for x in v):
        return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
    return str(v)


@app.command()
def sources(debug: DebugOpt = False) -> None:
    """List the source datasets LADD knows."""
    with guard(debug):
        from ladd.data import list_sources

        for name in list_sources():
            out.print(name)


@app.command()
def models(debug: DebugOpt = False) -> None:
    """List the architectures (with their deployment lrs), label modes and protocols."""
    with guard(debug):
        from ladd.models import default_lr, list_models
        from ladd.training import MODES, PROTOCOLS, TRAINERS

        table = Table("model", "lr @32px", "lr @128px")
        for name in list_models():
            table.add_row(name, f"{default_lr(name, 32):g}", f"{default_lr(name, 128):g}")
        out.print(table)
        modes = Table("mode (--mode)", "trains on")
        for m in MODES.values():
            modes.add_row(m.name, m.description)
        out.print(modes)
        protocols = Table("protocol (--protocol)", "what it is")
        for p in PROTOCOLS.values():
            protocols.add_row(p.name, p.description)
        out.print(protocols)
        out.print(f"trainers (--trainer): {', '.join(TRAINERS)}")


@app.command("random-real")
def random_real(
    source: Annotated[str, typer.Option("--source", help="Source dataset to draw from.")],
    ipc: Annotated[int, typer.Option("--ipc", min=1, help="Images per class.")] = 10,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (MTT layout).")
    ] = None,
    image_size: Annotated[int | None, typer.Option("--image-size", min=8)] = None,
    force: ForceOpt = False,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Make the random-real baseline set: IPC seeded-random real training images per class."""
    with guard(debug):
        from ladd.distill import RandomConfig
        from ladd.pipeline import run_distill

        ws = open_workspace(workspace)
        res = run_distill(
            ws,
            source,
            "random",
            RandomConfig(ipc=ipc, seed=seed),
            out_dir=out_dir,
            image_size=image_size,
            data_root=data_root,
            force=force,
        )
        ds = res.dataset
        out.print(
            f"{len(ds)} images ({ipc} per class, {ds.image_size} px) written to "
            f"{res.path} (run {res.run_id})"
        )


@app.command()
def experts(
    source: Annotated[str, typer.Option("--source", help="Source dataset to train on.")],
    arch: Annotated[str, typer.Option("--arch")] = "convnet_d3",
    num_experts: Annotated[int, typer.Option("--num-experts", min=1)] = 5,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 30,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Expert (teacher) lr.")] = 0.01,
    width: Annotated[int | None, typer.Option("--width", min=1, help="ConvNet width.")] = None,
    zca: Annotated[bool, typer.Option("--zca", help="Train in ZCA space (CIFAR).")] = False,
    limit_per_class: Annotated[int | None, typer.Option("--limit-per-class", min=1)] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Expert folder.")] = None,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Train MTT expert trajectories (parameters saved after every epoch); resumable."""
    with guard(debug):
        from ladd.distill import ExpertConfig
        from ladd.pipeline import run_experts

        ws = open_workspace(workspace)
        cfg = ExpertConfig(
            arch=arch,
            num_experts=num_experts,
            epochs=epochs,
            lr=lr,
            zca=zca,
            seed=seed,
            model_options=model_options(width),
        )
        with progress_bar("experts") as cb:
            run_id, folder, paths = run_experts(
                ws,
                source,
                cfg,
                out_dir=out_dir,
                limit_per_class=limit_per_class,
                data_root=data_root,
                device=torch_device(device),
                progress=cb,
            )
        out.print(f"{len(paths)} expert trajectories in {folder} (run {run_id})")


@app.command()
def distill(
    source: Annotated[str, typer.Option("--source", help="Source dataset to distil.")],
    method: Annotated[str, typer.Option("--method", help="random | dm | mtt")] = "dm",
    ipc: Annotated[int, typer.Option("--ipc", min=1, help="Images per class.")] = 10,
    iterations: Annotated[int, typer.Option("--iterations", min=1)] = 1000,
    arch: Annotated[str, typer.Option("--arch", help="DM embedding network.")] = "convnet_d3",
    width: Annotated[int | None, typer.Option("--width", min=1, help="ConvNet width.")] = None,
    experts_dir: Annotated[
        Path | None, typer.Option("--experts", help="MTT: folder of `ladd experts` output.")
    ] = None,
    syn_steps: Annotated[int, typer.Option("--syn-steps", min=1, help="MTT student steps.")] = 30,
    expert_epochs: Annotated[int, typer.Option("--expert-epochs", min=1)] = 2,
    max_start_epoch: Annotated[int, typer.Option("--max-start-epoch", min=0)] = 20,
    lr_img: Annotated[
        float | None, typer.Option("--lr-img", help="Image lr (DM 1.0, MTT 1000).")
    ] = None,
    limit_per_class: Annotated[int | None, typer.Option("--limit-per-class", min=1)] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (MTT layout).")
    ] = None,
    force: ForceOpt = False,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Distil a source with a built-in method; writes images_best.pt, labels_best.pt, lr_best.pt."""
    with guard(debug):
        from ladd.distill import METHODS, DMConfig, MTTConfig, RandomConfig, list_experts
        from ladd.pipeline import run_distill

        if method not in METHODS:
            raise typer.BadParameter(f"--method must be one of {', '.join(METHODS)}")
        ws = open_workspace(workspace)
        experts_list = None
        lr_kw = {"lr_img": lr_img} if lr_img else {}
        if method == "random":
            cfg: Any = RandomConfig(ipc=ipc, seed=seed)
        elif method == "dm":
            cfg = DMConfig(
                ipc=ipc,
                iterations=iterations,
                arch=arch,
                model_options=model_options(width),
                seed=seed,
                **lr_kw,
            )
        else:
            if experts_dir is None:
                raise CLIError("--method mtt needs --experts DIR (run `ladd experts`)")
            experts_list = list_experts(experts_dir)
            cfg = MTTConfig(
                ipc=ipc,
                iterations=iterations,
                syn_steps=syn_steps,
                expert_epochs=expert_epochs,
                max_start_epoch=max_start_epoch,
                seed=seed,
                **lr_kw,
            )
        with progress_bar(method) as cb:
            res = run_distill(
                ws,
                source,
                method,
                cfg,
                out_dir=out_dir,
                experts=experts_list,
                limit_per_class=limit_per_class,
                data_root=data_root,
                device=torch_device(device),
                progress=cb,
                force=force,
            )
        peak = (res.metrics.get("peak_memory_bytes") or 0) / 2**20
        out.print(
            f"{method}: {len(res.dataset)} images written to {res.path} "
            f"({res.metrics['seconds']:.1f} s, peak memory {peak:.0f} MiB, run {res.run_id})"
        )
