"""The demo's sizes (DEMO_SIZES: "small" for the tests, "quick" the CPU default, "full", "gpu"
the paper's protocol), and which source and size a machine gets by default."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class DemoSize:
    """How big each demo step is. The CPU sizes were measured on a shared 2-core CPU (see
    DEMO_SIZES); the baseline and LADD runs use the same epochs, as the protocol does."""

    name: str
    train_per_class: int | None  # labeler training images per class (None: the whole split)
    test_per_class: int | None  # real test images per class that score the runs (None: all)
    labeler_epochs: int
    labeler_batch: int  # small batches: more steps from few images in few epochs
    labeler_lr: float
    save_at: tuple[int, ...]
    dense_epoch: int  # the checkpoint that labels the set (an early one, as in the paper)
    ipc: int
    n: int
    r: float
    train_epochs: int  # LADD's epochs (and the baseline's, unless baseline_same_steps)
    seeds: tuple[int, ...]
    width: int | None  # ConvNet width for the labeler and the deployed models (None: 128)
    cam_per_class: int  # real test images per class to pick CAM images from
    labeler_momentum: float = 0.9
    labeler_weight_decay: float = 5e-4
    labeler_augment: str = "none"  # few epochs on few images: plain images learn faster
    # Train the baseline for as many SGD steps as LADD (not as many epochs). A baseline epoch
    # of 100 images is one batch of 256, a LADD epoch of 2,600 samples eleven; on a short CPU
    # budget equal epochs would starve the baseline (the protocol's 1000 epochs give it 1000
    # steps), so equal steps is the fair comparison there.
    baseline_same_steps: bool = False
    description: str = ""

    def epochs_for(self, mode: str, images: int, batch_size: int = 256) -> int:
        """Training epochs of a mode's demo run on a set of `images` full images."""
        if mode != "baseline" or not self.baseline_same_steps:
            return self.train_epochs
        ladd_steps = math.ceil(images * (1 + self.n * self.n) / batch_size)
        base_steps = math.ceil(images / batch_size)
        return self.train_epochs * ladd_steps // base_steps

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["save_at"], d["seeds"] = list(self.save_at), list(self.seeds)
        return d


_FULL = DemoSize(
    name="full",
    train_per_class=500,
    test_per_class=100,
    labeler_epochs=4,
    labeler_batch=32,
    labeler_lr=0.02,
    save_at=(1, 2, 4),
    dense_epoch=2,
    ipc=10,
    n=5,
    r=0.625,
    train_epochs=60,
    seeds=(0,),
    width=32,
    cam_per_class=20,
    baseline_same_steps=True,
    description="a narrow ConvNet, 60 LADD epochs, one seed: tens of minutes on a CPU",
)

DEMO_SIZES: dict[str, DemoSize] = {
    # The tests' size: every artifact, seconds on a CPU; its models are barely trained.
    "small": DemoSize(
        name="small",
        train_per_class=30,
        test_per_class=10,
        labeler_epochs=3,
        labeler_batch=32,
        labeler_lr=0.02,
        save_at=(1, 2, 3),
        dense_epoch=2,
        ipc=2,
        n=3,
        r=0.625,
        train_epochs=2,
        seeds=(0,),
        width=8,
        cam_per_class=10,
        description="a smoke build: every artifact, models barely trained",
    ),
    # The default on a CPU: the `full` recipe with a third of its training (LADD 20 epochs,
    # the baseline as many SGD steps), so the whole build takes a few minutes on a laptop-class
    # CPU and LADD still wins by a wide margin (measured, see the module docstring).
    "quick": replace(
        _FULL,
        name="quick",
        train_epochs=20,
        description="the CPU default: a narrow ConvNet, 20 LADD epochs, one seed, minutes",
    ),
    # The longer CPU demo: three times `quick`'s training, a few points more for each
    # (tens of minutes on a shared 2-core CPU; see the module docstring).
    "full": _FULL,
    # The paper's protocol (REFERENCE.md section 3) for a GPU: the whole train split for the
    # labeler (50 epochs, momentum 0, augmentation, the epoch-10 checkpoint labels), IPC 10,
    # full-width ConvNet, 1000 epochs, 5 seeds, the whole test split.
    "gpu": DemoSize(
        name="gpu",
        train_per_class=None,
        test_per_class=None,
        labeler_epochs=50,
        labeler_batch=256,
        labeler_lr=0.01,
        save_at=(10, 20, 30, 40, 50),
        dense_epoch=10,
        ipc=10,
        n=5,
        r=0.625,
        train_epochs=1000,
        seeds=(0, 1, 2, 3, 4),
        width=None,
        cam_per_class=20,
        labeler_momentum=0.0,  # the paper's labeler: MTT's buffer.py recipe (ladd.labeler)
        labeler_weight_decay=0.0,
        labeler_augment="dsa",
        description="the paper's protocol: full width, 1000 epochs, 5 seeds (for a GPU)",
    ),
}


def default_size(device: str | torch.device = "auto") -> str:
    """The demo size for a device: the paper's protocol on a GPU, `quick` otherwise."""
    from ladd.device import resolve_device

    return "gpu" if resolve_device(device).type == "cuda" else "quick"


def cifar10_available(data_root: str | Path | None = None) -> bool:
    """True when CIFAR-10 can be read without a download: the shared archive named by
    LADD_SHARED_DATA, or torchvision's files under `data_root` (default LADD_DATA_ROOT/./data)."""
    from ladd.data.base import default_data_root
    from ladd.data.cifar import shared_cifar10_archive

    if shared_cifar10_archive() is not None:
        return True
    root = Path(data_root).expanduser() if data_root else default_data_root()
    return (root / "cifar-10-batches-py" / "test_batch").is_file()


def default_source(data_root: str | Path | None = None) -> str:
    """Real CIFAR-10 when it is at hand (no download needed), else the offline `shapes`."""
    return "cifar10" if cifar10_available(data_root) else "shapes"
