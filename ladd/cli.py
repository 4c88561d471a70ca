"""The `ladd` command line (typer). The only module of ladd/ that parses arguments.

    ladd info PATH
    ladd sources | models
    ladd distill --source NAME --method random|dm|mtt --ipc 10 [--experts DIR]
    ladd experts --source NAME --num-experts 5 --epochs 30
    ladd train-labeler --source NAME --arch NAME --epochs E --save-at 10,20,30 --out DIR
    ladd augment DISTILLED --labeler CKPT --n 5 --r 0.625 --out FILE
    ladd overhead FILE
    ladd stats FILE [--labeler CKPT ...]
    ladd train FILE --source NAME --arch NAME --mode ladd --epochs E --seeds S [--json]
    ladd evaluate FILE --source NAME --archs convnet_d3,alexnet --epochs E --seeds S [--json]
    ladd runs list | show ID | export CSV

Option groups are defined once (`_with_options`): the set-reading flags of every command that
reads a set (`_reading_options`: --source --zca --mean --std --format --experiment
--num-classes --allow-unwhitened) and the training flags `train` and `evaluate` share
(`_training_options`, turned into a TrainConfig by `_Training.config`). Every command that
reads a set prints its warnings, and refuses one that looks ZCA-whitened without --zca unless
--allow-unwhitened (ladd.sets.inputs).

Every command takes --device, --workspace, --seed and --debug. Errors print one red line and
exit 1 (bad arguments: 2); --debug shows the traceback. Progress bars go to stderr, so that with
--json the last line of stdout is one JSON object.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

app = typer.Typer(
    name="ladd",
    help="LADD Studio: Label-Augmented Dataset Distillation from the command line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="The runs database of a workspace.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

# markup=False: paths, class names and messages come from users and files; "[/x]" in one of them
# must print as it is, never be parsed as rich markup. Styling goes through Text objects.
out = Console(soft_wrap=True, highlight=False, markup=False)
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)


def _warn(message: str) -> None:
    err.print(Text("warning: ", style="yellow") + Text(str(message)))


def _note(message: str) -> None:
    err.print(Text("note: ", style="yellow") + Text(str(message)))


# -- shared options --------------------------------------------------------------------------
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
LossOpt = Annotated[
    str,
    typer.Option(
        "--loss",
        help="mean: soft cross-entropy averaged over a batch (the field's loaders) | image_sum: "
        "that times the samples per image (Eq. 5's per-image sum of the crop terms)",
    ),
]
FullLabelsOpt = Annotated[
    str,
    typer.Option(
        "--full-labels",
        help="hard: full images with one-hot labels (Eq. 5) | set_soft: the set's own soft "
        "labels (e.g. DATM's) where it has them ('set' is read as set_soft)",
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
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace an existing output (never an input of the step).")
]
DataRootOpt = Annotated[
    Path | None,
    typer.Option("--data-root", help="Where source archives live (e.g. ../shared/data)."),
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
EpochsOpt = Annotated[int, typer.Option("--epochs", min=1)]
SeedsOpt = Annotated[
    int, typer.Option("--seeds", min=1, help="How many models (seeds seed..seed+S-1).")
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


# -- option groups: each defined once, turned into one value -----------------------------------


def _reading_options(
    source: SourceOpt = None,
    zca: ZcaOpt = False,
    mean: MeanOpt = None,
    std: StdOpt = None,
    fmt: FormatOpt = None,
    experiment: ExperimentOpt = None,
    num_classes: NumClassesOpt = None,
    allow_unwhitened: AllowUnwhitenedOpt = False,
) -> Any:
    """The set-reading flags of every command that reads a set, as a ladd SetReading."""
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


@dataclass(frozen=True)
class _Training:
    """The training flags `train` and `evaluate` share; `config` is the one TrainConfig
    builder of the command line."""

    mode: str
    protocol: str
    epochs: int
    seeds: int
    loss: str
    full_labels: str
    lr: float | None
    batch_size: int
    width: int | None
    trainer: str
    precision: str
    dsa: bool

    def config(self, arch: str, seed: int, *, check_options: bool = True) -> Any:
        """The TrainConfig of these flags for `arch`, seeds seed..seed+S-1; the model options
        are checked against the architecture (ladd.models.check_model_options) unless the
        command spreads them over several (`evaluate`: a width reaches the ConvNets)."""
        from ladd.models import check_model_options
        from ladd.training import TrainConfig

        options = {"width": self.width} if self.width else {}
        if check_options:
            check_model_options(arch, options)
        return TrainConfig(
            arch=arch,
            mode=self.mode,
            protocol=self.protocol,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            seeds=_seeds(seed, self.seeds),
            loss=self.loss,
            full_labels=self.full_labels,
            trainer=self.trainer,
            precision=self.precision,
            dsa=self.dsa,
            model_options=options,
        )


def _training_options(
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
) -> _Training:
    """The training flags of `train` and `evaluate`."""
    return _Training(
        mode, protocol, epochs, seeds, loss, full_labels, lr, batch_size, width, trainer,
        precision, not no_dsa,
    )  # fmt: skip


@dataclass(frozen=True)
class _Job:
    """Where a command that runs work runs it: the device, the workspace, tracebacks or not.
    Defined once here for every such command (`_with_options(job=_job_options)`)."""

    device: str
    workspace: Path | None
    debug: bool

    def open_workspace(self) -> Any:
        return _workspace(self.workspace)

    def torch_device(self) -> Any:
        return _device(self.device)


def _job_options(
    device: DeviceOpt = "auto", workspace: WorkspaceOpt = None, debug: DebugOpt = False
) -> _Job:
    return _Job(device, workspace, debug)


def _place_options(workspace: WorkspaceOpt = None, debug: DebugOpt = False) -> _Job:
    """The same for commands that run nothing on a device (runs, sweep, report, random-real)."""
    return _Job("auto", workspace, debug)


def _with_options(**groups: Callable[..., Any]) -> Callable[[Callable[..., Any]], Any]:
    """Give a command each group's options, defined once in the group function: the command's
    parameter `name` (a placeholder, default None) is replaced by the options of
    `groups[name]`, and receives what that function builds from them."""

    def decorate(fn: Callable[..., Any]) -> Any:
        own = inspect.signature(fn, eval_str=True)
        taken = {n for n in own.parameters if n not in groups}
        params: list[inspect.Parameter] = []
        members: dict[str, list[str]] = {}
        for name, p in own.parameters.items():
            if name not in groups:
                params.append(p)
                continue
            group = list(inspect.signature(groups[name], eval_str=True).parameters.values())
            clash = taken & {g.name for g in group}
            if clash:
                raise TypeError(f"{fn.__name__}: options {sorted(clash)} defined twice")
            taken |= {g.name for g in group}
            members[name] = [g.name for g in group]
            params += [g.replace(kind=p.kind) for g in group]

        @functools.wraps(fn)
        def command(**kw: Any) -> Any:
            for name, keys in members.items():
                kw[name] = groups[name](**{k: kw.pop(k) for k in keys})
            return fn(**kw)

        command.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


# Click's own exceptions (typer may vendor its own copy of click): let click handle them.
_PASS_THROUGH: tuple[type[BaseException], ...] = tuple(
    {
        click.ClickException,
        click.exceptions.Exit,
        click.exceptions.Abort,
        typer.Exit,
        typer.Abort,
        SystemExit,
        *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"),
    }
)


class CLIError(Exception):
    """A user-facing error: one line, exit code 1."""


@contextmanager
def _guard(debug: bool) -> Iterator[None]:
    """One red line and exit 1 on any error (traceback with --debug)."""
    try:
        yield
    except _PASS_THROUGH:
        raise  # usage errors: click prints them and exits 2
    except KeyboardInterrupt:
        err.print(Text("interrupted", style="red"))
        raise typer.Exit(130) from None
    except Exception as e:  # every error reaches the user as one line
        if debug:
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, KeyError):
            msg = msg.strip("'\"")
        err.print(Text("error: ", style="red") + Text(msg))
        raise typer.Exit(1) from None


def _workspace(path: Path | None) -> Any:
    from ladd.store import Workspace

    return Workspace(path)


def _device(name: str) -> Any:
    from ladd.device import resolve_device

    return resolve_device(name)


def _progress_bar(description: str) -> Any:
    """The progress adapter on stderr: a rich bar on a terminal, plain lines in a log."""
    from ladd.progress import progress_reporter

    return progress_reporter(description)


def _seeds(base: int, count: int) -> tuple[int, ...]:
    if count < 1:
        raise typer.BadParameter("--seeds must be >= 1", param_hint="--seeds")
    return tuple(base + i for i in range(count))


def _int_list(text: str, name: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated integers, got {text!r}", param_hint=name
        ) from None
    if not vals:
        raise typer.BadParameter("expected at least one integer", param_hint=name)
    return vals


@contextmanager
def _reading_errors() -> Iterator[None]:
    """A reading flag that makes no sense, said in the command line's words (its flag)."""
    from ladd.sets.options import SetOptionError

    try:
        yield
    except SetOptionError as e:
        if e.field == "zca":
            msg = "--zca needs --source: ZCA is fitted on that source's train split"
            raise CLIError(msg) from None
        hint = "--mean/--std" if e.field in ("mean", "std") else f"--{e.field.replace('_', '-')}"
        raise typer.BadParameter(str(e), param_hint=hint) from None


def _load_set(
    path: Path,
    reading: Any,
    ws: Any = None,
    data_root: Path | None = None,
    *,
    describe_only: bool = False,
) -> Any:
    """The set at `path` read with the command line's set flags (ladd.sets.inputs, as every
    front end reads it); its warnings are printed."""
    from ladd.sets.inputs import load_input_set, set_warnings

    if not path.exists():
        raise CLIError(f"{path}: no such file or folder")
    with _reading_errors():
        ds = load_input_set(
            path,
            reading,
            data_root=data_root,
            cache_dir=ws.cache_dir if ws is not None else None,
            describe_only=describe_only,
        )
    for w in set_warnings(ds):
        _warn(w)
    return ds


def _print_json(obj: Any) -> None:
    from ladd.files import json_default

    sys.stdout.write(json.dumps(obj, default=json_default) + "\n")
    sys.stdout.flush()


def _fmt_flops(f: float) -> str:
    return f"{f / 1e15:.4g} PFLOPs" if f >= 1e13 else f"{f / 1e9:.4g} GFLOPs"


# -- info, sources, models -------------------------------------------------------------------


@app.command()
@_with_options(reading=_reading_options)
def info(
    path: Annotated[
        Path, typer.Argument(help="A distilled-set file/folder or a label-augmented file.")
    ],
    reading: Any = None,
    json_out: JsonOpt = False,
    data_root: DataRootOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Describe a distilled set or a label-augmented set (its warnings on stderr)."""
    with _guard(debug):
        ds = _load_set(path, reading, data_root=data_root, describe_only=True)
        d = ds.describe()
        if not isinstance(d, dict):  # a describe() that returns text
            out.print(str(d))
            return
        if hasattr(ds, "dense_labels"):  # the paper's zip measurement, in the file's codec
            from ladd.dense import set_storage_report

            d["zip_overhead"] = set_storage_report(ds).overhead
        table = Table(show_header=False, box=None)
        for k, v in d.items():
            if k == "warnings" and not v:
                continue
            table.add_row(str(k), _short(v))
        out.print(table)
        if json_out:
            _print_json(d)


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
    with _guard(debug):
        from ladd.data import list_sources

        for name in list_sources():
            out.print(name)


@app.command()
def models(debug: DebugOpt = False) -> None:
    """List the architectures (with their deployment lrs), label modes and protocols."""
    with _guard(debug):
        from ladd.models import default_lr, list_models
        from ladd.trainers import list_trainers
        from ladd.training import MODES, PROTOCOLS

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
        out.print(f"trainers (--trainer): {', '.join(list_trainers())}")


@app.command("random-real")
@_with_options(job=_place_options)
def random_real_cmd(
    source: Annotated[str, typer.Option("--source", help="Source dataset to draw from.")],
    ipc: Annotated[int, typer.Option("--ipc", min=1, help="Images per class.")] = 10,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (MTT layout).")
    ] = None,
    image_size: Annotated[int | None, typer.Option("--image-size", min=8)] = None,
    force: ForceOpt = False,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
    job: Any = None,
) -> None:
    """Make the random-real baseline set: IPC seeded-random real training images per class."""
    with _guard(job.debug):
        from ladd.distill import RandomConfig
        from ladd.pipeline import run_distill

        ws = job.open_workspace()
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


# -- built-in distillers ---------------------------------------------------------------------


@app.command()
@_with_options(job=_job_options)
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
    job: Any = None,
) -> None:
    """Train MTT expert trajectories (parameters saved after every epoch); resumable."""
    with _guard(job.debug):
        from ladd.distill import ExpertConfig
        from ladd.pipeline import run_experts

        ws = job.open_workspace()
        cfg = ExpertConfig(
            arch=arch,
            num_experts=num_experts,
            epochs=epochs,
            lr=lr,
            zca=zca,
            seed=seed,
            model_options={"width": width} if width else {},
        )
        with _progress_bar("experts") as cb:
            run_id, folder, paths = run_experts(
                ws,
                source,
                cfg,
                out_dir=out_dir,
                limit_per_class=limit_per_class,
                data_root=data_root,
                device=job.torch_device(),
                progress=cb,
            )
        out.print(f"{len(paths)} expert trajectories in {folder} (run {run_id})")


@app.command()
@_with_options(job=_job_options)
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
    job: Any = None,
) -> None:
    """Distil a source with a built-in method; writes images_best.pt, labels_best.pt, lr_best.pt."""
    with _guard(job.debug):
        from ladd.distill import METHODS, DMConfig, MTTConfig, RandomConfig
        from ladd.pipeline import run_distill

        if method not in METHODS:
            raise typer.BadParameter(f"--method must be one of {', '.join(METHODS)}")
        ws = job.open_workspace()
        experts_list = None
        lr_kw = {"lr_img": lr_img} if lr_img else {}
        if method == "random":
            cfg: Any = RandomConfig(ipc=ipc, seed=seed)
        elif method == "dm":
            opts = {"width": width} if width else {}
            cfg = DMConfig(
                ipc=ipc, iterations=iterations, arch=arch, model_options=opts, seed=seed, **lr_kw
            )
        else:
            if experts_dir is None:
                raise CLIError("--method mtt needs --experts DIR (run `ladd experts`)")
            experts_list = sorted(Path(experts_dir).glob("expert_*.safetensors"))
            cfg = MTTConfig(
                ipc=ipc,
                iterations=iterations,
                syn_steps=syn_steps,
                expert_epochs=expert_epochs,
                max_start_epoch=max_start_epoch,
                seed=seed,
                **lr_kw,
            )
        with _progress_bar(method) as cb:
            res = run_distill(
                ws,
                source,
                method,
                cfg,
                out_dir=out_dir,
                experts=experts_list,
                limit_per_class=limit_per_class,
                data_root=data_root,
                device=job.torch_device(),
                progress=cb,
                force=force,
            )
        peak = (res.metrics.get("peak_memory_bytes") or 0) / 2**20
        out.print(
            f"{method}: {len(res.dataset)} images written to {res.path} "
            f"({res.metrics['seconds']:.1f} s, peak memory {peak:.0f} MiB, run {res.run_id})"
        )


# -- labeler ---------------------------------------------------------------------------------


@app.command("import-labeler")
@_with_options(job=_place_options)
def import_labeler_cmd(
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
    job: Any = None,
) -> None:
    """Use your own trained torchvision network as the labeler (no labeler training): its
    weights, read with torch.load(weights_only=True), become a labeler file for `ladd augment`."""
    with _guard(job.debug):
        from ladd.data import source_info
        from ladd.labeler import import_labeler, read_meta

        if not checkpoint.is_file():
            raise CLIError(f"{checkpoint}: no such file")
        ws = job.open_workspace()
        info = source_info(source, image_size, cache_dir=ws.cache_dir, data_root=data_root)
        try:
            path = import_labeler(
                arch, checkpoint, info, out_file, image_size=image_size, force=force
            )
        except ValueError as err:
            raise CLIError(str(err)) from None
        meta = read_meta(path)
        out.print(
            f"labeler {path}: {meta.arch}, {meta.num_classes} classes of {meta.source} at "
            f"{meta.image_size} px (ladd augment SET --labeler {path})"
        )


@app.command("train-labeler")
@_with_options(job=_job_options)
def train_labeler_cmd(
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
    job: Any = None,
) -> None:
    """Train the labeler g on a source's training split, saving checkpoints."""
    with _guard(job.debug):
        from ladd.labeler import LabelerConfig
        from ladd.pipeline import run_labeler

        ws = job.open_workspace()
        cfg = LabelerConfig.recipe(
            recipe,
            arch=arch,
            epochs=epochs,
            save_at=_int_list(save_at, "--save-at"),
            **({"lr": lr} if lr is not None else {}),
            batch_size=batch_size,
            seed=seed,
            limit_per_class=limit_per_class,
            image_size=image_size,
            model_options={"width": width} if width else {},
            zca=zca,
        )
        with _progress_bar("labeler") as cb:
            res = run_labeler(
                ws,
                source,
                cfg,
                out_dir=out_dir,
                device=job.torch_device(),
                progress=cb,
                resume=not no_resume,
                data_root=data_root,
                workers=workers
                if workers is not None
                else min(8, max(0, (os.cpu_count() or 1) - 1)),
            )
        table = Table("epoch", "test acc", "file")
        for r in res.checkpoints:
            table.add_row(str(r.epoch), f"{r.test_accuracy:.2%}", Path(r.path).name)
        out.print(table)
        out.print(f"checkpoints in {res.out_dir} (run {res.run_id})")
        if res.checkpoints:
            out.print(f"training FLOPs: {_fmt_flops(res.checkpoints[-1].train_flops)}")
        if json_out:
            from dataclasses import asdict

            _print_json(
                {
                    "run_id": res.run_id,
                    "out": str(res.out_dir),
                    "checkpoints": [asdict(r) for r in res.checkpoints],
                }
            )


# -- augment, overhead, stats ----------------------------------------------------------------


@app.command()
@_with_options(reading=_reading_options, job=_job_options)
def augment(
    distilled: Annotated[Path, typer.Argument(help="A distilled set (file or folder).")],
    labeler: Annotated[
        Path, typer.Option("--labeler", help="Labeler checkpoint (or its folder: epoch 10).")
    ],
    n: Annotated[
        int,
        typer.Option(
            "--n",
            "--crops-per-side",
            min=1,
            help="Crops per side (N x N crops). Under torchrun spell it --crops-per-side "
            "(torchrun reads --n as one of its own options).",
        ),
    ] = 5,
    r: Annotated[
        float,
        typer.Option(
            "--r",
            "--crop-ratio",
            min=0.0,
            max=1.0,
            help="Crop side as a fraction of the image side (--crop-ratio under torchrun).",
        ),
    ] = 0.625,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Output file (default: workspace/sets/...).")
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 1.0,
    codec: Annotated[
        str | None,
        typer.Option(
            "--codec",
            help="How the file stores the dense labels: topk:3,uint8 (default, picked by the study), "
            "float32, float16, bfloat16, "
            "int8:affine, int8:log, topk:K[,float16|uint8][,uniform|renorm] (see `ladd overhead "
            "--codec all`).",
        ),
    ] = None,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="Store dense labels as float16 (= --codec float16).")
    ] = False,
    allow_mismatch: Annotated[
        bool, typer.Option("--allow-mismatch", help="Label even if the input spaces differ.")
    ] = False,
    force: ForceOpt = False,
    seed: Annotated[
        int, typer.Option("--seed", hidden=True, help="Ignored: dense labels draw nothing random.")
    ] = 0,
    json_out: JsonOpt = False,
    data_root: DataRootOpt = None,
    reading: Any = None,
    job: Any = None,
) -> None:
    """Generate dense labels for a distilled set: write a label-augmented set file."""
    with _guard(job.debug):
        from ladd.pipeline import run_label_augment

        ws = job.open_workspace()
        dev = job.torch_device()
        ranked = _distributed_job(dev)  # torchrun: every rank labels its share of the images
        if ranked is not None:
            dev = ranked[1]
        ds = _load_set(distilled, reading, ws, data_root)
        if hasattr(ds, "dense"):
            raise CLIError(f"{distilled} is already label-augmented")
        res = run_label_augment(
            ws,
            ds,
            labeler,
            n=n,
            r=r,
            distilled_path=distilled,
            out=out_file,
            temperature=temperature,
            codec=_codec_spec(codec, fp16),
            allow_mismatch=allow_mismatch,
            device=dev,
            force=force,
        )
        if ranked is not None and not ranked[0].leader:  # rank 0 writes, records and shows
            _end_distributed_job()
        la = res.dataset
        for p in la.labeler.get("mismatch") or []:
            _warn(p)
        lab = la.labeler
        out.print(
            f"{len(la)} images x {la.num_crops} crops x {la.num_classes} classes, labeler "
            f"{lab['arch']} epoch {lab['epoch']} (test accuracy {lab['test_accuracy']:.1%})"
        )
        out.print(
            f"label generation: {_fmt_flops(la.generation_flops)}, "
            f"labels {la.codec.spec} ({la.label_bytes() / len(la):,.0f} bytes per image), "
            f"storage overhead {res.metrics['overhead']:.2%}"
        )
        out.print(f"label-augmented set written to {res.path} (run {res.run_id})")
        if json_out:
            _print_json(
                {
                    "run_id": res.run_id,
                    "out": str(res.path),
                    "overhead": res.metrics["overhead"],
                    "generation_flops": la.generation_flops,
                }
            )
        if ranked is not None:
            _end_distributed_job()


def _codec_spec(codec: str | None, fp16: bool) -> str | None:
    """--codec, or --fp16 (its alias for float16); a bad spec is a one-line error."""
    from ladd.codecs import CodecError, parse_codec

    if fp16 and codec is not None and parse_codec(codec).spec != "float16":
        raise CLIError("--fp16 is --codec float16: give one of them")
    if fp16:
        return "float16"
    if codec is None:
        return None
    try:
        return parse_codec(codec).spec
    except CodecError as e:
        raise CLIError(f"--codec: {e}") from None


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
    """Storage overhead of the dense labels: zip of uint8 images + labels, with vs without (the
    paper's measurement, section 4, is float32 labels), and raw label bytes per image."""
    with _guard(debug):
        from ladd.codecs import STANDARD_SPECS
        from ladd.dense import codec_table
        from ladd.sets import LabelAugmentedSet

        la = LabelAugmentedSet.load(file)
        specs = (
            list(STANDARD_SPECS) if codec == "all" else [_codec_spec(codec, False) or la.codec.spec]
        )
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
            _print_json(
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
@_with_options(reading=_reading_options, job=_job_options)
def stats(
    file: Annotated[
        Path, typer.Argument(help="A label-augmented set, or a distilled set with --labeler.")
    ],
    labeler: Annotated[
        list[Path] | None,
        typer.Option("--labeler", help="Labeler checkpoint(s) or a folder of them."),
    ] = None,
    n: Annotated[int, typer.Option("--n", "--crops-per-side", min=1)] = 5,
    r: Annotated[float, typer.Option("--r", "--crop-ratio", min=0.0, max=1.0)] = 0.625,
    json_out: JsonOpt = False,
    reading: Any = None,
    job: Any = None,
) -> None:
    """Per-crop label statistics: max probability, entropy, agreement with the hard label."""
    with _guard(job.debug):
        from ladd.dense import crop_stats, crop_stats_across
        from ladd.labeler import list_checkpoints

        ws = job.open_workspace()
        ds = _load_set(file, reading, ws)
        if labeler:
            paths: list[Path] = []
            for p in labeler:
                paths += list_checkpoints(p) if p.is_dir() else [p]
            base = ds.to_distilled() if hasattr(ds, "dense") else ds
            if hasattr(ds, "dense"):
                n, r = ds.n, ds.r
            res = crop_stats_across(base, paths, n, r, device=job.torch_device())
        elif hasattr(ds, "dense"):
            res = {int(ds.labeler.get("epoch") or 0): crop_stats(ds.probs(), ds.labels).summary()}
        else:
            raise CLIError("a plain distilled set needs --labeler CKPT to compute dense labels")
        table = Table("labeler epoch", "mean max prob", "mean entropy", "agreement")
        for ep, s in sorted(res.items()):
            table.add_row(
                str(ep),
                f"{s['mean_max_prob']:.3f}",
                f"{s['mean_entropy']:.3f}",
                f"{s['agreement']:.1%}",
            )
        out.print(table)
        if json_out:
            _print_json({str(k): v for k, v in res.items()})


# -- train, evaluate -------------------------------------------------------------------------


def _set_and_test_split(
    file: Path, reading: Any, ws: Any, data_root: Path | None
) -> tuple[Any, Any]:
    """The set a training command trains on and the real test split its models are scored on
    (ladd.sets.inputs.load_training_inputs, as the dashboard and sweeps load them); the set's
    warnings are printed."""
    from ladd.sets.inputs import load_training_inputs

    if not file.exists():
        raise CLIError(f"{file}: no such file or folder")
    with _reading_errors():
        inputs = load_training_inputs(file, reading, data_root=data_root, cache_dir=ws.cache_dir)
    for w in inputs.warnings:
        _warn(w)
    return inputs.dataset, inputs.test


def _cost_note(ds: Any, cfg: Any, dev: Any, world: int, *, over_s: float = 600.0) -> None:
    """Before a long training: its estimated time from the cost model (ladd.sweep.cost), said
    to be an estimate and on what it rests; nothing for a run estimated under `over_s`."""
    from ladd.sweep.cost import estimate_cell

    size = int(ds.images.shape[-1])
    est = estimate_cell(
        cfg.arch,
        cfg.mode,
        images=len(ds),
        n=int(getattr(ds, "n", cfg.n)),
        image_size=size,
        seeds=len(cfg.seeds),
        epochs=cfg.resolved(size).passes,
        width=cfg.model_options.get("width"),
        device=dev.type,
    )
    if est.seconds is None or est.seconds < over_s:
        return
    hours = est.seconds / 3600
    where = f"{hours:.1f} {dev.type} hours" if dev.type == "cuda" else f"{hours:.1f} hours"
    split = f", ~{hours / world:.1f} h on {world} ranks" if world > 1 else ""
    _note(
        f"estimated training time ~{where}{split} ({est.seed_samples:,} seed-samples at "
        f"~{est.samples_per_s:,.0f}/s; {est.basis})"
    )


def _warn_long(epochs: int, dev: Any) -> None:
    if dev.type == "cpu" and epochs >= 200:
        _note(
            f"{epochs} epochs on a CPU takes long; try --epochs 50 for a quick look, "
            "or --device cuda"
        )


@app.command()
@_with_options(training=_training_options, reading=_reading_options, job=_job_options)
def train(
    file: Annotated[Path, typer.Argument(help="A label-augmented set or any distilled set.")],
    arch: Annotated[str, typer.Option("--arch")] = "convnet_d3",
    training: Any = None,
    monitor_every: Annotated[
        int,
        typer.Option(
            "--monitor-every",
            min=0,
            help="Every so many epochs, print each seed's accuracy on a fixed 500-image subset "
            "of the test split (shown only; nothing is chosen on it). 0: off.",
        ),
    ] = 0,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
    gpus: Annotated[
        int,
        typer.Option(
            "--gpus",
            min=0,
            help="Train one run over G processes on this machine, one per GPU (gloo processes "
            "with --device cpu): launches torchrun --standalone --nproc_per_node=G -m ladd "
            "train ... with --trainer ddp. 0 or 1: this process alone. Several machines: "
            "torchrun's own rendezvous flags (README).",
        ),
    ] = 0,
    reading: Any = None,
    job: Any = None,
) -> None:
    """Train fresh models on a set and test them on the source's real test split."""
    with _guard(job.debug):
        from ladd.pipeline import run_train

        if gpus > 1:
            raise typer.Exit(_launch_ranks(gpus, job))
        cfg = training.config(arch, seed)
        ws = job.open_workspace()
        dev = job.torch_device()
        ranked = _distributed_job(dev)
        if ranked is not None:
            dev = ranked[1]
            if cfg.trainer != "ddp":
                if ranked[0].leader:
                    _note(
                        f"a torchrun job of {ranked[0].world} ranks: trainer ddp, not {cfg.trainer}"
                    )
                cfg = dataclasses.replace(cfg, trainer="ddp")
        ds, test = _set_and_test_split(file, reading, ws, data_root)
        _warn_long(cfg.epochs, dev)
        if ranked is None or ranked[0].leader:
            _cost_note(ds, cfg, dev, ranked[0].world if ranked is not None else 1)
        if ranked is not None and not ranked[0].leader:  # rank 0 shows, records and writes
            run_train(ws, ds, test, cfg, set_path=file, device=dev, reading=reading)
            _end_distributed_job()
        with _progress_bar(f"train {arch} ({cfg.mode})") as cb:
            run_id, res = run_train(
                ws,
                ds,
                test,
                cfg,
                set_path=file,
                source=reading.source,
                device=dev,
                progress=cb,
                monitor_every=monitor_every,
                reading=reading,
            )
        table = Table("seed", "top-1")
        for s, a in zip(cfg.seeds, res.per_seed, strict=True):
            table.add_row(str(s), f"{a:.2%}")
        out.print(table)
        out.print(
            f"{arch} / {cfg.mode}: {res.accuracy_mean:.2%} +- {res.accuracy_std:.2%} over {len(res.per_seed)} "
            f"seed(s), protocol {res.config.protocol}, lr {res.lr:g}, {res.num_samples} "
            f"samples/epoch, {res.seconds:.1f} s, {_fmt_flops(res.flops)}"
        )
        if res.engine:
            out.print(_engine_line(res.engine))
        out.print(f"run {run_id}: results and model weights in {ws.db.run_dir(run_id)}")
        if json_out:
            _print_json(_result_json(run_id, res))
        if ranked is not None:
            _end_distributed_job()


def _launch_ranks(gpus: int, job: Any) -> int:
    """`ladd train --gpus G`: this command line again as G torchrun ranks; their exit code."""
    import subprocess

    import torch

    from ladd.trainers.distributed import launched_by_torchrun, torchrun_command

    if launched_by_torchrun():
        raise CLIError("--gpus inside a torchrun job: torchrun starts the ranks already")
    argv = sys.argv[1:]
    if "train" not in argv:
        raise CLIError("--gpus launches the command line again: run it as `ladd train ...`")
    dev = job.torch_device()
    if dev.type == "cuda" and gpus > torch.cuda.device_count():
        raise CLIError(f"--gpus {gpus}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type not in ("cuda", "cpu"):
        raise CLIError(f"--gpus runs on CUDA GPUs or CPU processes, not {dev.type}")
    cmd = torchrun_command(gpus, argv)
    _note(f"launching {gpus} ranks: torchrun {' '.join(cmd[3:])}")
    return subprocess.run(cmd, check=False).returncode


def _distributed_job(dev: Any) -> tuple[Any, Any] | None:
    """Under torchrun (several ranks): the process group started, (ranks, this rank's device);
    else None."""
    from ladd.trainers.distributed import init_distributed, launched_by_torchrun, rank_device

    if not launched_by_torchrun():
        return None
    return init_distributed(dev), rank_device(dev)


def _end_distributed_job() -> None:
    """Every rank done: end the process group and leave without the interpreter's teardown,
    in which gloo's threads can abort a rank whose work is done and written."""
    from ladd.trainers.distributed import finish_distributed

    finish_distributed()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _engine_line(e: dict[str, Any]) -> str:
    """How the fast trainer ran, in one line: engine, compile mode, precision, where the time
    went and the compile policy's reason (why eager, compiled or sequential)."""
    line = (
        f"engine: {e.get('engine')} ({e.get('layout')}), compile {e.get('compile_mode')}, "
        f"{e.get('precision')}; {e.get('seconds_compile', 0.0):.1f} s compiling, "
        f"{e.get('seconds_train', 0.0):.1f} s training"
    )
    return f"{line}; {e['decision']}" if e.get("decision") else line


def _result_json(run_id: int, res: Any) -> dict[str, Any]:
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


@app.command()
@_with_options(training=_training_options, reading=_reading_options, job=_job_options)
def evaluate(
    file: Annotated[Path, typer.Argument(help="A label-augmented set or any distilled set.")],
    archs: Annotated[
        str | None, typer.Option("--archs", help="Comma-separated (default: the paper's five).")
    ] = None,
    training: Any = None,
    data_root: DataRootOpt = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
    reading: Any = None,
    job: Any = None,
) -> None:
    """Cross-architecture evaluation (the paper's Table 2)."""
    with _guard(job.debug):
        from ladd.models import list_models
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
        cfg = training.config((arch_list or ["convnet_d3"])[0], seed, check_options=False)
        if arch_list and cfg.model_options:
            from ladd.models import check_model_options, supported_options

            if not any(supported_options(a, cfg.model_options) for a in arch_list):
                check_model_options(arch_list[0], cfg.model_options)
        ws = job.open_workspace()
        dev = job.torch_device()
        ds, test = _set_and_test_split(file, reading, ws, data_root)
        _warn_long(cfg.epochs, dev)
        with _progress_bar(f"evaluate ({cfg.mode})") as cb:
            run_id, res = run_evaluate(
                ws,
                ds,
                test,
                cfg,
                arch_list,
                set_path=file,
                source=reading.source,
                device=dev,
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
            _print_json(
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
@_with_options(job=_job_options)
def warmup(
    arch: Annotated[str, typer.Option("--arch")] = "convnet_d3",
    image_size: Annotated[int, typer.Option("--image-size", min=8)] = 32,
    classes: Annotated[int, typer.Option("--classes", min=2)] = 10,
    seeds: Annotated[int, typer.Option("--seeds", min=1)] = 5,
    batch_size: BatchSizeOpt = 256,
    width: WidthOpt = None,
    precision: PrecisionOpt = "auto",
    no_dsa: NoDsaOpt = False,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Also write portable compile artifacts to this file."),
    ] = None,
    json_out: JsonOpt = False,
    job: Any = None,
) -> None:
    """Compile the fast trainer's step for these shapes now, into the workspace's cache, so
    that later `ladd train` runs (and the dashboard's) start without compiling."""
    with _guard(job.debug):
        from ladd.trainers.compile import compile_cache_dir
        from ladd.trainers.warmup import warmup as do_warmup

        ws = job.open_workspace()
        rep = do_warmup(
            arch,
            image_size,
            num_classes=classes,
            seeds=seeds,
            batch_size=batch_size,
            precision=precision,
            model_options={"width": width} if width else {},
            dsa=not no_dsa,
            device=job.torch_device(),
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
        for note in rep.notes:
            _note(note)
        if json_out:
            _print_json(rep.to_dict())


# -- sweeps ----------------------------------------------------------------------------------


@app.command()
@_with_options(job=_place_options)
def sweep(
    spec_file: Annotated[Path, typer.Argument(help="A sweep spec (TOML; see docs/sweeps.md).")],
    executor: Annotated[
        str, typer.Option("--executor", help="auto (ray when installed) | ray | serial")
    ] = "auto",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Join a Ray cluster (auto, host:6379, ray://head:10001); default: a local one.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the grid, what is recorded and the cost.")
    ] = False,
    json_out: JsonOpt = False,
    job: Any = None,
) -> None:
    """Run a grid of trainings (sets x archs x modes x N/R x labeler epochs x seeds), resumable."""
    with _guard(job.debug):
        from ladd.sweep import TextProgress, load_spec, plan_sweep, ray_available, run_sweep

        ws = job.open_workspace()
        spec = load_spec(spec_file)
        if executor not in ("auto", "ray", "serial"):
            raise typer.BadParameter("use auto, ray or serial", param_hint="--executor")
        chosen = ("ray" if ray_available() else "serial") if executor == "auto" else executor
        plan = plan_sweep(spec, ws)
        err.print(plan.summary())
        if dry_run:  # a run shows the sets' warnings as sweep events
            for w in plan.warnings:
                _warn(w)
            table = Table("cell", "recorded run", "estimate (s)")
            for row in plan.table():
                sec = row.get("estimate_seconds")
                table.add_row(
                    row["cell"],
                    str(row["recorded_run"] or ""),
                    f"{sec:.0f}" if isinstance(sec, (int, float)) else "?",
                )
            out.print(table)
            if json_out:
                _print_json({"cells": plan.table()})
            return
        res = run_sweep(
            spec, ws, executor=chosen, address=address, on_event=TextProgress(sys.stderr)
        )
        rec = res.record
        out.print(
            f"sweep {spec.name}: {res.ran} cell(s) run, {res.skipped} already recorded, "
            f"{res.wall_seconds:.0f} s ({chosen}); record in {ws.root / 'sweeps' / spec.name}"
        )
        if json_out:
            _print_json(rec.to_dict() if hasattr(rec, "to_dict") else {"name": spec.name})


# -- the dashboard ---------------------------------------------------------------------------


@app.command("app")
def app_cmd(
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8501,
    debug: DebugOpt = False,
) -> None:
    """Start the dashboard on http://127.0.0.1:PORT (loopback only, from any folder)."""
    with _guard(debug):
        import importlib.util
        import os

        import ladd

        launch = Path(ladd.__file__).resolve().parents[1] / "app" / "launch.py"
        if not launch.is_file():
            raise CLIError(
                "the dashboard lives in the repository's app/ folder, which this installation "
                "of ladd does not have: run `make app` in a clone of LADD Studio"
            )
        spec = importlib.util.spec_from_file_location("ladd_app_launch", launch)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        argv = module.streamlit_command(port)
        err.print(f"dashboard on http://127.0.0.1:{port}")
        sys.stdout.flush()
        os.execv(argv[0], argv)


# -- report ----------------------------------------------------------------------------------


@app.command()
@_with_options(job=_place_options)
def report(
    run_a: Annotated[int, typer.Argument(help="Run id of the first run (e.g. the baseline).")],
    run_b: Annotated[int, typer.Argument(help="Run id of the second run (e.g. LADD).")],
    out_path: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path(
        "report.html"
    ),
    k: Annotated[int, typer.Option("--k", min=1, max=64, help="Images in the CAM grid.")] = 8,
    pick: Annotated[
        str,
        typer.Option(
            "--pick",
            help="Which test images: b_right_a_wrong | a_right_b_wrong | both_wrong | "
            "both_right | class | random.",
        ),
    ] = "b_right_a_wrong",
    klass: Annotated[
        int | None, typer.Option("--class", min=0, help="Class index for --pick class.")
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="CAM method: gradcam | gradcam++ | eigencam.")
    ] = "gradcam",
    no_cams: Annotated[bool, typer.Option("--no-cams", help="Leave the CAM grid out.")] = False,
    seed: SeedOpt = 0,
    force: ForceOpt = False,
    job: Any = None,
) -> None:
    """One self-contained HTML report comparing two finished training runs (configs, per-class
    accuracy, confusion matrices, training curves, CAM grid); opens without a network."""
    with _guard(job.debug):
        from ladd.report import report_command

        ws = job.open_workspace()
        path = report_command(
            run_a,
            run_b,
            out_path,
            workspace=ws.root,
            k=k,
            pick=pick,
            klass=klass,
            method=method,
            seed=seed,
            cams=not no_cams,
            force=force,
        )
        out.print(f"report written to {path}")


# -- runs ------------------------------------------------------------------------------------


@runs_app.command("list")
@_with_options(job=_place_options)
def runs_list(
    kind: Annotated[str | None, typer.Option("--kind", help="Only runs of this kind.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1)] = None,
    json_out: JsonOpt = False,
    job: Any = None,
) -> None:
    """List runs, newest first."""
    with _guard(job.debug):
        import datetime as dt

        from ladd.pipeline import summarise

        ws = job.open_workspace()
        rows = ws.db.list_runs(kind, limit)
        table = Table("id", "kind", "status", "started", "what", "accuracy", "note")
        for r in rows:
            s = summarise(r)
            what = f"{s.train.arch} / {s.mode}, {s.train.epochs} ep" if s.train else ""
            table.add_row(
                str(s.id),
                s.kind,
                s.status,
                dt.datetime.fromtimestamp(s.created).strftime("%Y-%m-%d %H:%M:%S"),
                what,
                f"{s.accuracy_mean:.2%}" if s.accuracy_mean is not None else "",
                s.error or s.label or "",
            )
        out.print(table)
        out.print(f"{len(rows)} run(s) in {ws.db.path}")
        if json_out:
            _print_json([r.to_dict() for r in rows])


@runs_app.command("show")
@_with_options(job=_place_options)
def runs_show(
    run_id: Annotated[int, typer.Argument(help="Run id.")],
    job: Any = None,
) -> None:
    """Show one run (config, metrics, artifacts) as JSON."""
    with _guard(job.debug):
        ws = job.open_workspace()
        ws.db.mark_stale()
        rec = ws.db.get_run(run_id)
        _print_json(rec.to_dict())


@runs_app.command("export")
@_with_options(job=_place_options)
def runs_export(
    csv_path: Annotated[Path, typer.Argument(help="CSV file to write.")],
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    force: ForceOpt = False,
    job: Any = None,
) -> None:
    """Export all runs to CSV."""
    with _guard(job.debug):
        ws = job.open_workspace()
        path = ws.db.export_csv(csv_path, kind, force=force)
        out.print(f"runs exported to {path}")


def _terminated(signum: int, frame: Any) -> None:
    # SIGTERM (kill, a scheduler's timeout) unwinds like Ctrl-C, so the run is marked failed
    # at once and files already written stay.
    raise KeyboardInterrupt(f"terminated by signal {signum}")


def main() -> None:
    """Console entry point (`ladd`)."""
    signal.signal(signal.SIGTERM, _terminated)
    app()


if __name__ == "__main__":
    main()
