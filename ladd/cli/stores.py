"""Commands about the field's soft-label stores and scores: convert (a store into our memory-mapped
layout) and score (a set under its own labels, hard labels, no augmentation and LADD's dense
labels beside random-real twins, with DD-Ranking's scores). Each gathers its options, calls one
library function (ladd.stores.convert_store; ladd.score.plan_score / run_score) and renders it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ladd.cli.console import CLIError, guard, note, out, print_json, progress_bar, warn
from ladd.cli.options import (
    AllowUnwhitenedOpt,
    ArchOpt,
    BatchSizeOpt,
    DataRootOpt,
    DebugOpt,
    DeviceOpt,
    EpochsOpt,
    ExperimentOpt,
    FkdSeedOpt,
    ForceOpt,
    FormatOpt,
    JsonOpt,
    LrOpt,
    MeanOpt,
    NumClassesOpt,
    PrecisionOpt,
    ProtocolOpt,
    SeedOpt,
    SeedsOpt,
    SoftLabelsOpt,
    SourceOpt,
    StdOpt,
    StudentTemperatureOpt,
    TemperatureOpt,
    WidthOpt,
    WorkspaceOpt,
    ZcaOpt,
    model_options,
    open_workspace,
    seed_range,
    set_reading,
)
from ladd.codecs import DEFAULT_CODEC

app = typer.Typer()


@app.command()
def convert(
    store: Annotated[Path, typer.Argument(help="A soft-label store (any family).")],
    out_file: Annotated[Path, typer.Option("--out", help="The safetensors file to write.")],
    images: Annotated[
        Path | None,
        typer.Option(
            "--set", help="The image folder it was made from: checked to be the store's first."
        ),
    ] = None,
    codec: Annotated[
        str | None,
        typer.Option(
            "--codec",
            help="Keep the targets softmax(logits / T) in a LADD codec (float16, topk:5,uint8, "
            "...; needs --temperature). Default: the labels exactly as stored.",
        ),
    ] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", help="T of the probabilities a codec keeps.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Convert the first E epochs only.")
    ] = None,
    num_classes: NumClassesOpt = None,
    fkd_seed: FkdSeedOpt = 42,
    source: SourceOpt = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a soft-label store once into LADD's memory-mapped safetensors layout (boxes, flips,
    mix parameters, labels as stored or in a LADD codec), recording its source."""
    with guard(debug):
        from ladd.stores import convert_store, open_store

        if out_file.exists() and not force:
            raise CLIError(f"{out_file} exists: give --force to replace it")
        opened = open_store(store, fkd_seed=fkd_seed)
        k = num_classes
        if images is not None:
            from ladd.sets import load_set
            from ladd.stores.pairing import open_soft_label_set

            ds = load_set(images, source=source, describe_only=True)
            sset = open_soft_label_set(images, opened, dataset=ds, fkd_seed=fkd_seed)
            k = k or sset.num_classes
        with progress_bar("convert") as cb:
            from ladd.progress import ProgressEvent

            path = convert_store(
                opened,
                out_file,
                codec=codec,
                temperature=temperature,
                num_classes=k,
                epochs=epochs,
                progress=lambda i, n: cb(ProgressEvent("convert", i, n, None, "batches")),
            )
        done = open_store(path).info()
        src = opened.info()
        for line in done.lines():
            out.print(line)
        out.print(
            f"wrote {path}: {done.bytes:,} bytes ({done.label_bytes:,} of labels) from "
            f"{src.bytes:,} bytes in {src.files:,} files"
        )
        if json_out:
            print_json({"out": str(path), "store": done.to_dict(), "source": src.to_dict()})


@app.command()
def score(
    file: Annotated[Path, typer.Argument(help="The distilled set (an image folder, any format).")],
    soft_labels: SoftLabelsOpt = None,
    labeler: Annotated[
        Path | None,
        typer.Option("--labeler", help="A labeler checkpoint or folder: adds LADD's dense labels."),
    ] = None,
    n: Annotated[int, typer.Option("--crops-per-side", "--n", min=1)] = 5,
    r: Annotated[float, typer.Option("--crop-ratio", "--r")] = 0.625,
    codec: Annotated[
        str, typer.Option("--codec", help="The dense labels' codec (default: ladd augment's).")
    ] = DEFAULT_CODEC,
    arch: ArchOpt = "convnet_d3",
    protocol: ProtocolOpt = "auto",
    epochs: EpochsOpt = 1000,
    seeds: SeedsOpt = 5,
    lr: LrOpt = None,
    batch_size: BatchSizeOpt = 256,
    width: WidthOpt = None,
    precision: PrecisionOpt = "fp32",
    full_accuracy: Annotated[
        float | None,
        typer.Option(
            "--full-accuracy",
            help="The full-data accuracy for the hard-label recovery, a fraction (say where it "
            "comes from with --full-note).",
        ),
    ] = None,
    full_note: Annotated[str, typer.Option("--full-note")] = "",
    full_epochs: Annotated[
        int | None,
        typer.Option(
            "--full-epochs",
            min=1,
            help="Train the whole train split this many epochs (same pipeline) for HLR instead.",
        ),
    ] = None,
    full_seeds: Annotated[
        int,
        typer.Option(
            "--full-seeds",
            min=1,
            help="How many seeds train the full split (1: one full-data number for every "
            "pair, as DD-Ranking's cached one).",
        ),
    ] = 1,
    label_temperature: TemperatureOpt = None,
    student_temperature: StudentTemperatureOpt = None,
    paper: Annotated[
        list[str] | None,
        typer.Option(
            "--paper",
            help="A paper's figure shown beside ours, labelled as theirs (best epoch): "
            "'VARIANT=TEXT', e.g. 'shipped=RDED-I (S) 23.6 (their best epoch)'. Repeatable.",
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Names the score's runs.")] = "score",
    executor: Annotated[
        str, typer.Option("--executor", help="serial | ray (as `ladd sweep`).")
    ] = "serial",
    address: Annotated[str | None, typer.Option("--address", help="A Ray cluster.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and estimate only; train nothing.")
    ] = False,
    out_json: Annotated[
        Path | None, typer.Option("--out", help="Write the score's JSON record here.")
    ] = None,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
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
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """How good is a set, and how much of it is its labels: the set under its own labels, hard
    labels, no augmentation and LADD's dense labels, each beside a same-IPC random-real twin
    trained by the same pipeline; mean +- std over seeds, label bytes, and DD-Ranking's HLR,
    IOR, LRS and ARS. Resumable: what is recorded is not trained again."""
    with guard(debug):
        from ladd.files import write_json
        from ladd.score import ScoreSpec, plan_score, run_score

        if not file.exists():
            raise CLIError(f"{file}: no such file or folder")
        reading = set_reading(
            source=source, zca=zca, mean=mean, std=std, fmt=fmt, experiment=experiment,
            num_classes=num_classes, allow_unwhitened=allow_unwhitened,
        )  # fmt: skip
        spec = ScoreSpec(
            str(file),
            reading=reading,
            soft_labels=str(soft_labels) if soft_labels is not None else None,
            label_temperature=label_temperature,
            student_temperature=student_temperature,
            labeler=str(labeler) if labeler is not None else None,
            n=n,
            r=r,
            codec=codec,
            arch=arch,
            model_options=model_options(width),
            epochs=epochs,
            seeds=seed_range(seed, seeds),
            protocol=protocol,
            lr=lr,
            batch_size=batch_size,
            precision=precision,
            full_accuracy=full_accuracy,
            full_note=full_note,
            full_epochs=full_epochs,
            full_seeds=full_seeds,
            paper=dict(p.split("=", 1) for p in (paper or []) if "=" in p),
            name=name,
            device=device,
            data_root=str(data_root) if data_root is not None else None,
        )
        if spec.full_accuracy is None and not spec.full_epochs:
            warn("no --full-accuracy or --full-epochs: HLR and LRS are left out")
        ws = open_workspace(workspace)
        with progress_bar("score: preparing") as cb:
            plan = plan_score(spec, ws, progress=cb)
        for w in plan.notes:
            warn(w)
        note(plan.summary())
        if dry_run:
            for c in plan.cells:
                done = "recorded" if c.key in plan.recorded else "to run"
                out.print(f"{c.label}: {c.plan.config.mode}, {done}")
            return
        with progress_bar(f"score {name}") as cb:
            result = run_score(plan, ws, executor=executor, address=address, progress=cb)
        for line in result.lines():
            out.print(line)
        out.print(
            f"score run {result.run_id}: {result.trained} trained, {result.reused} reused, "
            f"{result.seconds:.0f} s"
        )
        if out_json is not None:
            write_json(out_json, result.to_dict())
        if json_out:
            print_json(result.to_dict())
