"""What a sweep costs before it starts: a per-architecture throughput table -> seconds per cell.

A cell trains `seeds x epochs x samples-per-epoch` seed-samples; at a throughput of T seed-samples
per second that is their product over T, plus a fixed start cost (data, evaluation, and on a GPU
~17 s of torch.compile, docs/benchmarks.md). The throughputs below are the project's own
measurements; every other (architecture, image size, width) is scaled from the nearest measured
one of the same device kind by the ratio of training FLOPs per sample (ladd.flops), and says so.
These are rough figures (the CPU rows were taken on 2 shared, noisy cores): the sweep's ETA
recalibrates itself on the cells that finish.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ladd.plan import TrainPlan

__all__ = [
    "estimate_plan",
    "THROUGHPUTS",
    "CellEstimate",
    "SweepEstimate",
    "Throughput",
    "estimate_cell",
    "samples_per_epoch",
    "throughput",
]


@dataclass(frozen=True)
class Throughput:
    """A measured training rate: seed-samples per second (forward + backward + SGD step)."""

    device: str  # "cpu" | "cuda"
    arch: str
    image_size: int
    width: int | None  # ConvNet width; None for other families
    samples_per_s: float
    card: str
    where: str  # the document (and row) the figure comes from
    measured: bool = True  # False: an assumed rate, said so in every estimate made from it


_CPU = "CPU, 2 shared cores, torch 2.14.1, fp32"
_H200 = "NVIDIA H200, fast trainer (5 seeds stacked, bf16, compiled)"
_DISCUSSION = (
    "plain fp32 SGD steps at batch 256, no DSA, 2026-11-26 (a throwaway script; quoted in "
    "docs/results/DISCUSSION.md at commit c628ec5); AlexNet and VGG11 measured that way came "
    "out 1.4 to 1.5 times faster than in the study's LADD cells"
)
_PART6 = "docs/results/cpu-6-random-ipc10-"
THROUGHPUTS: tuple[Throughput, ...] = (
    # Three LADD run groups of the study's part 3 (N 3: 3 seeds x 61 passes x 1,000 samples,
    # DSA, the fast trainer) on the 2 cores with nothing else running: 183,000 seed-samples in
    # 216 / 207 / 163 s, 937 samples/s. (docs/benchmarks.md's "CPU figures", 53 to 106
    # samples/s, were taken while other jobs shared the cores; the width-128 row below is
    # from then and likely as pessimistic. A sweep's ETA recalibrates on its finished cells.)
    Throughput(
        "cpu",
        "convnet_d3",
        32,
        32,
        937.0,
        _CPU,
        "docs/results/cpu-3-random-ipc10-convnet_d3-ladd-n3-*.json, idle cores, 2026-11-26",
    ),
    Throughput("cpu", "convnet_d3", 32, 128, 29.5, _CPU, "docs/benchmarks.md, CPU, width 128"),
    # The study's part 6 LADD run groups (IPC 10, N 5: 3 seeds x 61 passes x 2,600 samples, DSA,
    # the fast trainer's sequential engine), 2026-12-02: 475,800 seed-samples in 5,977 s
    # (AlexNet, light other load) and 3,966 s (VGG11, idle cores).
    Throughput("cpu", "alexnet", 32, None, 79.6, _CPU, _PART6 + "alexnet-ladd-*.json"),
    Throughput("cpu", "vgg11", 32, None, 120.0, _CPU, _PART6 + "vgg11-ladd-*.json"),
    Throughput("cpu", "resnet18", 32, None, 42.0, _CPU, _DISCUSSION),
    Throughput("cpu", "vit", 32, None, 23.0, _CPU, _DISCUSSION),
    Throughput("cuda", "convnet_d3", 32, 128, 203_614.0, _H200, "docs/benchmarks.json"),
    Throughput("cuda", "convnet_d5", 128, 128, 16_626.0, _H200, "docs/benchmarks.json"),
    # Not measured (no GPU time yet for it): an assumed rate, marked ESTIMATED wherever it is
    # used, for torchvision's ResNet-18 at 224 px (ImageNet-1K, Table 3): 11 GFLOPs a training
    # sample; 6,000 samples/s is ~65 TFLOP/s, a third of what tuned ResNet training reaches on
    # such cards. Replace with the GPU script's figure (issue 28).
    Throughput(
        "cuda",
        "tv_resnet18",
        224,
        None,
        6_000.0,
        "one H100/H200-class GPU, bf16, channels-last",
        "an assumption in ladd/sweep/cost.py until a GPU run measures it",
        measured=False,
    ),
)
START_SECONDS = {"cpu": 3.0, "cuda": 20.0}  # loading, evaluation; on CUDA mostly compilation


@dataclass(frozen=True)
class CellEstimate:
    """Seconds one cell should take, and how the figure was reached (None: unknown)."""

    seconds: float | None
    samples_per_s: float | None
    seed_samples: int
    basis: str  # "measured: ..." | "ESTIMATED, not measured: ..." | "scaled by FLOPs from ..."
    # | "unknown: ..."

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SweepEstimate:
    """A sweep's cost: the sum over cells, and the wall time on `slots` parallel workers."""

    cells: int
    known: int  # cells with an estimate
    cell_seconds: float  # summed over the known cells
    slots: int
    device: str

    @property
    def wall_seconds(self) -> float:
        """Lower bound: the known cells' work spread evenly over the slots."""
        return self.cell_seconds / max(1, self.slots)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "wall_seconds": self.wall_seconds}

    def summary(self) -> str:
        text = (
            f"{self.cells} cells, ~{_fmt(self.cell_seconds)} of {self.device} work, "
            f"~{_fmt(self.wall_seconds)} on {self.slots} worker(s)"
        )
        if self.known < self.cells:
            text += f" ({self.cells - self.known} cell(s) of unknown cost left out)"
        return text


def _fmt(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def samples_per_epoch(mode: str, images: int, n: int) -> int:
    """Training samples per epoch of a mode: one copy of the images per full-image label and
    one copy of the N x N crops per crop label (ladd.training.LabelMode, which
    ladd.deploy.build_training_data follows)."""
    from ladd.training import label_mode

    m = label_mode(mode)
    return images * len(m.full) + images * n * n * len(m.crops)


@functools.lru_cache(maxsize=64)
def _flops(arch: str, image_size: int, width: int | None) -> float | None:
    """Training FLOPs per sample of an architecture (None when it cannot be built there)."""
    import torch

    from ladd.flops import train_flops_per_sample
    from ladd.models import create_model

    try:
        opts = {"width": width} if width else {}
        model = create_model(arch, 10, image_size, **opts)
        return train_flops_per_sample(model, torch.zeros(2, 3, image_size, image_size), 10)
    except Exception:  # an architecture that does not build at this size: unknown cost
        return None


def _width(arch: str, width: int | None) -> int | None:
    from ladd.models import model_family

    return (width or 128) if model_family(arch) == "convnet" else None


def throughput(
    arch: str, image_size: int, width: int | None, device: str
) -> tuple[float | None, str]:
    """Seed-samples per second of an architecture on a device kind, and its basis."""
    w = _width(arch, width)
    rows = [t for t in THROUGHPUTS if t.device == device]
    for t in rows:
        if (t.arch, t.image_size, t.width) == (arch, image_size, w):
            how = "measured" if t.measured else "ESTIMATED, not measured"
            return t.samples_per_s, f"{how}: {t.card} ({t.where})"
    if not rows:
        return None, f"unknown: no measured figure on {device}"
    # nearest measured row: same arch, then same size, then any; scaled by the FLOPs ratio
    rows.sort(key=lambda t: (t.arch != arch, t.image_size != image_size, t.width != w))
    ref = rows[0]
    mine, theirs = _flops(arch, image_size, w), _flops(ref.arch, ref.image_size, ref.width)
    if not mine or not theirs:
        return None, f"unknown: {arch} at {image_size} px could not be measured in FLOPs"
    rate = ref.samples_per_s * theirs / mine
    ref_name = f"{ref.arch} {ref.image_size} px" + (f" width {ref.width}" if ref.width else "")
    if not ref.measured:
        ref_name += ", itself ESTIMATED, not measured"
    return rate, f"scaled by FLOPs from {ref_name} ({ref.card}; {ref.where})"


def estimate_cell(
    arch: str,
    mode: str,
    *,
    images: int,
    n: int,
    image_size: int,
    seeds: int,
    epochs: int,
    width: int | None,
    device: str,
) -> CellEstimate:
    """Seconds of one cell: seed-samples over the throughput, plus the start cost."""
    work = seeds * epochs * samples_per_epoch(mode, images, n)
    rate, basis = throughput(arch, image_size, width, device)
    if rate is None:
        return CellEstimate(None, None, work, basis)
    return CellEstimate(START_SECONDS.get(device, 5.0) + work / rate, rate, work, basis)


def estimate_plan(plan: TrainPlan, device: str | None = None) -> CellEstimate:
    """The cost model's estimate of a planned run (what `ladd train` prints before a long run,
    and `ladd score` sums): its seeds x passes x samples an epoch. A store run trains on as many
    samples an epoch as the store holds crops, and cuts none of its own. `device`: "cpu" |
    "cuda" (default: the plan's)."""
    cfg, facts = plan.config, plan.set
    mode, images = cfg.mode, facts.images
    if mode == "store":
        mode = "baseline"
        images = int((facts.soft_labels or {}).get("crops_per_epoch") or images)
    return estimate_cell(
        cfg.arch,
        mode,
        images=images,
        n=int(cfg.n or 0),  # no grid: a mode without crops
        image_size=facts.image_size,
        seeds=len(cfg.seeds),
        epochs=cfg.passes,
        width=plan.spec.options.get("width"),
        device=device or plan.torch_device.type,
    )
