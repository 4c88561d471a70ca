"""Commands about labels: the labeler (train-labeler, import-labeler), dense labels (augment),
and what they cost and hold (overhead, stats)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ladd.cli.console import (
    CLIError,
    deprecated,
    fmt_flops,
    guard,
    out,
    print_json,
    progress_bar,
    warn,
)
from ladd.cli.options import (
    AllowUnwhitenedOpt,
    CropRatioOpt,
    CropsPerSideOpt,
    DataRootOpt,
    DebugOpt,
    DeviceOpt,
    DriftLimitOpt,
    DriftThresholdOpt,
    ExperimentOpt,
    ForceOpt,
    FormatOpt,
    JsonOpt,
    MeanOpt,
    NumClassesOpt,
    SamplerOpt,
    SeedOpt,
    SourceOpt,
    StdOpt,
    WorkspaceOpt,
    ZcaOpt,
    int_list,
    model_options,
    open_workspace,
    set_reading,
    torch_device,
)
from ladd.cli.reading import load_set
from ladd.codecs import DEFAULT_CODEC

app = typer.Typer()


@app.command("import-labeler")
def import_labeler(
    checkpoint: Annotated[
        Path, typer.Argument(help="Your trained torchvision model: a state_dict file (.pth).")
    ],
    arch: Annotated[
        str, typer.Option("--arch", help="tv_resnet18 | tv_resnet50 | tv_mobilenet_v2")
    ],
    source: Annotated[
        str, typer.Option("--source", help="The source it was trained on (classes, normalisation).")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="The labeler file to write.")],
    image_size: Annotated[
        int | None, typer.Option("--image-size", min=8, help="Default: the source's size.")
    ] = None,
    force: ForceOpt = False,
    data_root: DataRootOpt = None,
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Use your own trained torchvision network as the labeler (no labeler training): its
    weights, read with torch.load(weights_only=True), become a labeler file for `ladd augment`."""
    with guard(debug):
        from ladd.data import source_info
        from ladd.labeler import import_labeler as do_import
        from ladd.labeler import read_meta

        if not checkpoint.is_file():
            raise CLIError(f"{checkpoint}: no such file")
        ws = open_workspace(workspace)
        info = source_info(source, image_size, cache_dir=ws.cache_dir, data_root=data_root)
        path = do_import(arch, checkpoint, info, out_file, image_size=image_size, force=force)
        meta = read_meta(path)
        out.print(
            f"labeler {path}: {meta.arch}, {meta.num_classes} classes of {meta.source} at "
            f"{meta.image_size} px (ladd augment SET --labeler {path})"
        )


@app.command("train-labeler")
def train_labeler(
    source: Annotated[str, typer.Option("--source", help="Source dataset to train on.")],
    arch: Annotated[
        str | None,
        typer.Option("--arch", help="Architecture (default: ConvNet-D3 at 32 px, D5 at 128 px)."),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 50,
    save_at: Annotated[
        str, typer.Option("--save-at", help="Checkpoint epochs, comma-separated.")
    ] = "10,20,30,40,50",
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Checkpoint folder (default: workspace/labelers/...)."),
    ] = None,
    limit_per_class: Annotated[
        int | None,
        typer.Option("--limit-per-class", min=1, help="Train on a class-balanced subset."),
    ] = None,
    image_size: Annotated[int | None, typer.Option("--image-size", min=8)] = None,
    width: Annotated[
        int | None, typer.Option("--width", min=1, help="ConvNet width (default 128).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 256,
    recipe: Annotated[
        str,
        typer.Option(
            "--recipe",
            help="mtt (default): MTT buffer.py's expert training, as the paper follows: SGD lr 0.01, "
            "momentum 0, weight decay 0, DSA | strong: momentum 0.9, weight decay 5e-4, flips + crops",
        ),
    ] = "mtt",
    lr: Annotated[
        float | None, typer.Option("--lr", min=0.0, help="Override the recipe's lr (0.01).")
    ] = None,
    zca: Annotated[
        bool, typer.Option("--zca", help="Train in ZCA space (to label MTT/DATM CIFAR sets).")
    ] = False,
    no_resume: Annotated[
        bool, typer.Option("--no-resume", help="Start over even if checkpoints exist.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=0,
            help="Image-decoding processes for a streamed source (imagenet1k); default: "
            "min(8, CPUs - 1). 0: decode in this process.",
        ),
    ] = None,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
    device: DeviceOpt = "auto",
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Train the labeler g on a source's training split, saving checkpoints."""
    with guard(debug):
        from ladd.data.streaming import process_workers
        from ladd.labeler import LabelerConfig
        from ladd.pipeline import run_labeler

        ws = open_workspace(workspace)
        cfg = LabelerConfig.recipe(
            recipe,
            arch=arch,
            epochs=epochs,
            save_at=int_list(save_at, "--save-at"),
            **({"lr": lr} if lr is not None else {}),
            batch_size=batch_size,
            seed=seed,
            limit_per_class=limit_per_class,
            image_size=image_size,
            model_options=model_options(width),
            zca=zca,
        )
        with progress_bar("labeler") as cb:
            res = run_labeler(
                ws,
                source,
                cfg,
                out_dir=out_dir,
                device=torch_device(device),
                progress=cb,
                resume=not no_resume,
                data_root=data_root,
                workers=workers if workers is not None else process_workers(),
            )
        table = Table("epoch", "test acc", "file")
        for r in res.checkpoints:
            table.add_row(str(r.epoch), f"{r.test_accuracy:.2%}", Path(r.path).name)
        out.print(table)
        out.print(f"checkpoints in {res.out_dir} (run {res.run_id})")
        if res.checkpoints:
            out.print(f"training FLOPs: {fmt_flops(res.checkpoints[-1].train_flops)}")
        if json_out:
            print_json(
                {
                    "run_id": res.run_id,
                    "out": str(res.out_dir),
                    "checkpoints": [dataclasses.asdict(r) for r in res.checkpoints],
                }
            )


@app.command()
def augment(
    distilled: Annotated[Path, typer.Argument(help="A distilled set (file or folder).")],
    labeler: Annotated[
        Path, typer.Option("--labeler", help="Labeler checkpoint (or its folder: epoch 10).")
    ],
    n: CropsPerSideOpt = 5,
    r: CropRatioOpt = 0.625,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Output file (default: workspace/sets/...).")
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 1.0,
    codec: Annotated[
        str | None,
        typer.Option(
            "--codec",
            help=f"How the file stores the dense labels: {DEFAULT_CODEC} (default, picked by the "
            "study's paired test), float32, float16, bfloat16, "
            "int8:affine, int8:log, topk:K[,float16|uint8][,uniform|renorm] (see `ladd overhead "
            "--codec all`).",
        ),
    ] = None,
    fp16: Annotated[
        bool,
        typer.Option("--fp16", hidden=True, help="Deprecated: say --codec float16."),
    ] = False,
    allow_mismatch: Annotated[
        bool, typer.Option("--allow-mismatch", help="Label even if the input spaces differ.")
    ] = False,
    sampler: SamplerOpt = None,
    force: ForceOpt = False,
    seed: Annotated[
        int | None,
        typer.Option("--seed", hidden=True, help="Deprecated and ignored: nothing is drawn."),
    ] = None,
    json_out: JsonOpt = False,
    data_root: DataRootOpt = None,
    source: SourceOpt = None,
    zca: ZcaOpt = False,
    mean: MeanOpt = None,
    std: StdOpt = None,
    fmt: FormatOpt = None,
    experiment: ExperimentOpt = None,
    num_classes: NumClassesOpt = None,
    allow_unwhitened: AllowUnwhitenedOpt = False,
    device: DeviceOpt = "auto",
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Generate dense labels for a distilled set: write a label-augmented set file."""
    with guard(debug):
        from ladd.pipeline import run_label_augment
        from ladd.torchrun import end_distributed_job, join_torchrun_job

        if seed is not None:
            deprecated(
                "--seed on augment",
                "it is ignored (dense labels draw nothing random); leave it out",
            )
        spec = codec_spec(codec, fp16)
        reading = set_reading(
            source=source, zca=zca, mean=mean, std=std, fmt=fmt, experiment=experiment,
            num_classes=num_classes, allow_unwhitened=allow_unwhitened,
        )  # fmt: skip
        ws = open_workspace(workspace)
        dev = torch_device(device)
        job = join_torchrun_job(dev)  # torchrun: every rank labels its share of the images
        if job is not None:
            dev = job[1]
        ds = load_set(distilled, reading, ws, data_root)
        res = run_label_augment(
            ws,
            ds,
            labeler,
            n=n,
            r=r,
            distilled_path=distilled,
            out=out_file,
            temperature=temperature,
            codec=spec,
            allow_mismatch=allow_mismatch,
            device=dev,
            force=force,
            sampler=sampler,
        )
        if job is not None and not job[0].leader:  # rank 0 writes, records and shows
            end_distributed_job()
        la = res.dataset
        for p in la.labeler.get("mismatch") or []:
            warn(p)
        lab = la.labeler
        out.print(
            f"{len(la)} images x {la.num_crops} crops x {la.num_classes} classes, labeler "
            f"{lab['arch']} epoch {lab['epoch']} (test accuracy {lab['test_accuracy']:.1%})"
        )
        out.print(
            f"label generation: {fmt_flops(la.generation_flops)}, "
            f"labels {la.codec.spec} ({la.label_bytes() / len(la):,.0f} bytes per image), "
            f"storage overhead {res.metrics['overhead']:.2%}"
        )
        out.print(f"label-augmented set written to {res.path} (run {res.run_id})")
        if json_out:
            print_json(
                {
                    "run_id": res.run_id,
                    "out": str(res.path),
                    "overhead": res.metrics["overhead"],
                    "generation_flops": la.generation_flops,
                }
            )
        if job is not None:
            end_distributed_job()


def codec_spec(codec: str | None, fp16: bool = False) -> str | None:
    """--codec as a codec spec (None: the library's default); --fp16, its deprecated old
    spelling for float16, with a warning. A bad spec is a one-line error."""
    from ladd.codecs import CodecError, parse_codec

    try:
        spec = parse_codec(codec).spec if codec is not None else None
    except CodecError as e:
        raise CLIError(f"--codec: {e}") from None
    if not fp16:
        return spec
    deprecated("--fp16", "say --codec float16")
    if spec not in (None, "float16"):
        raise CLIError("--fp16 is --codec float16: give one of them")
    return "float16"


@app.command()
def overhead(
    file: Annotated[Path, typer.Argument(help="A label-augmented set file.")],
    codec: Annotated[
        str | None,
        typer.Option(
            "--codec",
            help="Measure the labels in this codec (a spec, or `all`: every standard codec); "
            "default: as the file stores them.",
        ),
    ] = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Storage overhead of the labels a file stores: zip of uint8 images + every label (the
    dense labels and the full images' soft labels), with vs without, and raw dense-label bytes
    per image; --json adds dense_only_overhead, the paper's figure (section 4: float32 dense
    labels alone)."""
    with guard(debug):
        from ladd.codecs import STANDARD_SPECS
        from ladd.dense import codec_table
        from ladd.sets import LabelAugmentedSet

        la = LabelAugmentedSet.load(file)
        specs = list(STANDARD_SPECS) if codec == "all" else [codec_spec(codec) or la.codec.spec]
        rows = codec_table(la, specs)
        out.print(
            f"set: {len(la)} images, {la.image_size} px, N = {la.n}, R = {la.r:g}, "
            f"{la.num_classes} classes, labels stored as {la.codec.spec}"
        )
        base = rows[0].base_bytes
        out.print(f"zip without dense labels: {base:,} bytes")
        table = Table("codec", "zip with labels", "overhead", "label bytes / image", "max error")
        for row in rows:
            table.add_row(
                row.codec,
                f"{row.zip_bytes:,}",
                f"{row.overhead:.2%}",
                f"{row.label_bytes_per_image:,.0f}",
                f"{row.max_abs_error:.2g}",
            )
        if json_out:
            print_json(
                {
                    "base_bytes": base,
                    "with_dense_bytes": rows[0].zip_bytes,
                    "overhead": rows[0].overhead,
                    "codecs": [dataclasses.asdict(r) for r in rows],
                }
            )
        else:
            out.print(table)
            if len(rows) == 1:
                out.print(f"overhead: {rows[0].overhead:.2%}")


@app.command()
def stats(
    file: Annotated[
        Path, typer.Argument(help="A label-augmented set, or a distilled set with --labeler.")
    ],
    labeler: Annotated[
        list[Path] | None,
        typer.Option("--labeler", help="Labeler checkpoint(s) or a folder of them."),
    ] = None,
    n: CropsPerSideOpt = 5,
    r: CropRatioOpt = 0.625,
    drift: Annotated[
        bool,
        typer.Option(
            "--drift",
            help="Also each crop's JS divergence from its image's label and the drifted crops "
            "(top class not the image's, JS >= --threshold), the farthest first (ladd.drift).",
        ),
    ] = False,
    threshold: DriftThresholdOpt = 0.1,
    limit: DriftLimitOpt = 20,
    json_out: JsonOpt = False,
    source: SourceOpt = None,
    zca: ZcaOpt = False,
    mean: MeanOpt = None,
    std: StdOpt = None,
    fmt: FormatOpt = None,
    experiment: ExperimentOpt = None,
    num_classes: NumClassesOpt = None,
    allow_unwhitened: AllowUnwhitenedOpt = False,
    device: DeviceOpt = "auto",
    workspace: WorkspaceOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Per-crop label statistics: max probability, entropy, agreement with the hard label;
    with --drift each crop's divergence from its image's label and the drifted crops."""
    with guard(debug):
        from ladd.crop_stats import set_crop_stats
        from ladd.sets import LabelAugmentedSet

        reading = set_reading(
            source=source, zca=zca, mean=mean, std=std, fmt=fmt, experiment=experiment,
            num_classes=num_classes, allow_unwhitened=allow_unwhitened,
        )  # fmt: skip
        ws = open_workspace(workspace)
        ds = load_set(file, reading, ws)
        if not labeler and not isinstance(ds, LabelAugmentedSet):
            raise CLIError("a plain distilled set needs --labeler CKPT to compute dense labels")
        res = set_crop_stats(ds, labeler or (), n, r, device=torch_device(device))
        table = Table("labeler epoch", "mean max prob", "mean entropy", "agreement")
        for ep, s in sorted(res.items()):
            table.add_row(
                str(ep),
                f"{s['mean_max_prob']:.3f}",
                f"{s['mean_entropy']:.3f}",
                f"{s['agreement']:.1%}",
            )
        out.print(table)
        found: dict = {str(k): v for k, v in res.items()}
        if drift:
            from ladd.cli.strategies import show_drift
            from ladd.drift import drift_of_set

            moved = drift_of_set(
                ds, labeler or (), n, r, threshold=threshold, device=torch_device(device)
            )
            names = list(getattr(ds, "class_names", None) or [])
            found = {"stats": found, "drift": show_drift(moved, names, limit)}
        if json_out:
            print_json(found)
