"""What a demo build made and scored (DemoArtifacts), and the paragraph the home page shows."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DemoArtifacts:
    """Where the demo put everything (paths inside the workspace), what it trained, what it
    scored and what it cost."""

    workspace: Path
    source: str
    size: str
    labeler_dir: Path
    checkpoints: tuple[Path, ...]
    distilled_dir: Path  # random-real set, MTT layout (images_best.pt, labels_best.pt)
    set_path: Path  # label-augmented set (.safetensors)
    baseline_run: int
    ladd_run: int
    cam_inputs: Path
    seconds: float
    skipped: tuple[str, ...] = field(default_factory=tuple)  # steps reused from an earlier build
    baseline_accuracy: float | None = None  # mean over seeds, on the real test images
    ladd_accuracy: float | None = None
    labeler_accuracy: float | None = None  # of the checkpoint that labelled the set
    num_classes: int = 0
    test_images: int = 0
    spec: dict[str, Any] = field(default_factory=dict)  # the DemoSize it was built with
    epochs: dict[str, int] = field(default_factory=dict)  # training epochs of each mode
    device: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return json.loads(json.dumps(d, default=str))


def _epochs_text(summary: dict[str, Any]) -> str:
    spec, epochs = summary.get("spec") or {}, summary.get("epochs") or {}
    ladd = epochs.get("ladd", spec.get("train_epochs", "?"))
    base = epochs.get("baseline", ladd)
    if base == ladd:
        return f"Baseline and LADD models trained {ladd} epochs"
    return f"LADD models trained {ladd} epochs, baseline models {base} (as many SGD steps)"


def describe(summary: dict[str, Any]) -> str:
    """One paragraph saying what a demo (its summary JSON, see load_demo) trained and scored."""
    spec = summary.get("spec") or {}
    k = summary.get("num_classes") or 10
    per_class = spec.get("train_per_class")
    lab = f"{per_class} training images per class" if per_class else "the whole training split"
    width = spec.get("width") or 128
    seeds = len(spec.get("seeds") or [0])
    parts = [
        f"**{summary['source']}, {summary['size']}**: a labeler (ConvNet, width {width}) on {lab} "
        f"for {spec.get('labeler_epochs', '?')} epochs; its epoch-{spec.get('dense_epoch', '?')} "
        f"checkpoint labelled the {spec.get('n', '?')} x {spec.get('n', '?')} crops of a random-real "
        f"set of {spec.get('ipc', '?')} images per class. {_epochs_text(summary)}, {seeds} "
        f"seed{'s' if seeds != 1 else ''} each, tested on {summary.get('test_images') or 0:,} "
        "real test images."
    ]
    base, ladd = summary.get("baseline_accuracy"), summary.get("ladd_accuracy")
    if base is not None and ladd is not None:
        parts.append(
            f"Baseline **{base:.1%}**, LADD **{ladd:.1%}** ({100 * (ladd - base):+.1f} points; "
            f"chance {1 / k:.0%})."
        )
    secs = summary.get("seconds")
    if secs is not None:
        where = f" on {summary['device']}" if summary.get("device") else ""
        reused = [s.removeprefix("run:") for s in summary.get("skipped") or []]
        also = f" (reusing an earlier build's {', '.join(reused)})" if reused else ""
        parts.append(f"Built in {secs / 60:.1f} min{where}{also}.")
    return " ".join(parts)


def demo_tag(source: str, size: str) -> str:
    from ladd.pipeline import slug

    return f"demo_{slug(source)}_{size}"
