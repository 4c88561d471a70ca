"""The `ladd` command line (typer). The only part of ladd/ that parses arguments.

    ladd info PATH
    ladd sources | models
    ladd random-real --source NAME --ipc 10
    ladd distill --source NAME --method random|dm|mtt --ipc 10 [--experts DIR]
    ladd experts --source NAME --num-experts 5 --epochs 30
    ladd train-labeler --source NAME --arch NAME --epochs E --save-at 10,20,30 --out DIR
    ladd import-labeler CKPT --arch tv_resnet18 --source NAME --out FILE
    ladd augment DISTILLED --labeler CKPT --n 5 --r 0.625 --out FILE
    ladd overhead FILE
    ladd stats FILE [--labeler CKPT ...] [--drift]
    ladd strategies | drift FILE | fkd-store DISTILLED --labeler CKPT --epochs E --out DIR
    ladd train FILE --source NAME --arch NAME --mode ladd --epochs E --seeds S [--json]
    ladd evaluate FILE --source NAME --archs convnet_d3,alexnet --epochs E --seeds S [--json]
    ladd warmup --arch NAME --image-size 32
    ladd sweep SPEC.toml
    ladd report RUN_A RUN_B --out report.html
    ladd runs list | show ID | export CSV
    ladd app

One module per command group, each a typer app whose commands the root app takes in under
their own names (typer merges a sub-app added without a name): sets.py (info, sources,
models, random-real, distill, experts), labels.py (train-labeler, import-labeler, augment,
overhead, stats), training.py (train, evaluate, warmup), strategies.py (strategies, drift,
fkd-store), stores.py (convert, score), sweep.py, runs.py (report and the
`runs` group), dashboard.py (app). options.py defines every shared option once and builds the
library's inputs from them (SetReading, TrainConfig); console.py holds the output consoles and
the error guard; reading.py reads a set with the set flags. Every command takes --debug;
errors print one red line and exit 1 (bad arguments: 2), --debug shows the traceback. Progress
bars go to stderr, so that with --json the last line of stdout is one JSON object.
"""

from __future__ import annotations

import signal
from types import FrameType

import typer

from ladd.cli import dashboard, labels, runs, sets, stores, strategies, sweep, training

__all__ = ["app", "main"]

app = typer.Typer(
    name="ladd",
    help="LADD Studio: Label-Augmented Dataset Distillation from the command line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _group in (sets, labels, training, strategies, stores, sweep, dashboard, runs):
    app.add_typer(_group.app)


def _terminated(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (kill, a scheduler's timeout) unwinds like Ctrl-C, so the run is marked failed
    # at once and files already written stay.
    raise KeyboardInterrupt(f"terminated by signal {signum}")


def main() -> None:
    """Console entry point (`ladd`, `python -m ladd`, `torchrun ... -m ladd`)."""
    signal.signal(signal.SIGTERM, _terminated)
    app()
