"""Commands about label strategies, stored crops and per-crop drift (issue 37). The strategy
options on existing commands live with them: `ladd train/evaluate --loss-fn --label-schedule
--balance --sampler`, `ladd augment --sampler`, `ladd stats --drift` (which shares show_drift).

    ladd strategies                              the registered losses, schedules, samplers
    ladd drift FILE [--labeler CKPT ...]         each crop's drift from its image's label
    ladd fkd-store DISTILLED --labeler CKPT --epochs E --out DIR
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ladd.cli.console import CLIError, guard, out, print_json
from ladd.cli.options import (
    AllowUnwhitenedOpt,
    CropRatioOpt,
    CropsPerSideOpt,
    DebugOpt,
    DeviceOpt,
    DriftLimitOpt,
    DriftThresholdOpt,
    ExperimentOpt,
    FormatOpt,
    JsonOpt,
    MeanOpt,
    NumClassesOpt,
    SourceOpt,
    StdOpt,
    WorkspaceOpt,
    ZcaOpt,
    open_workspace,
    set_reading,
    torch_device,
)
from ladd.cli.reading import load_set

__all__ = ["app", "show_drift"]

app = typer.Typer()


@app.command()
def strategies(json_out: JsonOpt = False, debug: DebugOpt = False) -> None:
    """The label strategies and sub-samplers a run can name (TrainConfig loss_fn,
    label_schedule, balance, sampler; a sweep's axes)."""
    with guard(debug):
        from ladd.samplers import sampler_names
        from ladd.strategies import BALANCES, LOSSES, SCHEDULES

        def first(names: tuple[str, ...], default: str) -> list[str]:
            return [default, *(n for n in names if n != default)]

        found = {
            "loss_fn": [LOSSES.parse(n).spec for n in first(LOSSES.names(), "soft_ce")],
            "label_schedule": [
                *(SCHEDULES.parse(n).spec for n in first(SCHEDULES.names(), "constant")),
                "temperature:calibrated",
            ],
            "balance": list(BALANCES),
            "sampler": ["grid:5,0.625", "multiscale:3@0.75,4@0.5", "random:25,seed=0"],
        }
        table = Table("option", "choices (default first)")
        for k, v in found.items():
            table.add_row(k, ", ".join(v))
        out.print(table)
        out.print(f"samplers registered: {', '.join(sampler_names())}")
        if json_out:
            print_json(found)


@app.command()
def drift(
    file: Annotated[
        Path, typer.Argument(help="A label-augmented set, or a distilled set with --labeler.")
    ],
    labeler: Annotated[
        list[Path] | None,
        typer.Option("--labeler", help="Labeler checkpoint(s) or a folder of them."),
    ] = None,
    n: CropsPerSideOpt = 5,
    r: CropRatioOpt = 0.625,
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
    """Per-crop drift: each crop's JS divergence from its image's label, the drifted crops
    (top class not the image's, JS >= --threshold), the farthest first (ladd.drift)."""
    with guard(debug):
        from ladd.drift import drift_of_set
        from ladd.sets import LabelAugmentedSet

        reading = set_reading(
            source=source, zca=zca, mean=mean, std=std, fmt=fmt, experiment=experiment,
            num_classes=num_classes, allow_unwhitened=allow_unwhitened,
        )  # fmt: skip
        ds = load_set(file, reading, open_workspace(workspace))
        if not labeler and not isinstance(ds, LabelAugmentedSet):
            raise CLIError("a plain distilled set needs --labeler CKPT to label its crops")
        res = drift_of_set(
            ds, labeler or (), n, r, threshold=threshold, device=torch_device(device)
        )
        found = show_drift(res, list(getattr(ds, "class_names", None) or []), limit)
        if json_out:
            print_json(found)


def show_drift(res: dict, names: list[str], limit: int) -> dict:
    """Print drift results per labeler epoch (ladd.drift.drift_of_set) and the drifted crops of
    the last epoch, the farthest first; return them JSON-ready (`ladd drift`, `ladd stats
    --drift`)."""
    summary = Table("labeler epoch", "drifted crops", "images with drift", "mean JS", "median JS")
    for ep, d in sorted(res.items()):
        s = d.summary()
        summary.add_row(
            str(ep),
            f"{s['drifted_fraction']:.1%}",
            f"{s['images_with_drift']:.1%}",
            f"{s['mean_js']:.4f}",
            f"{s['median_js']:.4f}",
        )
    out.print(summary)
    last = res[max(res)]
    out.print(f"rule: {last.rule}")
    rows = last.listing(limit)
    listing = Table("image", "crop", "class", "crop's top class", "p(top)", "JS (nats)")
    for row in rows:
        listing.add_row(
            str(row["image"]),
            str(row["crop"]),
            names[row["class"]] if names else str(row["class"]),
            names[row["top_class"]] if names else str(row["top_class"]),
            f"{row['top_prob']:.3f}",
            f"{row['js']:.4f}",
        )
    out.print(listing)
    return {
        "rule": last.rule,
        "epochs": {str(e): d.summary() for e, d in res.items()},
        "drifted": rows,
    }


@app.command("fkd-store")
def fkd_store(
    file: Annotated[Path, typer.Argument(help="A distilled set (its images are relabelled).")],
    labeler: Annotated[Path, typer.Option("--labeler", help="Labeler checkpoint.")],
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Epochs of crops to store.")],
    out_dir: Annotated[Path, typer.Option("--out", help="The store's folder.")],
    crop_seed: Annotated[int, typer.Option("--crop-seed", help="Seed of the crop draws.")] = 0,
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
    """Random crops relabelled per epoch by a labeler, stored in SRe2L's FKD layout
    (ladd.fkd_store): images/ class folders, labels/epoch_<e>/batch_<b>.tar, ladd_store.json."""
    with guard(debug):
        from ladd.fkd_store import StoreConfig, write_store
        from ladd.sets import LabelAugmentedSet

        reading = set_reading(
            source=source, zca=zca, mean=mean, std=std, fmt=fmt, experiment=experiment,
            num_classes=num_classes, allow_unwhitened=allow_unwhitened,
        )  # fmt: skip
        ds = load_set(file, reading, open_workspace(workspace))
        if isinstance(ds, LabelAugmentedSet):
            ds = ds.to_distilled()
        if (out_dir / "labels").exists():
            raise CLIError(f"{out_dir} holds a store already: give another --out")
        s = write_store(
            ds,
            str(labeler),
            out_dir,
            StoreConfig(epochs=epochs, crop_seed=crop_seed),
            device=torch_device(device),
        )
        out.print(
            f"{s.images} images x {epochs} epochs of crops in {out_dir}: "
            f"{s.label_bytes_per_image:,.0f} label bytes per image (float16 logits), "
            f"{s.coord_bytes / max(1, s.images):,.0f} of coords and flips"
        )
        if json_out:
            print_json({k: v for k, v in s.__dict__.items() if k != "image_order"})
