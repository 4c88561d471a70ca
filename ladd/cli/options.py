"""The command line's shared options, each defined once as an `Annotated` type, and the plain
functions that turn a command's options into what the library takes.

A command spells its options as ordinary typer parameters with these types (`device:
DeviceOpt = "auto"`), so its signature is what `ladd CMD --help` shows; it then calls
`set_reading(...)` for the set-reading flags (--source --zca --mean --std --format
--experiment --num-classes --allow-unwhitened: a ladd.sets.inputs.SetReading) and
`train_config(...)` for the training flags `train` and `evaluate` share (a
ladd.training.TrainConfig, checked where it is made). Nothing here decides how work is done.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import torch

    from ladd.sets.inputs import SetReading
    from ladd.store import Workspace
    from ladd.training import TrainConfig

# -- where and how a command runs ------------------------------------------------------------
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N")]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", help="Workspace folder (default: env LADD_WORKSPACE or ./ladd-workspace)."
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Base random seed.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace an existing output (never an input of the step).")
]
DataRootOpt = Annotated[
    Path | None,
    typer.Option("--data-root", help="Where source archives live (e.g. ../shared/data)."),
]

# -- how a set is read (set_reading) ---------------------------------------------------------
SourceOpt = Annotated[
    str | None,
    typer.Option("--source", help="Source dataset (normalisation, class names, real test split)."),
]
ZcaOpt = Annotated[
    bool,
    typer.Option(
        "--zca", help="The set's images are in ZCA space (MTT/DATM on CIFAR): fit ZCA on --source."
    ),
]
MeanOpt = Annotated[
    str | None,
    typer.Option("--mean", help="The set's per-channel mean, e.g. 0.4914,0.4822,0.4465."),
]
StdOpt = Annotated[
    str | None, typer.Option("--std", help="The set's per-channel std, e.g. 0.2023,0.1994,0.2010.")
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Which code wrote the set (picks its normalisation convention): mtt | datm | glad | "
        "dc | ddranking | tensor | imagefolder | ladd (docs/formats.md)",
    ),
]
ExperimentOpt = Annotated[
    int | None,
    typer.Option(
        "--experiment", min=0, help="DC/DSA/DM result files: which experiment (default the last)."
    ),
]
NumClassesOpt = Annotated[
    int | None,
    typer.Option(
        "--num-classes",
        min=1,
        help="How many classes a bare image tensor holds (class-major labels are inferred).",
    ),
]
AllowUnwhitenedOpt = Annotated[
    bool,
    typer.Option(
        "--allow-unwhitened",
        "--no-zca-check",
        help="Train on (or label) a set whose images look ZCA-whitened without --zca; without "
        "this such a set is refused.",
    ),
]

# -- how models are trained on a set (train_config) ------------------------------------------
ArchOpt = Annotated[str, typer.Option("--arch")]
ModeOpt = Annotated[
    str,
    typer.Option(
        "--mode",
        help="Label mode (paper Table 6): baseline | full_soft | full_hard_soft | crops_hard | "
        "crops_dense | crops_hard_dense | ladd (`ladd models` describes them).",
    ),
]
ProtocolOpt = Annotated[
    str,
    typer.Option(
        "--protocol",
        help="auto (from the image size) | mtt: CIFAR, MTT/DATM's evaluate_synset (lr x 0.1 after "
        "epoch E//2+1, E+1 passes) | glad: ImageNet subsets, GLaD's evaluate_synset (linear "
        "warm-up, cosine decay, the EMA of the weights is tested) | rded: ImageNet-1K, RDED's "
        "validation without its teacher (AdamW, half-cosine lr, ShufflePatches + "
        "RandomResizedCrop + flip instead of DSA; RDED runs --epochs 300 and a batch of 100 at "
        "IPC 10). Recorded with every run.",
    ),
]
EpochsOpt = Annotated[int, typer.Option("--epochs", min=1)]
SeedsOpt = Annotated[
    int, typer.Option("--seeds", min=1, help="How many models (seeds seed..seed+S-1).")
]
LossOpt = Annotated[
    str,
    typer.Option(
        "--loss",
        help="mean: soft cross-entropy averaged over a batch (the field's loaders) | image_sum: "
        "that times the samples per image (Eq. 5's per-image sum of the crop terms)",
    ),
]
DriftThresholdOpt = Annotated[
    float,
    typer.Option(
        "--threshold",
        min=0.0,
        max=0.7,
        help="JS (nats) from the image's label from which a crop whose top class is not the "
        "image's counts as drifted (ladd.drift's rule).",
    ),
]
DriftLimitOpt = Annotated[int, typer.Option("--limit", min=0, help="Drifted crops listed.")]
LossFnOpt = Annotated[
    str,
    typer.Option(
        "--loss-fn",
        help="The dense term's loss (ladd.strategies; `ladd strategies` lists them): soft_ce "
        "(Eq. 5, default) | kl[:t=T] (SRe2L/FKD) | gift | mse_gt (EDC)",
    ),
]
LabelScheduleOpt = Annotated[
    str,
    typer.Option(
        "--label-schedule",
        help="Which passes use which labels: constant (default) | hald (soft then hard) | "
        "soft_hard | temperature[:calibrated] (LPQLD's, with kl)",
    ),
]
BalanceOpt = Annotated[
    str,
    typer.Option(
        "--balance",
        help="fixed: hard and dense terms weigh 1 (default) | learned: one pair of log-weights "
        "per seed (uncertainty weighting)",
    ),
]
SamplerOpt = Annotated[
    str | None,
    typer.Option(
        "--sampler",
        help="The crops when not the N x R grid (ladd.samplers): multiscale:3@0.75,4@0.5 | "
        "random:25,seed=0 | grid:5,0.625",
    ),
]
FullLabelsOpt = Annotated[
    str,
    typer.Option(
        "--full-labels",
        help="hard: full images with one-hot labels (Eq. 5) | set_soft: the set's own soft "
        "labels (e.g. DATM's) where it has them ('set', its old spelling, still reads as "
        "set_soft with a deprecation warning)",
    ),
]
LrOpt = Annotated[
    float | None,
    typer.Option(
        "--lr",
        help="Learning rate (default: under mtt, a set's learned lr for the architecture it "
        "was distilled with; else the architecture's rate, GLaD's get_eval_lrs).",
    ),
]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1)]
WidthOpt = Annotated[
    int | None,
    typer.Option(
        "--width", min=1, help="ConvNet width (default 128; an option of the ConvNets only)."
    ),
]
TrainerOpt = Annotated[
    str,
    typer.Option(
        "--trainer",
        help="fast (default) | reference (the field-style loop, for comparison) | ddp (one "
        "training over torchrun's ranks: torchrun --nproc_per_node=G -m ladd train ...)",
    ),
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision", help="auto (bf16 for the fast trainer on CUDA, else fp32) | fp32 | bf16"
    ),
]
NoDsaOpt = Annotated[bool, typer.Option("--no-dsa", help="Train without DSA augmentation.")]

# -- the static sampler's grid ---------------------------------------------------------------
# torchrun's parser reads --n and --r as its own options even after the script's name: the
# long spellings are the ones ladd.torchrun.torchrun_command passes on.
CropsPerSideOpt = Annotated[
    int,
    typer.Option(
        "--n",
        "--crops-per-side",
        min=1,
        help="Crops per side (N x N crops). Under torchrun spell it --crops-per-side "
        "(torchrun reads --n as one of its own options).",
    ),
]
CropRatioOpt = Annotated[
    float,
    typer.Option(
        "--r",
        "--crop-ratio",
        min=0.0,
        max=1.0,
        help="Crop side as a fraction of the image side (--crop-ratio under torchrun).",
    ),
]


# -- builders ----------------------------------------------------------------------------------


def set_reading(
    *,
    source: str | None = None,
    zca: bool = False,
    mean: str | None = None,
    std: str | None = None,
    fmt: str | None = None,
    experiment: int | None = None,
    num_classes: int | None = None,
    allow_unwhitened: bool = False,
) -> SetReading:
    """The set-reading flags of a command that reads a set, as a ladd SetReading."""
    from ladd.sets.inputs import SetReading

    return SetReading(
        source=source,
        format=fmt,
        mean=mean,
        std=std,
        zca=zca,
        experiment=experiment,
        num_classes=num_classes,
        allow_unwhitened=allow_unwhitened,
    )


def train_config(
    arch: str,
    seed: int,
    *,
    mode: str = "ladd",
    protocol: str = "auto",
    epochs: int = 1000,
    seeds: int = 5,
    loss: str = "mean",
    full_labels: str = "hard",
    lr: float | None = None,
    batch_size: int = 256,
    width: int | None = None,
    trainer: str = "fast",
    precision: str = "auto",
    no_dsa: bool = False,
    loss_fn: str = "soft_ce",
    label_schedule: str = "constant",
    balance: str = "fixed",
    sampler: str | None = None,
    check_options: bool = True,
) -> TrainConfig:
    """The training flags of `train` and `evaluate` as the TrainConfig for `arch`, seeds
    seed..seed+S-1. The model options are checked against the architecture
    (ladd.models.check_model_options) unless the command spreads them over several
    (`evaluate`: a width reaches the ConvNets)."""
    from ladd.models import check_model_options
    from ladd.training import TrainConfig

    options = model_options(width)
    if check_options:
        check_model_options(arch, options)
    return TrainConfig(
        arch=arch,
        mode=mode,
        protocol=protocol,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seeds=seed_range(seed, seeds),
        loss=loss,
        full_labels=full_labels,
        trainer=trainer,
        precision=precision,
        dsa=not no_dsa,
        model_options=options,
        loss_fn=loss_fn,
        label_schedule=label_schedule,
        balance=balance,
        sampler=sampler,
    )


def model_options(width: int | None) -> dict[str, int]:
    """--width as model options ({} when not given: the architecture's default)."""
    return {"width": width} if width else {}


def seed_range(base: int, count: int) -> tuple[int, ...]:
    """--seed and --seeds as the seeds base..base+count-1."""
    from ladd.limits import current_limits

    if count < 1:
        raise typer.BadParameter("--seeds must be >= 1", param_hint="--seeds")
    current_limits().check_seeds(count)  # before the list is built (LADD_MAX_SEEDS)
    return tuple(base + i for i in range(count))


def int_list(text: str, name: str) -> tuple[int, ...]:
    """A comma-separated list of integers (e.g. --save-at 10,20,30); a usage error if not."""
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated integers, got {text!r}", param_hint=name
        ) from None
    if not vals:
        raise typer.BadParameter("expected at least one integer", param_hint=name)
    return vals


def open_workspace(path: Path | None) -> Workspace:
    """--workspace as a ladd Workspace (None: LADD_WORKSPACE or ./ladd-workspace). The command
    line owns its process: torch.compile's kernels go to the workspace's compile cache, so that
    one warm-up serves every later command (a TORCHINDUCTOR_CACHE_DIR the user set wins)."""
    from ladd.compile_cache import compile_cache_dir, use_compile_cache
    from ladd.store import Workspace

    ws = Workspace(path)
    try:
        use_compile_cache(compile_cache_dir(Path(ws.cache_dir) / "compile"))
    except OSError:  # a read-only workspace is still read (runs list, report): no cache then
        pass
    return ws


def torch_device(name: str) -> torch.device:
    """--device as a torch.device ("auto": CUDA when there is one)."""
    from ladd.device import resolve_device

    return resolve_device(name)


# -- soft-label stores (the field's FKD-family label files) ---------------------------------
SoftLabelsOpt = Annotated[
    Path | None,
    typer.Option(
        "--soft-labels",
        help="A soft-label store beside the image folder (SRe2L/CDA/FADRM/CV-DD, LPLD, EDC, HALD, "
        "LPQLD, or a file `ladd convert` wrote): trained as its authors train on it.",
    ),
]
FkdSeedOpt = Annotated[
    int,
    typer.Option(
        "--fkd-seed",
        help="SRe2L-layout stores record no image order: the RandomSampler seed they were made "
        "with (SRe2L's relabel.sh: 42).",
    ),
]
TemperatureOpt = Annotated[
    float | None,
    typer.Option(
        "--label-temperature",
        help="Soften the stored logits at T (default: the family's own, e.g. SRe2L's -T 20).",
    ),
]
StudentTemperatureOpt = Annotated[
    float | None,
    typer.Option(
        "--student-temperature",
        help="Divide the student's logits by T in the KL (default: the family's own).",
    ),
]
